package testdb_test

import (
	"slices"
	"testing"

	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type row struct {
	ID   int64
	Name string
}

// roundTrip stores a row in a new table and reads it back.
func roundTrip(t *testing.T, db *gorm.DB) {
	t.Helper()
	if err := db.AutoMigrate(&row{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := db.Create(&row{Name: "x"}).Error; err != nil {
		t.Fatal(err)
	}
	var got []row
	if err := db.Find(&got).Error; err != nil || len(got) != 1 || got[0].Name != "x" {
		t.Fatalf("read back %v, %v", got, err)
	}
}

func schemaExists(t *testing.T, db *gorm.DB, schema string) bool {
	t.Helper()
	var n int64
	if err := db.Raw("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", schema).
		Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestPostgres: a test gets a schema of its own, holding its tables, and
// the schema is gone after the test.
func TestPostgres(t *testing.T) {
	other := testdb.Open(t, testdb.Postgres(t))
	var schema string
	t.Run("private", func(t *testing.T) {
		db := testdb.Open(t, testdb.Postgres(t))
		if err := db.Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
			t.Fatal(err)
		}
		if !schemaExists(t, other, schema) {
			t.Fatalf("schema %q not created", schema)
		}
		roundTrip(t, db)
		if other.Migrator().HasTable(&row{}) {
			t.Error("another test's schema sees the table")
		}
	})
	if schema == "" {
		t.FailNow()
	}
	if schemaExists(t, other, schema) {
		t.Errorf("schema %q not dropped after the test", schema)
	}
}

// TestSQLite: each call is a fresh file, waiting on locks, in WAL mode.
func TestSQLite(t *testing.T) {
	db := testdb.Open(t, testdb.SQLite(t))
	roundTrip(t, db)
	var mode string
	var timeout int
	if err := db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v", mode, err)
	}
	if err := db.Raw("PRAGMA busy_timeout").Scan(&timeout).Error; err != nil || timeout != 5000 {
		t.Errorf("busy_timeout %d, %v", timeout, err)
	}
	if testdb.Open(t, testdb.SQLite(t)).Migrator().HasTable(&row{}) {
		t.Error("a second SQLite database sees the first one's table")
	}
}

// TestEach runs a subtest per dialect, PostgreSQL then SQLite.
func TestEach(t *testing.T) {
	var ran []string
	testdb.Each(t, func(t *testing.T, d testdb.Dialect) {
		ran = append(ran, t.Name())
		roundTrip(t, testdb.Open(t, d.Open(t)))
	})
	if want := []string{"TestEach/postgres", "TestEach/sqlite"}; !slices.Equal(ran, want) {
		t.Errorf("ran %q, want %q", ran, want)
	}
}
