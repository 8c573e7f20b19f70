package scraper_test

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
		t.Fatalf("scraper tests need PostgreSQL at %s (in this workspace: /work/shared/services.sh, or set TEST_DATABASE_URL): %v", pgDSN(), err)
	}
	sqlAdmin, _ := admin.DB()
	schema := fmt.Sprintf("sc_%d", rand.Uint64()%1e12)
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

// env is a database with the leads table and the interceptor plugged in.
type env struct {
	db     *gorm.DB
	plugin *interceptor.Plugin
	mu     sync.Mutex
	news   []int64 // ids of NEW_LEAD changes
}

func newEnv(t *testing.T, d dialect) *env {
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
	e := &env{db: db}
	p, err := interceptor.New(&lead.Lead{}, interceptor.SinkFunc(func(_ context.Context, cs []interceptor.Change) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, c := range cs {
			if c.Op == interceptor.OpNewLead {
				e.news = append(e.news, c.LeadID)
			}
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := db.Use(p); err != nil {
		t.Fatal(err)
	}
	e.plugin = p
	return e
}

// newLeads closes the plugin and returns the ids it reported as NEW_LEAD.
func (e *env) newLeads(t *testing.T) []int64 {
	t.Helper()
	if err := e.plugin.Close(); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.news)
}

func (e *env) leads(t *testing.T) []lead.Lead {
	t.Helper()
	var ls []lead.Lead
	if err := e.db.Order("id").Find(&ls).Error; err != nil {
		t.Fatal(err)
	}
	return ls
}

// starter is a Starter recording the leads it was asked to start; err is
// returned by every call, and each call is sent to started when set.
type starter struct {
	mu      sync.Mutex
	ids     []int64
	err     error
	started chan int64
}

func (s *starter) Start(ctx context.Context, id int64) error {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	if s.started != nil {
		select {
		case s.started <- id:
		case <-ctx.Done():
		}
	}
	return s.err
}

func (s *starter) got() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// logs is a go-kit logger keeping every record as "k=v ..." lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Log(kv ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintln(kv...))
	return nil
}

func (l *logs) grep(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
