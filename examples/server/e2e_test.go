package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// view is the part of a lead the tests read.
type view struct {
	ID             int64          `json:"id"`
	Name           string         `json:"name"`
	Source         string         `json:"source"`
	Status         string         `json:"status"`
	Score          *float64       `json:"score"`
	Owner          string         `json:"owner"`
	EnrichmentData map[string]any `json:"enrichmentData"`
	ProcessedAt    string         `json:"processedAt"`
}

func (s *server) create(t *testing.T, tok string, body map[string]any) view {
	t.Helper()
	var v view
	if code := s.call(t, tok, "POST", "/api/leads", body, &v); code != http.StatusCreated {
		t.Fatalf("POST /api/leads %v: %d", body, code)
	}
	return v
}

// TestLeadLifecycle: each REST write reaches a JSON and a MessagePack
// client as the matching event, after commit, in order, and the figures
// follow.
func TestLeadLifecycle(t *testing.T) {
	databases(t, func(t *testing.T, db []string) {
		s := startServer(t, "127.0.0.1:0", db...)
		admin := issue(t, "ann", "admin")
		clients := []*client{listen(t, s, admin, "json"), listen(t, s, admin, "messagepack")}

		l := s.create(t, admin, map[string]any{"name": "Ada Lovelace", "company": "Engines", "email": "ada@example.com", "source": "LinkedIn", "owner": "alice"})
		if code := s.call(t, admin, "PATCH", fmt.Sprintf("/api/leads/%d", l.ID), map[string]any{"status": "Enriching"}, nil); code != 200 {
			t.Fatalf("PATCH status: %d", code)
		}
		if code := s.call(t, admin, "PATCH", fmt.Sprintf("/api/leads/%d", l.ID), map[string]any{"score": 72.5}, nil); code != 200 {
			t.Fatalf("PATCH score: %d", code)
		}
		// An invalid transition changes nothing and says nothing.
		if code := s.call(t, admin, "PATCH", fmt.Sprintf("/api/leads/%d", l.ID), map[string]any{"status": "SyncedToCrm"}, nil); code != http.StatusConflict {
			t.Errorf("PATCH Enriching → SyncedToCrm: %d, want 409", code)
		}
		if code := s.call(t, admin, "DELETE", fmt.Sprintf("/api/leads/%d", l.ID), nil, nil); code != http.StatusNoContent {
			t.Fatalf("DELETE: %d", code)
		}
		for i, c := range clients {
			m := c.nextLead(t)
			var got view
			json.Unmarshal(m.Lead, &got)
			if m.Type != "NEW_LEAD" || m.LeadID != l.ID || m.Source != "LinkedIn" || got.Name != "Ada Lovelace" || got.Status != "New" || got.Owner != "alice" {
				t.Errorf("client %d: first event %+v (lead %s), want NEW_LEAD of lead %d", i, m, m.Lead, l.ID)
			}
			if m = c.nextLead(t); m.Type != "STATUS_UPDATE" || m.PreviousStatus != "New" || m.NewStatus != "Enriching" {
				t.Errorf("client %d: second event %+v, want STATUS_UPDATE New → Enriching", i, m)
			}
			if m = c.nextLead(t); m.Type != "SCORE_UPDATE" || m.PreviousScore == nil || *m.PreviousScore != 0 || m.NewScore == nil || *m.NewScore != 72.5 {
				t.Errorf("client %d: third event %+v, want SCORE_UPDATE 0 → 72.5", i, m)
			}
			if m = c.nextLead(t); m.Type != "LEAD_DELETED" || m.LeadID != l.ID {
				t.Errorf("client %d: fourth event %+v, want LEAD_DELETED", i, m)
			}
		}
		// The figures follow the changes: one lead came and went.
		clients[0].nextMetrics(t, func(m map[string]any) bool { return m["totalLeads"] == float64(0) && m["newLeadsToday"] == float64(0) })
		var page struct {
			Total int64 `json:"total"`
		}
		if code := s.call(t, admin, "GET", "/api/leads", nil, &page); code != 200 || page.Total != 0 {
			t.Errorf("GET /api/leads after the delete: %d, total %d", code, page.Total)
		}
		body := s.metrics(t)
		if !strings.Contains(string(body), `leadupdates_interceptor_changes_total{outcome="published"} 4`) {
			t.Errorf("/metrics does not count the 4 published changes:\n%s", grep(string(body), "leadupdates_interceptor"))
		}
	})
}

// TestWorkflowEventsInOrder: processing a lead shows the whole workflow, in
// the order of the steps, and the figures count the processed lead.
func TestWorkflowEventsInOrder(t *testing.T) {
	databases(t, func(t *testing.T, db []string) {
		s := startServer(t, "127.0.0.1:0", db...)
		admin := issue(t, "ann", "admin")
		c := listen(t, s, admin, "json")
		l := s.create(t, admin, map[string]any{"name": "Grace Hopper", "company": "Navy", "email": "grace@example.com", "website": "https://example.com"})
		if code := s.call(t, admin, "POST", fmt.Sprintf("/api/leads/%d/process", l.ID), nil, nil); code != http.StatusAccepted {
			t.Fatalf("process: %d", code)
		}
		var got []string
		for {
			m := c.nextLead(t)
			step := m.Type
			if m.Type == "STATUS_UPDATE" {
				step += " " + m.PreviousStatus + ">" + m.NewStatus
			}
			got = append(got, step)
			if strings.HasPrefix(m.Type, "WORKFLOW_COMPLETED") || strings.HasPrefix(m.Type, "WORKFLOW_FAILED") || len(got) > 20 {
				break
			}
		}
		// Within one statement the interceptor reports the enrichment (or
		// score) before the status it changed with it.
		want := []string{"NEW_LEAD", "WORKFLOW_STARTED", "STATUS_UPDATE New>Enriching",
			"ENRICHMENT_UPDATE", "STATUS_UPDATE Enriching>Enriched",
			"SCORE_UPDATE", "STATUS_UPDATE Enriched>Scored", "STATUS_UPDATE Scored>Vetted"}
		if slices.Contains(got, "STATUS_UPDATE Vetted>Qualified") {
			want = append(want, "STATUS_UPDATE Vetted>Qualified", "STATUS_UPDATE Qualified>SyncedToCrm")
		} else {
			want = append(want, "STATUS_UPDATE Vetted>Disqualified")
		}
		if want = append(want, "WORKFLOW_COMPLETED"); !slices.Equal(got, want) {
			t.Errorf("workflow events\n got %q\nwant %q", got, want)
		}
		c.nextMetrics(t, func(m map[string]any) bool { return m["processedToday"] == float64(1) })
	})
}

// TestFailedImportStoresAndSaysNothing: an import with one bad row is
// refused whole; no client hears of any of its rows.
func TestFailedImportStoresAndSaysNothing(t *testing.T) {
	databases(t, func(t *testing.T, db []string) {
		s := startServer(t, "127.0.0.1:0", db...)
		admin := issue(t, "ann", "admin")
		c := listen(t, s, admin, "json")
		var e struct {
			Error, Field string
		}
		rows := []map[string]any{{"name": "One", "source": "Google"}, {"name": "Two", "source": "Myspace"}, {"name": "Three"}}
		if code := s.call(t, admin, "POST", "/api/leads/import", rows, &e); code != http.StatusBadRequest || !strings.Contains(e.Field, "[1]") {
			t.Errorf("import with a bad source: %d %+v, want 400 naming row [1]", code, e)
		}
		var page struct {
			Total int64 `json:"total"`
		}
		if s.call(t, admin, "GET", "/api/leads", nil, &page); page.Total != 0 {
			t.Errorf("%d leads stored by a refused import", page.Total)
		}
		// The next event any client sees is the next real change.
		l := s.create(t, admin, map[string]any{"name": "After"})
		if m := c.nextLead(t); m.Type != "NEW_LEAD" || m.LeadID != l.ID {
			t.Errorf("first event after the refused import: %+v, want NEW_LEAD of %d", m, l.ID)
		}
		// A good import: one NEW_LEAD per row, in order.
		var res struct {
			Items []view `json:"items"`
		}
		if code := s.call(t, admin, "POST", "/api/leads/import", rows[:1:1], &res); code != http.StatusCreated || len(res.Items) != 1 {
			t.Fatalf("import: %d %+v", code, res)
		}
		if m := c.nextLead(t); m.Type != "NEW_LEAD" || m.LeadID != res.Items[0].ID {
			t.Errorf("event of the import: %+v", m)
		}
	})
}

// TestSalesSeesOnlyOwnLeads: a salesperson's dashboard hears only of their
// own leads and may join only their groups; an admin's hears of all.
func TestSalesSeesOnlyOwnLeads(t *testing.T) {
	databases(t, func(t *testing.T, db []string) {
		s := startServer(t, "127.0.0.1:0", db...)
		admin := issue(t, "ann", "admin")
		alice := listen(t, s, issue(t, "alice", "sales"), "messagepack")
		all := listen(t, s, admin, "json")
		bobs := s.create(t, admin, map[string]any{"name": "Bob's", "owner": "bob"})
		nobody := s.create(t, admin, map[string]any{"name": "Unassigned"})
		alices := s.create(t, admin, map[string]any{"name": "Alice's", "owner": "alice"})
		for _, l := range []view{bobs, nobody, alices} {
			if m := all.nextLead(t); m.LeadID != l.ID {
				t.Errorf("admin: event of lead %d, want %d", m.LeadID, l.ID)
			}
		}
		if m := alice.nextLead(t); m.LeadID != alices.ID {
			t.Errorf("alice's first event is of lead %d, want her lead %d only", m.LeadID, alices.ID)
		}
		alice.send(t, map[string]any{"join": bobs.ID})
		if ev := alice.next(t, 10*time.Second, func(e event) bool { return e.JoinE != "" || e.Joined != nil }); ev.JoinE == "" {
			t.Errorf("alice joined Lead_%d, bob's", bobs.ID)
		}
		alice.send(t, map[string]any{"join": alices.ID})
		if ev := alice.next(t, 10*time.Second, func(e event) bool { return e.JoinE != "" || e.Joined != nil }); ev.Joined == nil {
			t.Errorf("alice could not join her own lead's group: %q", ev.JoinE)
		}
		// Through the API too: bob's lead is not hers.
		if code := s.call(t, issue(t, "alice", "sales"), "GET", fmt.Sprintf("/api/leads/%d", bobs.ID), nil, nil); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("alice GET bob's lead: %d", code)
		}
	})
}

// TestClientReconnectsAcrossRestart: stopping the server tells clients to
// reconnect; once it is back (same address, same database) they receive
// again.
func TestClientReconnectsAcrossRestart(t *testing.T) {
	databases(t, func(t *testing.T, db []string) {
		s := startServer(t, "127.0.0.1:0", db...)
		admin := issue(t, "ann", "admin")
		c := listen(t, s, admin, "json")
		before := s.create(t, admin, map[string]any{"name": "Before"})
		if m := c.nextLead(t); m.LeadID != before.ID {
			t.Fatalf("event %+v, want lead %d", m, before.ID)
		}
		addr := s.addr
		s.stop()
		c.next(t, 30*time.Second, func(e event) bool { return e.State == "reconnecting" })
		s2 := startServer(t, addr, db...)
		c.next(t, 60*time.Second, func(e event) bool { return e.State == "reconnected" })
		after := s2.create(t, admin, map[string]any{"name": "After"})
		if m := c.nextLead(t); m.LeadID != after.ID || m.Type != "NEW_LEAD" {
			t.Errorf("after the restart: %+v, want NEW_LEAD of %d", m, after.ID)
		}
	})
}

// TestSimulatedScrapers: with the simulation on, scrapers add leads and
// start their workflows; clients see both.
func TestSimulatedScrapers(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", t.TempDir()+"/sim.db", "-simulate", "-scrape-rate", "600")
	c := listen(t, s, issue(t, "ann", "admin"), "json")
	seen := map[string]bool{}
	for len(seen) < 2 {
		m := c.nextLead(t)
		if m.Type == "NEW_LEAD" && m.Source != "" && m.Source != "Manual" {
			seen["NEW_LEAD"] = true
		}
		if m.Type == "WORKFLOW_STARTED" {
			seen["WORKFLOW_STARTED"] = true
		}
	}
	// The four harvester jobs count as active.
	c.nextMetrics(t, func(m map[string]any) bool { return m["activeHarvesters"] == float64(4) })
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
