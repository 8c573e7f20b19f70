package scraper_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a database with the leads table and the interceptor plugged in.
type env struct {
	db     *gorm.DB
	plugin *interceptor.Plugin
	mu     sync.Mutex
	news   []int64 // ids of NEW_LEAD changes
}

// newEnv builds an env on a fresh database from open: a testdb.Dialect's
// Open, or testdb.SQLite where the engine does not matter.
func newEnv(t *testing.T, open func(testing.TB) gorm.Dialector) *env {
	t.Helper()
	db := testdb.Open(t, open(t))
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
