package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"
)

// TestReassignmentDuringWorkflowOnAnotherInstance: a lead's workflow runs on
// instance A while an admin reassigns the lead from alice to bob through
// instance B (one PostgreSQL, one Redis). From then on alice, connected to
// A, receives nothing of that lead — no enrichment data, no score, no
// status — and bob, connected to B, receives the rest of the workflow: the
// audience of each event is the owner its write committed, not what A
// remembered.
func TestReassignmentDuringWorkflowOnAnotherInstance(t *testing.T) {
	b := make([]byte, 6)
	rand.Read(b)
	shared := []string{"-db", testdb.PostgresURL(t), "-redis", redisURL(), "-redis-channel", "e2e-" + hex.EncodeToString(b)}
	a := startServer(t, "127.0.0.1:0", append(shared, "-step-delay", "1s")...)
	bsrv := startServer(t, "127.0.0.1:0", shared...)
	admin := issue(t, "ann", "admin")
	aliceOnA := listen(t, a, issue(t, "alice", "sales"), "json")
	bobOnB := listen(t, bsrv, issue(t, "bob", "sales"), "messagepack")
	adminOnA := listen(t, a, admin, "json")

	l := a.create(t, admin, map[string]any{"name": "Moving", "owner": "alice"})
	if m := aliceOnA.nextLead(t); m.Type != "NEW_LEAD" || m.LeadID != l.ID {
		t.Fatalf("alice: %+v, want NEW_LEAD of %d", m, l.ID)
	}
	if code := a.call(t, admin, "POST", fmt.Sprintf("/api/leads/%d/process", l.ID), nil, nil); code != http.StatusAccepted {
		t.Fatalf("process on A: %d", code)
	}
	// The workflow has started on A; its next write is a step (1 s) away.
	for {
		m := aliceOnA.nextLead(t)
		if m.LeadID == l.ID && m.Type == "STATUS_UPDATE" && m.NewStatus == "Enriching" {
			break
		}
	}
	for try := 0; ; try++ {
		code := bsrv.call(t, admin, "PATCH", fmt.Sprintf("/api/leads/%d", l.ID), map[string]any{"owner": "bob"}, nil)
		if code == http.StatusOK {
			break
		}
		if code != http.StatusConflict || try > 20 { // 409: the status moved meanwhile
			t.Fatalf("PATCH owner through B: %d", code)
		}
	}

	// Bob receives the rest of the workflow, from the enrichment on.
	var bobs []string
	for {
		m := bobOnB.nextLead(t)
		if m.LeadID != l.ID {
			continue
		}
		bobs = append(bobs, m.Type)
		if m.Type == "WORKFLOW_COMPLETED" || m.Type == "WORKFLOW_FAILED" {
			break
		}
	}
	if want := []string{"ENRICHMENT_UPDATE", "STATUS_UPDATE", "SCORE_UPDATE", "STATUS_UPDATE"}; len(bobs) < len(want)+1 ||
		fmt.Sprint(bobs[:len(want)]) != fmt.Sprint(want) || bobs[len(bobs)-1] != "WORKFLOW_COMPLETED" {
		t.Errorf("bob (the new owner) received %v, want %v ... WORKFLOW_COMPLETED", bobs, want)
	}
	adminOnA.next(t, 30*time.Second, func(e event) bool {
		var m message
		json.Unmarshal(e.M, &m)
		return e.Method == "ReceiveLeadUpdate" && m.LeadID == l.ID && m.Type == "WORKFLOW_COMPLETED"
	})
	time.Sleep(time.Second) // anything still on its way to alice arrives
	for _, line := range aliceOnA.out.rest() {
		var e event
		var m message
		if json.Unmarshal([]byte(line), &e) == nil && e.Method == "ReceiveLeadUpdate" && json.Unmarshal(e.M, &m) == nil && m.LeadID == l.ID {
			t.Errorf("alice (the former owner) received %s %s→%s after the reassignment", m.Type, m.PreviousStatus, m.NewStatus)
		}
	}
}
