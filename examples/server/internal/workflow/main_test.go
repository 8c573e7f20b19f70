package workflow_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"go.uber.org/goleak"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/interceptor"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pgDSN is the PostgreSQL the tests use; each test gets its own schema.
func pgDSN() string {
	if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// A dialect is a database every database test runs on, as a subtest.
type dialect struct {
	name string
	open func(t *testing.T) gorm.Dialector
}

var dialects = []dialect{
	{name: "postgres", open: openPostgres},
	{name: "sqlite", open: func(t *testing.T) gorm.Dialector {
		return sqlite.Open(filepath.Join(t.TempDir(), "test.db") +
			"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	}},
}

// openPostgres creates a schema for t, dropped in Cleanup, and returns a
// dialector whose search_path is that schema. An unreachable server fails
// the test.
func openPostgres(t *testing.T) gorm.Dialector {
	t.Helper()
	admin, err := gorm.Open(postgres.Open(pgDSN()), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("workflow tests need PostgreSQL at %s (in this workspace: /work/shared/services.sh, or set TEST_DATABASE_URL): %v", pgDSN(), err)
	}
	sqlAdmin, _ := admin.DB()
	schema := fmt.Sprintf("wf_%d", rand.Uint64()%1e12)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		sqlAdmin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema: %v", err)
		}
		sqlAdmin.Close()
	})
	sep := "?"
	if strings.Contains(pgDSN(), "?") {
		sep = "&"
	}
	return postgres.Open(pgDSN() + sep + "search_path=" + schema)
}

func eachDB(t *testing.T, f func(t *testing.T, d dialect)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) { f(t, d) })
	}
}

// env is a database with the leads table and the interceptor plugged in,
// recording what it reports.
type env struct {
	db     *gorm.DB
	plugin *interceptor.Plugin
	sink   *sink
}

func newEnv(t *testing.T, d dialect, opts ...interceptor.Option) *env {
	t.Helper()
	db, err := gorm.Open(d.open(t), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("open %s: %v", d.name, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	if err := db.AutoMigrate(&lead.Lead{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s := &sink{}
	p, err := interceptor.New(&lead.Lead{}, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := db.Use(p); err != nil {
		t.Fatal(err)
	}
	return &env{db: db, plugin: p, sink: s}
}

// newLead stores l (status New and source Google unless set) and returns
// its id.
func (e *env) newLead(t *testing.T, l lead.Lead) int64 {
	t.Helper()
	if l.Status == "" {
		l.Status = lead.StatusNew
	}
	if l.Source == "" {
		l.Source = lead.SourceGoogle
	}
	if l.Name == "" {
		l.Name = "Ada Lovelace"
	}
	if err := e.db.Create(&l).Error; err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func (e *env) get(t *testing.T, id int64) lead.Lead {
	t.Helper()
	var l lead.Lead
	if err := e.db.Unscoped().Take(&l, id).Error; err != nil {
		t.Fatal(err)
	}
	return l
}

// changes closes the plugin, so every committed change has reached the
// sink, and returns the batches it got.
func (e *env) changes(t *testing.T) [][]string {
	t.Helper()
	if err := e.plugin.Close(); err != nil {
		t.Fatal(err)
	}
	return e.sink.got()
}

// sink records the interceptor's batches, each change summarised without
// its values that vary (the score, the enrichment data).
// With mirror set, each change is also recorded there, interleaved with
// the notifier's events.
type sink struct {
	mu      sync.Mutex
	batches [][]interceptor.Change
	mirror  *recorder
}

func (s *sink) Publish(ctx context.Context, cs []interceptor.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, slices.Clone(cs))
	if s.mirror != nil {
		for _, c := range cs {
			_ = s.mirror.record(ctx, summary(c))
		}
	}
	return nil
}

func (s *sink) got() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := [][]string{}
	for _, b := range s.batches {
		var row []string
		for _, c := range b {
			row = append(row, summary(c))
		}
		out = append(out, row)
	}
	return out
}

func summary(c interceptor.Change) string {
	switch c.Op {
	case interceptor.OpStatusUpdate:
		return fmt.Sprintf("STATUS %s->%s", c.PreviousStatus, c.NewStatus)
	case interceptor.OpScoreUpdate:
		return "SCORE"
	}
	return string(c.Op)
}

// recorder is a Notifier that records the workflow events. block, when
// set, holds the named event until it is closed or the context is done;
// err is returned by every call; panic makes every call panic.
type recorder struct {
	mu      sync.Mutex
	events  []string
	block   map[string]chan struct{}
	reached chan string // receives each blocked event's name, when set
	err     error
	panic   bool
}

func (r *recorder) record(ctx context.Context, ev string) error {
	name, _, _ := strings.Cut(ev, " ")
	r.mu.Lock()
	r.events = append(r.events, ev)
	ch := r.block[name]
	r.mu.Unlock()
	if ch != nil {
		if r.reached != nil {
			r.reached <- name
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	if r.panic {
		panic("notifier exploded")
	}
	return r.err
}

func (r *recorder) NotifyWorkflowStarted(ctx context.Context, id int64, wf string) error {
	return r.record(ctx, fmt.Sprintf("WORKFLOW_STARTED #%d %s", id, wf))
}

func (r *recorder) NotifyWorkflowCompleted(ctx context.Context, id int64, wf string) error {
	return r.record(ctx, fmt.Sprintf("WORKFLOW_COMPLETED #%d %s", id, wf))
}

func (r *recorder) NotifyWorkflowFailed(ctx context.Context, id int64, wf, reason string) error {
	return r.record(ctx, fmt.Sprintf("WORKFLOW_FAILED #%d %s: %s", id, wf, reason))
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// timeout bounds the waits of a test that would otherwise hang on a bug.
const timeout = 30 * time.Second
