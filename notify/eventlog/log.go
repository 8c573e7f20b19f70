package eventlog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/internal/ratelog"
)

// A Log is the durable, ordered event log in one database table. It is
// safe for concurrent use; several Logs (in one process or in several) may
// share a table.
type Log struct {
	cfg  config
	n    names
	pg   bool
	db   *sql.DB
	sql  *statements
	tel  *telemetry
	warn *ratelog.Logger

	kick    chan struct{} // wakes the sequencer (PostgreSQL); buffered, coalescing
	stamped signal        // new positions may be readable

	bound         bound        // the sequencer's (its goroutine's only)
	pipeline      atomic.Bool  // the driver is pgx: the sequencer pipelines
	head          atomic.Int64 // the highest position this instance's sequencer stamped
	testPruneHook func()       // see export_test.go

	ctx    context.Context // done when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Open creates the log's tables unless they exist (several instances may
// start at once) and starts its background work: on PostgreSQL the
// sequencer, which gives committed events their positions, and the
// listener, which wakes Tail on pg_notify; on both databases the pruner.
// db must be PostgreSQL (gorm.io/driver/postgres, which uses pgx) or SQLite
// (github.com/glebarez/sqlite or gorm.io/driver/sqlite); ctx bounds only the
// migration. Close the Log when done.
//
// On PostgreSQL a row holds the events of one Append. A table of the
// layout of earlier versions (one row per event, with a position column)
// is upgraded in place, every event keeping its position: stop the
// instances of the earlier version first (their writes would fail).
//
// On PostgreSQL the Log keeps one connection of db's pool for LISTEN and
// borrows one briefly for each stamping transaction: a pool limited with
// SetMaxOpenConns needs room for them.
//
// SQLite allows one writer at a time: open it with a busy timeout (e.g.
// "app.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"), so that
// concurrent writers, the pruner among them, wait for each other instead of
// failing with "database is locked". Committed wakes the tailers of this
// process only; other processes on the same file find new events at their
// next poll.
func Open(ctx context.Context, db *gorm.DB, opts ...Option) (*Log, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, fmt.Errorf("eventlog: nil *gorm.DB")
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	l := &Log{cfg: cfg, n: newNames(cfg.table), db: sqlDB, kick: make(chan struct{}, 1)}
	switch name := db.Dialector.Name(); name {
	case "postgres":
		l.pg = true
		l.pipeline.Store(true)
		err = migratePostgres(ctx, sqlDB, l.n)
	case "sqlite":
		if strings.Contains(cfg.table, ".") {
			return nil, fmt.Errorf("eventlog: table %q: SQLite tables take no schema", cfg.table)
		}
		err = migrateSQLite(ctx, sqlDB, l.n)
	default:
		return nil, fmt.Errorf("eventlog: database %q not supported (PostgreSQL or SQLite)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("eventlog: create table %s: %w", cfg.table, err)
	}
	l.sql = newStatements(l.n, l.pg, cfg.leadTable, cfg.leadKey)
	if l.pg && cfg.leadTable != "" {
		// Fail now rather than at every Append.
		var ok bool
		if err := sqlDB.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_attribute
			WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped)`, l.sql.lead, cfg.leadKey).Scan(&ok); err != nil {
			return nil, fmt.Errorf("eventlog: lead table %s: %w", cfg.leadTable, err)
		}
		if !ok {
			return nil, fmt.Errorf("eventlog: lead table %s has no column %s (WithLeadTable): create it first", cfg.leadTable, cfg.leadKey)
		}
	}
	if l.pg {
		if err := l.bound.init(ctx, sqlDB, l.n); err != nil {
			return nil, fmt.Errorf("eventlog: sequence of %s: %w", cfg.table, err)
		}
	}
	if l.tel, err = newTelemetry(cfg.registerer, l); err != nil {
		return nil, err
	}
	l.warn = ratelog.New(level.Warn(cfg.logger), 10*time.Second)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if l.pg {
		l.wg.Go(l.sequence)
		l.wg.Go(l.listen)
	}
	if cfg.retention > 0 {
		l.wg.Go(l.pruneLoop)
	}
	return l, nil
}

// Committed tells the log that appends have committed: on PostgreSQL it
// wakes the sequencer, which gives them positions, on SQLite the tailers of
// this process. It never blocks. Without it the events are found at the
// next poll (WithPollInterval).
func (l *Log) Committed() {
	if !l.pg {
		l.stamped.fire()
		return
	}
	select {
	case l.kick <- struct{}{}:
	default: // a wake-up is pending: it covers this commit too
	}
}

// Close stops the background work and waits for it. Tail calls return
// ErrClosed; the *gorm.DB stays open (it is the caller's). Close is
// idempotent.
func (l *Log) Close() error {
	l.once.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
	return nil
}

func (l *Log) closed() bool { return l.ctx.Err() != nil }

// A signal wakes every waiter at once: wait returns a channel that fire
// closes. Take the channel before looking for work, so that a fire between
// the look and the wait is not lost.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// backoff returns the wait before retry number n (1, 2, ...): 50 ms
// doubling up to max.
func backoff(n int, max time.Duration) time.Duration {
	d := 50 * time.Millisecond
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// sleep waits d or until ctx or the log is done, reporting whether it
// waited the whole d.
func (l *Log) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-l.ctx.Done():
	}
	return false
}
