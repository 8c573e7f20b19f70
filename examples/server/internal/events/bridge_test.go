package events_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/philippseith/signalr"

	"github.com/leadupdates/leadupdates/examples/server/internal/events"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// calls records what the bridge asked of a real notifier (on a fake hub),
// failing when err is set.
type calls struct {
	got []string
	err error
}

// audience is the key a real Notifier sends an event given under ctx to.
func audience(ctx context.Context) string {
	fake := &audienceClients{}
	n, _ := notify.New(fake)
	_ = n.NotifyLeadDeleted(ctx, 1)
	n.Close()
	return fake.key
}

type audienceClients struct{ key string }

func (a *audienceClients) Groups(...string) signalr.ClientProxy { return nopProxy{} }
func (a *audienceClients) GroupsFiltered(_, arg string, _ ...string) signalr.ClientProxy {
	a.key = arg
	return nopProxy{}
}

func (a *audienceClients) Publish(hub.Entry) {}

type nopProxy struct{}

func (nopProxy) Send(string, ...any) {}

func (c *calls) add(ctx context.Context, format string, a ...any) error {
	c.got = append(c.got, fmt.Sprintf(format, a...)+" @"+audience(ctx))
	return c.err
}
func (c *calls) NotifyNewLead(ctx context.Context, id int64, l any, source string) error {
	v := l.(lead.View)
	return c.add(ctx, "new %d %s %s %s", id, v.Name, v.Owner, source)
}
func (c *calls) NotifyLeadStatusUpdate(ctx context.Context, id int64, prev, next string) error {
	return c.add(ctx, "status %d %s>%s", id, prev, next)
}
func (c *calls) NotifyLeadScoreUpdate(ctx context.Context, id int64, prev, next float64) error {
	return c.add(ctx, "score %d %g>%g", id, prev, next)
}
func (c *calls) NotifyLeadEnrichment(ctx context.Context, id int64, l any) error {
	return c.add(ctx, "enrichment %d %v", id, l)
}
func (c *calls) NotifyLeadDeleted(ctx context.Context, id int64) error {
	return c.add(ctx, "deleted %d", id)
}

func TestBridgeTurnsChangesIntoNotifications(t *testing.T) {
	for _, failing := range []bool{false, true} {
		n := &calls{}
		if failing {
			n.err = errors.New("queue full")
		}
		triggers := 0
		b := events.New(n, func() { triggers++ }, nil)
		// Each change goes to its own audience: the owner its statement
		// committed (lead 7 was reassigned to bob before its score).
		err := b.Publish(t.Context(), []interceptor.Change{
			{Op: interceptor.OpNewLead, LeadID: 7, Lead: &lead.Lead{ID: 7, Name: "Ada", Owner: "alice", Source: "Google"}, Audience: "alice"},
			{Op: interceptor.OpStatusUpdate, LeadID: 7, PreviousStatus: "New", NewStatus: "Enriching", Audience: "alice"},
			{Op: interceptor.OpEnrichmentUpdate, LeadID: 7, Enrichment: map[string]any{"enrichment_data": `{"employees":12}`}, Audience: "alice"},
			{Op: interceptor.OpScoreUpdate, LeadID: 7, PreviousScore: 0, NewScore: 81.5, Audience: "bob"},
			{Op: interceptor.OpLeadDeleted, LeadID: 7, Soft: true, Audience: "bob"},
		})
		if err != nil {
			t.Errorf("Publish returned %v; it must never fail a write", err)
		}
		want := []string{
			"new 7 Ada alice Google @alice",
			"status 7 New>Enriching @alice",
			"enrichment 7 {7 map[employees:12]} @alice",
			"score 7 0>81.5 @bob",
			"deleted 7 @bob",
		}
		if !reflect.DeepEqual(n.got, want) {
			t.Errorf("failing=%v: notifications\n got %q\nwant %q", failing, n.got, want)
		}
		if triggers != 1 {
			t.Errorf("metrics triggered %d times for one batch, want 1", triggers)
		}
	}
}

// TestBridgeUnderEventLog: before COMMIT (ctx carries the transaction's
// batch) a notification that fails fails Publish, so the write rolls back;
// a writer's hooks run ahead of and behind the changes.
func TestBridgeUnderEventLog(t *testing.T) {
	for _, failing := range []bool{false, true} {
		n := &calls{}
		if failing {
			n.err = errors.New("bad event")
		}
		b := events.New(n, nil, nil)
		ctx := eventlog.NewContext(t.Context(), eventlog.NewBatch())
		ctx = events.WithHooks(ctx, events.Hooks{
			Before: func(ctx context.Context) error { return n.add(ctx, "before") },
			After:  func(ctx context.Context) error { return n.add(ctx, "after") },
		})
		err := b.Publish(ctx, []interceptor.Change{
			{Op: interceptor.OpStatusUpdate, LeadID: 7, PreviousStatus: "New", NewStatus: "Enriching", Audience: "alice"},
		})
		if failing != (err != nil) {
			t.Errorf("failing=%v: Publish returned %v", failing, err)
		}
		want := []string{"before @", "status 7 New>Enriching @alice", "after @"}
		if !reflect.DeepEqual(n.got, want) {
			t.Errorf("failing=%v: calls\n got %q\nwant %q", failing, n.got, want)
		}
	}
}
