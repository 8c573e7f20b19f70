package main

import (
	"fmt"
	"net/http"
	"testing"
)

// historyPage is the answer of GET /api/leads/{id}/history.
type historyPage struct {
	LeadID int64     `json:"leadId"`
	Events []message `json:"events"`
	Next   uint64    `json:"next"`
}

// TestLeadHistory: a processed lead's history holds the events a client
// received live, with the same positions as sequences, in the same order;
// it is the lead's to read — its owner's and the admins', also once the
// lead is deleted — and the lead list says the position it reflects.
func TestLeadHistory(t *testing.T) {
	databases(t, func(t *testing.T, db []string) {
		s := startServer(t, "127.0.0.1:0", db...)
		admin, alice, bob := issue(t, "ann", "admin"), issue(t, "alice", "sales"), issue(t, "bob", "sales")
		c := listen(t, s, admin, "json")
		l := s.create(t, admin, map[string]any{"name": "Ada Lovelace", "source": "Google", "owner": "alice"})
		hist := fmt.Sprintf("/api/leads/%d/history", l.ID)
		if code := s.call(t, admin, "POST", fmt.Sprintf("/api/leads/%d/process", l.ID), nil, nil); code != http.StatusAccepted {
			t.Fatalf("process: %d", code)
		}
		var live []message
		for done := false; !done; {
			m := c.nextLead(t)
			if m.LeadID != l.ID {
				continue
			}
			live = append(live, m)
			done = m.Type == "WORKFLOW_COMPLETED" || m.Type == "WORKFLOW_FAILED"
		}

		var h historyPage
		if code := s.call(t, alice, "GET", hist, nil, &h); code != http.StatusOK {
			t.Fatalf("GET history as the owner: %d", code)
		}
		if h.LeadID != l.ID || h.Next != 0 || len(h.Events) != len(live) {
			t.Fatalf("history: lead %d, next %d, %d events; want lead %d, next 0, the %d received live", h.LeadID, h.Next, len(h.Events), l.ID, len(live))
		}
		for i, m := range live {
			got := h.Events[i]
			if got.Sequence == 0 || got.Sequence != m.Sequence || got.Type != m.Type || got.NewStatus != m.NewStatus {
				t.Errorf("event %d: history %s #%d %s, live %s #%d %s", i, got.Type, got.Sequence, got.NewStatus, m.Type, m.Sequence, m.NewStatus)
			}
		}
		if code := s.call(t, bob, "GET", hist, nil, nil); code != http.StatusNotFound {
			t.Errorf("GET history as another salesperson: %d, want 404", code)
		}

		var first historyPage
		if code := s.call(t, admin, "GET", hist+"?limit=2", nil, &first); code != http.StatusOK || len(first.Events) != 2 || first.Next != live[1].Sequence {
			t.Fatalf("first page of 2: %d, %d events, next %d; want next %d", code, len(first.Events), first.Next, live[1].Sequence)
		}
		var rest historyPage
		if code := s.call(t, admin, "GET", fmt.Sprintf("%s?after=%d", hist, first.Next), nil, &rest); code != http.StatusOK ||
			len(rest.Events) != len(live)-2 || rest.Next != 0 {
			t.Fatalf("the rest: %d, %d events, next %d", code, len(rest.Events), rest.Next)
		}

		var page struct {
			Position *uint64 `json:"position"`
		}
		if code := s.call(t, admin, "GET", "/api/leads", nil, &page); code != http.StatusOK || page.Position == nil || *page.Position < live[len(live)-1].Sequence {
			t.Fatalf("GET /api/leads: %d, position %v; want at least %d", code, page.Position, live[len(live)-1].Sequence)
		}

		if code := s.call(t, alice, "DELETE", fmt.Sprintf("/api/leads/%d", l.ID), nil, nil); code != http.StatusNoContent {
			t.Fatalf("DELETE: %d", code)
		}
		for m := c.nextLead(t); m.LeadID != l.ID || m.Type != "LEAD_DELETED"; m = c.nextLead(t) {
		}
		for who, want := range map[string]int{"the owner": http.StatusOK, "an admin": http.StatusOK, "another salesperson": http.StatusNotFound} {
			tok := map[string]string{"the owner": alice, "an admin": admin, "another salesperson": bob}[who]
			var after historyPage
			code := s.call(t, tok, "GET", hist, nil, &after)
			if code != want {
				t.Errorf("GET the deleted lead's history as %s: %d, want %d", who, code, want)
				continue
			}
			if code == http.StatusOK && (len(after.Events) != len(live)+1 || after.Events[len(live)].Type != "LEAD_DELETED") {
				t.Errorf("the deleted lead's history as %s: %d events, want %d ending with LEAD_DELETED", who, len(after.Events), len(live)+1)
			}
		}
	})
}
