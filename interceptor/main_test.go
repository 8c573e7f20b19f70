package interceptor_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"

	"github.com/glebarez/sqlite"
	"go.uber.org/goleak"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"

	"github.com/leadupdates/leadupdates/interceptor"
)

// schemaDSN is the test DSN with search_path set to a schema of this run, so
// that parallel runs do not collide.
var schemaDSN string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	leakOpts := goleak.IgnoreCurrent()
	dsn := testdb.DSN()
	admin, err := sql.Open("pgx", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "interceptor tests need PostgreSQL at %s: %v\n"+
			"Start it with `make testenv` or set TEST_DATABASE_URL.\n", dsn, err)
		return 1
	}
	name := fmt.Sprintf("ic_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		fmt.Fprintf(os.Stderr, "create schema: %v\n", err)
		return 1
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	schemaDSN = dsn + sep + "search_path=" + name
	code := m.Run()
	if _, err := admin.Exec("DROP SCHEMA " + name + " CASCADE"); err != nil {
		fmt.Fprintf(os.Stderr, "drop schema: %v\n", err)
	}
	admin.Close()
	if code == 0 {
		if err := goleak.Find(leakOpts,
			// GORM's PrepareStmt cache starts an expiry goroutine it never stops.
			goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return code
}

type Lead struct {
	ID             uint `gorm:"primaryKey"`
	Name           string
	Status         string
	Score          float64
	EnrichmentData string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeletedAt      gorm.DeletedAt `gorm:"index"`
}

// recorder is a Sink that keeps every batch.
type recorder struct {
	mu      sync.Mutex
	batches [][]interceptor.Change
	// discard makes it only count the changes (benchmarks: a real sink does
	// not keep every change, and a growing heap would tax both sides).
	discard bool
	count   int
}

func (r *recorder) Publish(_ context.Context, cs []interceptor.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count += len(cs)
	if r.discard {
		return nil
	}
	r.batches = append(r.batches, append([]interceptor.Change(nil), cs...))
	return nil
}

// got returns the batches summarised as strings.
func (r *recorder) got() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := [][]string{}
	for _, b := range r.batches {
		var s []string
		for _, c := range b {
			s = append(s, summary(c))
		}
		out = append(out, s)
	}
	return out
}

func summary(c interceptor.Change) string {
	s := fmt.Sprintf("%s#%d", c.Op, c.LeadID)
	switch c.Op {
	case interceptor.OpStatusUpdate:
		s += fmt.Sprintf(" %s->%s", c.PreviousStatus, c.NewStatus)
	case interceptor.OpScoreUpdate:
		s += fmt.Sprintf(" %g->%g", c.PreviousScore, c.NewScore)
	case interceptor.OpEnrichmentUpdate:
		s += fmt.Sprintf(" %v", c.Enrichment["enrichment_data"])
	case interceptor.OpLeadDeleted:
		if c.Soft {
			s += " soft"
		}
	}
	return s
}

var tableSeq atomic.Int64

// A dialect is a database every behavioural test runs on, as a subtest:
// PostgreSQL (primary) and SQLite in a temporary file through the pure-Go
// github.com/glebarez/sqlite driver.
type dialect struct {
	name string
	open func(t testing.TB) gorm.Dialector // a fresh database (or schema)
	on   func(conn *sql.DB) gorm.Dialector // a second *gorm.DB on the same pool
}

var (
	postgresDB = dialect{
		name: "postgres",
		open: func(testing.TB) gorm.Dialector { return postgres.Open(schemaDSN) },
		on:   func(conn *sql.DB) gorm.Dialector { return postgres.New(postgres.Config{Conn: conn}) },
	}
	sqliteDB = dialect{
		name: "sqlite",
		open: func(t testing.TB) gorm.Dialector {
			// WAL and a busy timeout: concurrent writers wait for the write
			// lock instead of failing with SQLITE_BUSY.
			return sqlite.Open(filepath.Join(t.TempDir(), "test.db") +
				"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		},
		on: func(conn *sql.DB) gorm.Dialector { return &sqlite.Dialector{Conn: conn} },
	}
	dialects = []dialect{postgresDB, sqliteDB}
)

// eachDB runs f as one subtest per dialect.
func eachDB(t *testing.T, f func(t *testing.T, d dialect)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) { f(t, d) })
	}
}

type env struct {
	d   dialect
	db  *gorm.DB
	p   *interceptor.Plugin
	rec *recorder
}

// newEnv opens a *gorm.DB with the plugin on a fresh table of d (prefix per
// test) and registers cleanup. The plugin is closed by flush or cleanup.
func newEnv(t testing.TB, d dialect, cfg *gorm.Config, opts ...interceptor.Option) *env {
	t.Helper()
	if cfg == nil {
		cfg = &gorm.Config{}
	}
	cfg.Logger = logger.Discard
	cfg.NamingStrategy = schema.NamingStrategy{TablePrefix: fmt.Sprintf("t%d_", tableSeq.Add(1))}
	db, err := gorm.Open(d.open(t), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxIdleConns(8) // 4 concurrent writers must not reconnect per statement
	if err := db.AutoMigrate(&Lead{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	rec := &recorder{}
	p, err := interceptor.New(&Lead{}, rec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Use(p); err != nil {
		t.Fatalf("use: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		_ = db.Migrator().DropTable(&Lead{})
		sqlDB.Close()
	})
	return &env{d: d, db: db, p: p, rec: rec}
}

// flush closes the plugin, so every committed change has reached the sink,
// and returns what it got.
func (e *env) flush(t testing.TB) [][]string {
	t.Helper()
	if err := e.p.Close(); err != nil {
		t.Fatal(err)
	}
	return e.rec.got()
}

// plainOn opens a *gorm.DB without the plugin on e's connection pool and
// table.
func (e *env) plainOn(t testing.TB) *gorm.DB {
	t.Helper()
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	db, err := gorm.Open(e.d.on(sqlDB), &gorm.Config{Logger: e.db.Logger, NamingStrategy: e.db.NamingStrategy})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
