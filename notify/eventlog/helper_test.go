package eventlog_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

var tableSeq atomic.Int64

// table returns a table name of its own for one test.
func table() string {
	return fmt.Sprintf("ev_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, tableSeq.Add(1))
}

type dialect struct {
	name string
	open func(t testing.TB) *gorm.DB
}

var (
	pgDB = dialect{"postgres", func(t testing.TB) *gorm.DB { return openGorm(t, postgres.Open(pgDSN())) }}
	// WAL and a busy timeout: concurrent writers wait for the write lock
	// instead of failing with SQLITE_BUSY.
	sqliteDB = dialect{"sqlite", func(t testing.TB) *gorm.DB {
		return openGorm(t, sqlite.Open(filepath.Join(t.TempDir(), "test.db")+
			"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"))
	}}
	dialects = []dialect{pgDB, sqliteDB}
)

// again opens a second pool on db's database, as another instance would.
func again(t testing.TB, db *gorm.DB) *gorm.DB {
	switch d := db.Dialector.(type) {
	case *sqlite.Dialector:
		return openGorm(t, sqlite.Open(d.DSN))
	case *postgres.Dialector:
		return openGorm(t, postgres.Open(d.DSN))
	}
	t.Fatalf("dialector %T", db.Dialector)
	return nil
}

// eachDB runs f as one subtest per database.
func eachDB(t *testing.T, f func(t *testing.T, d dialect)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) { f(t, d) })
	}
}

func openGorm(t testing.TB, d gorm.Dialector) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxIdleConns(16)
	t.Cleanup(func() { sqlDB.Close() })
	return db
}

// openLog opens a Log on db's table name, closed and dropped at cleanup
// (cleanups run last-in first-out: the log closes before its database).
func openLog(t testing.TB, db *gorm.DB, name string, opts ...eventlog.Option) *eventlog.Log {
	t.Helper()
	opts = append([]eventlog.Option{eventlog.WithTable(name), eventlog.WithPollInterval(200 * time.Millisecond)}, opts...)
	l, err := eventlog.Open(t.Context(), db, opts...)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		db.Exec(`DROP TABLE IF EXISTS "` + name + `"`)
		db.Exec(`DROP TABLE IF EXISTS "` + name + `_meta"`)
	})
	return l
}

func sqlDB(t testing.TB, db *gorm.DB) *sql.DB {
	t.Helper()
	s, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ev(lead int64, typ string, payload any) eventlog.Event {
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return eventlog.Event{LeadID: lead, Type: typ, Payload: p}
}

// collect tails l from after until it has n events, and returns them; the
// test fails if they do not arrive within a minute (a hang, not a timing
// assertion).
func collect(t testing.TB, l *eventlog.Log, after uint64, n int) []eventlog.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var got []eventlog.Event
	err := l.Tail(ctx, after, func(evs []eventlog.Event) error {
		got = append(got, evs...)
		if len(got) >= n {
			cancel()
		}
		return nil
	})
	if len(got) < n {
		t.Fatalf("tail: got %d events of %d: %v", len(got), n, err)
	}
	return got
}

// tailer runs Tail in the background, keeping what it gets.
type tailer struct {
	ch     chan eventlog.Event
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startTail(t testing.TB, l *eventlog.Log, after uint64) *tailer {
	ctx, cancel := context.WithCancel(t.Context())
	tl := &tailer{ch: make(chan eventlog.Event, 1<<16), cancel: cancel, done: make(chan error, 1)}
	go func() {
		tl.done <- l.Tail(ctx, after, func(evs []eventlog.Event) error {
			for _, e := range evs {
				tl.ch <- e
			}
			return nil
		})
	}()
	t.Cleanup(func() { tl.stop() })
	return tl
}

// next returns the next event the tail got, failing after a minute.
func (tl *tailer) next(t testing.TB) eventlog.Event {
	t.Helper()
	select {
	case e := <-tl.ch:
		return e
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
		return eventlog.Event{}
	}
}

// stop ends the tail and waits for it, returning what Tail returned.
func (tl *tailer) stop() error {
	tl.once.Do(func() {
		tl.cancel()
		tl.err = <-tl.done
	})
	return tl.err
}

type payload struct {
	W int `json:"w"`
	I int `json:"i"`
}

func decode(t testing.TB, e eventlog.Event) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", e.Payload, err)
	}
	return p
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// leadsTable creates <name>_leads (id, status), the leads a log's
// WithLeadTable names, holding leads 1..n, dropped when the test ends.
func leadsTable(t testing.TB, s *sql.DB, name string, n int) string {
	t.Helper()
	rows := name + "_leads"
	if _, err := s.ExecContext(t.Context(), `CREATE TABLE `+rows+` (id bigint PRIMARY KEY, status text NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Exec(`DROP TABLE ` + rows) })
	if _, err := s.ExecContext(t.Context(), `INSERT INTO `+rows+` (id) SELECT generate_series(1, $1::int)`, n); err != nil {
		t.Fatal(err)
	}
	return rows
}
