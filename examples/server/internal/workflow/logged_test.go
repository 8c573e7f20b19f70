package workflow_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/philippseith/signalr"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/events"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/workflow"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/internal/testdb"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// noClients is a hub that drops everything: the test reads the log.
type noClients struct{}

func (noClients) Groups(...string) signalr.ClientProxy                        { return nopProxy{} }
func (noClients) GroupsFiltered(_, _ string, _ ...string) signalr.ClientProxy { return nopProxy{} }
func (noClients) Publish(hub.Entry)                                           {}

type nopProxy struct{}

func (nopProxy) Send(string, ...any) {}

// loggedEnv wires the example server's pipeline with the event log: the
// interceptor as the log's writer, the events bridge, a Notifier WithLog,
// and a Runner WithEventsInTransactions.
func loggedEnv(t *testing.T, d testdb.Dialect, opts ...workflow.Option) (*gorm.DB, *eventlog.Log, *workflow.Runner) {
	t.Helper()
	db := testdb.Open(t, d.Open(t))
	if err := db.AutoMigrate(&lead.Lead{}); err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(t.Context(), db, eventlog.WithPollInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n, err := notify.New(noClients{}, notify.WithLog(l))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	p, err := interceptor.New(&lead.Lead{}, events.New(n, nil, nil), interceptor.WithEventLog(l),
		interceptor.WithFields(interceptor.Fields{Audience: "Owner"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := db.Use(p); err != nil {
		t.Fatal(err)
	}
	opts = append([]workflow.Option{workflow.WithStepDelay(0), workflow.WithFailureRate(0), workflow.WithSeed(1),
		workflow.WithEventsInTransactions()}, opts...)
	r, err := workflow.New(db, n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		r.Close(ctx)
	})
	return db, l, r
}

// logOf waits until the log holds a workflow's end for lead id and returns
// the lead's events, summarised, in position order.
func logOf(t *testing.T, l *eventlog.Log, id int64) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := l.History(t.Context(), id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range evs {
			out = append(out, e.Type)
		}
		if slices.Contains(out, notify.TypeWorkflowCompleted) || slices.Contains(out, notify.TypeWorkflowFailed) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no end of the workflow in the log within 30 s: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEventsInTransactions: with the log, WORKFLOW_STARTED is positioned
// just before the first status change, WORKFLOW_COMPLETED just after the
// last one, and WORKFLOW_FAILED just after the move to Failed — each in
// the transaction of that write.
func TestEventsInTransactions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.Dialect) {
		db, l, r := loggedEnv(t, d)
		ld := lead.Lead{Name: "Ada", Status: lead.StatusNew, Source: lead.SourceGoogle, Website: "https://example.com"}
		if err := db.Create(&ld).Error; err != nil {
			t.Fatal(err)
		}
		if err := r.Process(t.Context(), ld.ID); err != nil {
			t.Fatal(err)
		}
		got := logOf(t, l, ld.ID)
		if len(got) < 4 || got[0] != notify.TypeNewLead || got[1] != notify.TypeWorkflowStarted || got[2] != notify.TypeStatusUpdate ||
			got[len(got)-2] != notify.TypeStatusUpdate || got[len(got)-1] != notify.TypeWorkflowCompleted ||
			slices.Index(got, notify.TypeWorkflowStarted) != 1 {
			t.Errorf("logged %q: want NEW_LEAD, WORKFLOW_STARTED, the status changes, WORKFLOW_COMPLETED last", got)
		}

		// Every activity fails: the lead moves to Failed with WORKFLOW_FAILED.
		db2, l2, failing := loggedEnv(t, d, workflow.WithFailureRate(1))
		ld2 := lead.Lead{Name: "Bob", Status: lead.StatusNew, Source: lead.SourceGoogle}
		if err := db2.Create(&ld2).Error; err != nil {
			t.Fatal(err)
		}
		id := ld2.ID
		var fe *workflow.FailedError
		if err := failing.Process(t.Context(), id); !errors.As(err, &fe) {
			t.Fatalf("Process with failure rate 1 = %v, want a FailedError", err)
		}
		got = logOf(t, l2, id)
		want := []string{notify.TypeNewLead, notify.TypeWorkflowStarted, notify.TypeStatusUpdate, notify.TypeStatusUpdate, notify.TypeWorkflowFailed}
		if !slices.Equal(got, want) {
			t.Errorf("failed workflow logged %q, want %q (New>Enriching, Enriching>Failed)", got, want)
		}
	})
}
