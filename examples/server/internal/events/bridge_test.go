package events_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/examples/server/internal/events"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/interceptor"
)

// calls records what the bridge asked of the notifier, failing when err is set.
type calls struct {
	got []string
	err error
}

func (c *calls) add(format string, a ...any) error {
	c.got = append(c.got, fmt.Sprintf(format, a...))
	return c.err
}
func (c *calls) NotifyNewLead(_ context.Context, id int64, l any, source string) error {
	v := l.(lead.View)
	return c.add("new %d %s %s %s", id, v.Name, v.Owner, source)
}
func (c *calls) NotifyLeadStatusUpdate(_ context.Context, id int64, prev, next string) error {
	return c.add("status %d %s>%s", id, prev, next)
}
func (c *calls) NotifyLeadScoreUpdate(_ context.Context, id int64, prev, next float64) error {
	return c.add("score %d %g>%g", id, prev, next)
}
func (c *calls) NotifyLeadEnrichment(_ context.Context, id int64, l any) error {
	return c.add("enrichment %d %v", id, l)
}
func (c *calls) NotifyLeadDeleted(_ context.Context, id int64) error {
	return c.add("deleted %d", id)
}

func TestBridgeTurnsChangesIntoNotifications(t *testing.T) {
	for _, failing := range []bool{false, true} {
		n := &calls{}
		if failing {
			n.err = errors.New("queue full")
		}
		owners := access.NewOwners()
		triggers := 0
		b := events.New(n, owners, func() { triggers++ }, nil)
		err := b.Publish(t.Context(), []interceptor.Change{
			{Op: interceptor.OpNewLead, LeadID: 7, Lead: &lead.Lead{ID: 7, Name: "Ada", Owner: "alice", Source: "Google"}},
			{Op: interceptor.OpStatusUpdate, LeadID: 7, PreviousStatus: "New", NewStatus: "Enriching"},
			{Op: interceptor.OpEnrichmentUpdate, LeadID: 7, Enrichment: map[string]any{"enrichment_data": `{"employees":12}`}},
			{Op: interceptor.OpScoreUpdate, LeadID: 7, PreviousScore: 0, NewScore: 81.5},
			{Op: interceptor.OpLeadDeleted, LeadID: 7, Soft: true},
		})
		if err != nil {
			t.Errorf("Publish returned %v; it must never fail a write", err)
		}
		want := []string{
			"new 7 Ada alice Google",
			"status 7 New>Enriching",
			"enrichment 7 {7 map[employees:12]}",
			"score 7 0>81.5",
			"deleted 7",
		}
		if !reflect.DeepEqual(n.got, want) {
			t.Errorf("failing=%v: notifications\n got %q\nwant %q", failing, n.got, want)
		}
		if owners.Owner(7) != "alice" {
			t.Errorf("the owner cache did not learn lead 7's owner before its event")
		}
		if triggers != 1 {
			t.Errorf("metrics triggered %d times for one batch, want 1", triggers)
		}
	}
}
