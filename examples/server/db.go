package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	kitlog "github.com/go-kit/log"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/notify/eventlog"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// openDB connects to PostgreSQL when a URL is configured, else to the
// embedded SQLite file, and checks the connection within ctx.
func openDB(ctx context.Context, c config) (*gorm.DB, string, error) {
	gcfg := &gorm.Config{Logger: logger.Discard, TranslateError: true}
	var (
		db   *gorm.DB
		err  error
		desc string
	)
	if c.dbURL != "" {
		desc = "postgres " + redact(c.dbURL)
		db, err = gorm.Open(postgres.Open(c.dbURL), gcfg)
	} else {
		desc = "sqlite " + c.sqlitePath
		// One connection (below) makes statements queue in Go instead of
		// failing with SQLITE_BUSY; WAL keeps each commit cheap.
		db, err = gorm.Open(sqlite.Open("file:"+c.sqlitePath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)"), gcfg)
	}
	if err != nil {
		return nil, desc, fmt.Errorf("database %s unreachable: %w", desc, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, desc, err
	}
	if c.dbURL == "" {
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(10)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, desc, fmt.Errorf("database %s unreachable: %w", desc, err)
	}
	return db, desc, nil
}

// migrate creates or updates the schema.
func migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&lead.Lead{}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// openEventLog opens the durable event log on db (creating its table
// lead_events unless it exists), with the configured retention. The log
// knows the leads table (lead.Lead's, key id): a transaction that wrote a
// lead's row appends its events without a lock of the log's own.
func openEventLog(ctx context.Context, db *gorm.DB, c config, logger kitlog.Logger, reg prometheus.Registerer) (*eventlog.Log, error) {
	l, err := eventlog.Open(ctx, db, eventlog.WithRetention(c.eventRetention),
		eventlog.WithPruneInterval(c.eventPrune), eventlog.WithLogger(logger), eventlog.WithRegisterer(reg),
		eventlog.WithLeadTable(leadTable(db), "id"))
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	return l, nil
}

// leadTable returns the name GORM gives lead.Lead's table ("leads").
func leadTable(db *gorm.DB) string {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(&lead.Lead{}); err != nil {
		return "leads"
	}
	return stmt.Schema.Table
}

// redact hides the secrets of a database or Redis URL for logs and
// banners: the password of its user info and every query parameter that
// can carry one (libpq's password and sslpassword, and any other whose
// name says so).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if q := u.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if l := strings.ToLower(k); strings.Contains(l, "pass") || strings.Contains(l, "secret") || strings.Contains(l, "token") || l == "sslkey" {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}
