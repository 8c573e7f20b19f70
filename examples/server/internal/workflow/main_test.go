package workflow_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a database with the leads table and the interceptor plugged in,
// recording what it reports.
type env struct {
	db     *gorm.DB
	plugin *interceptor.Plugin
	sink   *sink
}

// newEnv builds an env on a fresh database from open: a testdb.Dialect's
// Open, or testdb.SQLite where the engine does not matter.
func newEnv(t *testing.T, open func(testing.TB) gorm.Dialector, opts ...interceptor.Option) *env {
	t.Helper()
	db := testdb.Open(t, open(t))
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
