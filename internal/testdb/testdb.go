package testdb

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// DSN is the PostgreSQL the tests use: TEST_DATABASE_URL, or the local
// server's test database.
func DSN() string {
	if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Postgres creates a schema for t, dropped with everything in it at
// cleanup, and returns a dialector whose search_path is that schema, so
// that concurrent tests and packages never see each other's tables.
func Postgres(t testing.TB) gorm.Dialector {
	t.Helper()
	return postgres.Open(PostgresURL(t))
}

// PostgresURL is Postgres as a connection URL, for a process the test starts.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin, err := gorm.Open(postgres.Open(DSN()), quiet())
	if err != nil {
		t.Fatalf("these tests need PostgreSQL at %s (start it with `make testenv` from the repository root or set TEST_DATABASE_URL): %v", DSN(), err)
	}
	b := make([]byte, 6)
	rand.Read(b) // never fails
	schema := "testdb_" + hex.EncodeToString(b)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		closeDB(t, admin)
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		closeDB(t, admin)
	})
	sep := "?"
	if strings.Contains(DSN(), "?") {
		sep = "&"
	}
	return DSN() + sep + "search_path=" + schema
}

// SQLite returns a dialector on a fresh file in t's temporary directory,
// waiting for locks rather than failing on them and in WAL mode, so that
// concurrent writers behave as on a server.
func SQLite(t testing.TB) gorm.Dialector {
	return sqlite.Open(filepath.Join(t.TempDir(), "test.db") +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
}

// A Dialect is an engine every database test runs on, as a subtest named
// Name. Open gives a fresh, empty database on each call.
type Dialect struct {
	Name string
	Open func(testing.TB) gorm.Dialector
}

// Dialects returns PostgreSQL and SQLite, in that order.
func Dialects() []Dialect {
	return []Dialect{{Name: "postgres", Open: Postgres}, {Name: "sqlite", Open: SQLite}}
}

// Each runs f as a subtest on each of Dialects.
func Each(t *testing.T, f func(t *testing.T, d Dialect)) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(d.Name, func(t *testing.T) { f(t, d) })
	}
}

// Open opens d without logging and closes it at cleanup, before a schema
// Postgres made for it is dropped.
func Open(t testing.TB, d gorm.Dialector) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(d, quiet())
	if err != nil {
		t.Fatalf("open %s: %v", d.Name(), err)
	}
	t.Cleanup(func() { closeDB(t, db) })
	return db
}

// quiet is a fresh config per database: gorm.Open keeps the config and
// stores the database's callbacks and plugins in it.
func quiet() *gorm.Config { return &gorm.Config{Logger: logger.Discard} }

func closeDB(t testing.TB, db *gorm.DB) {
	sqlDB, err := db.DB()
	if err == nil {
		err = sqlDB.Close()
	}
	if err != nil {
		t.Errorf("close %s: %v", db.Dialector.Name(), err)
	}
}
