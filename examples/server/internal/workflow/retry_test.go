package workflow_test

import (
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/workflow"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

// TestSubmitRetriesWhenBusy: leads Submit finds the runner full for are
// queued and processed later, none left New; Start still refuses them.
func TestSubmitRetriesWhenBusy(t *testing.T) {
	e := newEnv(t, testdb.SQLite)
	r := newRunner(t, e, &recorder{}, workflow.WithConcurrency(1), workflow.WithStepDelay(20*time.Millisecond))
	var ids []int64
	for range 4 {
		ids = append(ids, e.newLead(t, lead.Lead{}))
	}
	for _, id := range ids {
		if err := r.Submit(t.Context(), id); err != nil {
			t.Fatalf("Submit(%d): %v", id, err)
		}
	}
	if r.Pending() != 3 {
		t.Errorf("%d leads waiting, want 3", r.Pending())
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			s := e.get(t, id).Status
			if s == lead.StatusSyncedToCrm || s == lead.StatusDisqualified {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lead %d still %s", id, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if r.Pending() != 0 {
		t.Errorf("%d leads still waiting", r.Pending())
	}
}
