package metrics_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// openDB connects to the test database, failing (never skipping) with how to
// start one when it is unreachable.
func openDB(tb testing.TB) *gorm.DB {
	tb.Helper()
	dsn := os.Getenv("TEST_DATABASE_URL")
	if dsn == "" {
		dsn = defaultDSN
	}
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
			"Start one (here: /work/shared/services.sh, or "+
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

var tableSeq atomic.Int64

// newTable creates an empty leads table unique to this run and drops it when
// the test ends.
func newTable(tb testing.TB, db *gorm.DB) string {
	tb.Helper()
	name := fmt.Sprintf("metrics_test_%d_%d_%d", os.Getpid(), time.Now().UnixMilli()%1e8, tableSeq.Add(1))
	err := db.Exec(`CREATE TABLE ` + name + ` (
		id bigserial PRIMARY KEY,
		source text,
		status text,
		score numeric,
		created_at timestamptz NOT NULL,
		processed_at timestamptz,
		deleted_at timestamptz)`).Error
	if err != nil {
		tb.Fatalf("create table: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Exec(`DROP TABLE IF EXISTS ` + name).Error; err != nil {
			tb.Errorf("drop table: %v", err)
		}
	})
	return name
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
