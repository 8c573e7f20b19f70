package metrics_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// openDB connects to the test database, failing (never skipping) with how to
// start one when it is unreachable.
func openDB(tb testing.TB) *gorm.DB {
	tb.Helper()
	dsn := testdb.DSN()
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err == nil {
		var sqlDB interface{ PingContext(context.Context) error }
		if sqlDB, err = db.DB(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = sqlDB.PingContext(ctx)
			cancel()
		}
	}
	if err != nil {
		tb.Fatalf("PostgreSQL at %s is unreachable: %v\n"+
			"Start one (`make testenv` from the repository root, or "+
			"docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres) "+
			"or point TEST_DATABASE_URL at one.", dsn, err)
	}
	tb.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return db
}

// openSQLite opens a SQLite database in a temporary file, through the
// github.com/glebarez/sqlite driver, with WAL and a busy timeout so that
// concurrent writers wait for the write lock rather than fail.
func openSQLite(tb testing.TB) *gorm.DB {
	tb.Helper()
	dsn := filepath.Join(tb.TempDir(), "test.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		tb.Fatalf("open SQLite: %v", err)
	}
	tb.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return db
}

// databases are the databases every test runs on, each as a subtest named
// after it.
var databases = []struct {
	name string
	open func(testing.TB) *gorm.DB
}{
	{"postgres", openDB},
	{"sqlite", openSQLite},
}

// eachDB runs f once per database, as a subtest.
func eachDB(t *testing.T, f func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) { f(t, d.open(t)) })
	}
}

// schemaOf is the schema newTable's tables are in.
func schemaOf(db *gorm.DB) string {
	if db.Dialector.Name() == "sqlite" {
		return "main"
	}
	return "public"
}

// indexNames lists the indexes of table other than its primary key's.
func indexNames(tb testing.TB, db *gorm.DB, table string) []string {
	tb.Helper()
	sql := `SELECT indexname FROM pg_indexes WHERE tablename = ? AND indexname NOT LIKE '%_pkey' ORDER BY indexname`
	if db.Dialector.Name() == "sqlite" {
		sql = `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name`
	}
	var got []string
	if err := db.Raw(sql, table).Scan(&got).Error; err != nil {
		tb.Fatal(err)
	}
	return got
}

var tableSeq atomic.Int64

// newTable creates an empty leads table unique to this run and drops it when
// the test ends.
func newTable(tb testing.TB, db *gorm.DB) string {
	tb.Helper()
	name := fmt.Sprintf("metrics_test_%d_%d_%d", os.Getpid(), time.Now().UnixMilli()%1e8, tableSeq.Add(1))
	id, ts := "id bigserial PRIMARY KEY", "timestamptz"
	if db.Dialector.Name() == "sqlite" {
		// As GORM's SQLite driver creates them: times are datetime
		// columns holding text.
		id, ts = "id integer PRIMARY KEY AUTOINCREMENT", "datetime"
	}
	err := db.Exec(`CREATE TABLE ` + name + ` (
		` + id + `,
		source text,
		status text,
		score numeric,
		created_at ` + ts + ` NOT NULL,
		processed_at ` + ts + `,
		deleted_at ` + ts + `)`).Error
	if err != nil {
		tb.Fatalf("create table: %v", err)
	}
	tb.Cleanup(func() { dropTable(tb, db, name) })
	return name
}

// dropTable drops a leads table (name unquoted) and what EnsureAggregates
// may have created beside it, which DROP TABLE leaves.
func dropTable(tb testing.TB, db *gorm.DB, name string) {
	tb.Helper()
	stmts := []string{`DROP TABLE IF EXISTS "` + name + `"`, `DROP TABLE IF EXISTS "` + name + `_workflow_failures"`}
	if db.Dialector.Name() == "postgres" {
		delta := `"` + name + `_metrics_counts"`
		stmts = append(stmts, `DROP TABLE IF EXISTS `+delta, `DROP FUNCTION IF EXISTS `+delta+`()`)
	}
	for _, s := range stmts {
		if err := db.Exec(s).Error; err != nil {
			tb.Errorf("%s: %v", s, err)
		}
	}
}

// lead is one fixture row; nil pointers are NULLs.
type lead struct {
	source, status string
	score          *float64
	created        time.Time
	processed      *time.Time
	deleted        bool
}

func insert(tb testing.TB, db *gorm.DB, table string, leads ...lead) {
	tb.Helper()
	for _, l := range leads {
		var deleted *time.Time
		if l.deleted {
			d := l.created.Add(time.Minute)
			deleted = &d
		}
		err := db.Exec(`INSERT INTO `+table+` (source, status, score, created_at, processed_at, deleted_at)
			VALUES (?, ?, ?, ?, ?, ?)`, l.source, l.status, l.score, l.created, l.processed, deleted).Error
		if err != nil {
			tb.Fatalf("insert: %v", err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
