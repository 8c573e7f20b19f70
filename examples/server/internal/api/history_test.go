package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/api"
	"github.com/leadupdates/leadupdates/internal/testdb"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// fakeLog is an api.EventLog holding events in memory.
type fakeLog struct {
	mu     sync.Mutex
	events []eventlog.Event
	err    error
}

var _ api.EventLog = (*eventlog.Log)(nil)

func (f *fakeLog) add(leadID int64, typ, payload string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := uint64(len(f.events)*2 + 1) // positions need not be a lead's contiguous ones
	f.events = append(f.events, eventlog.Event{Position: p, LeadID: leadID, Type: typ, Payload: json.RawMessage(payload),
		Time: time.Date(2026, 12, 3, 21, 0, int(p), 0, time.UTC)})
	return p
}

func (f *fakeLog) History(_ context.Context, leadID int64, after uint64, limit int) ([]eventlog.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []eventlog.Event
	for _, e := range f.events {
		if e.LeadID == leadID && e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeLog) Head(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if len(f.events) == 0 {
		return 0, nil
	}
	return f.events[len(f.events)-1].Position, nil
}

func withLog(l api.EventLog) func(*api.Config) { return func(c *api.Config) { c.Log = l } }

// historyPage is the answer of GET /api/leads/{id}/history as a client reads it.
type historyPage struct {
	LeadID int64            `json:"leadId"`
	Events []map[string]any `json:"events"`
	Next   uint64           `json:"next"`
}

func TestHistory(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		log := &fakeLog{}
		e := newEnv(t, db, withLog(log))
		mine := e.create(t, "alice", map[string]any{"name": "Ada"})
		other := e.create(t, "bob", map[string]any{"name": "Grace"})
		p1 := log.add(mine.ID, "NEW_LEAD", fmt.Sprintf(`{"type":"NEW_LEAD","leadId":%d,"lead":{"id":%d,"name":"Ada","status":"New"},"source":"Manual","timestamp":"2026-12-03T21:00:01.000Z"}`, mine.ID, mine.ID))
		log.add(other.ID, "NEW_LEAD", fmt.Sprintf(`{"type":"NEW_LEAD","leadId":%d,"timestamp":"2026-12-03T21:00:02.000Z"}`, other.ID))
		p2 := log.add(mine.ID, "STATUS_UPDATE", fmt.Sprintf(`{"type":"STATUS_UPDATE","leadId":%d,"previousStatus":"New","newStatus":"Enriching","timestamp":"2026-12-03T21:00:03.000Z"}`, mine.ID))
		p3 := log.add(mine.ID, "SCORE_UPDATE", fmt.Sprintf(`{"type":"SCORE_UPDATE","leadId":%d,"previousScore":0,"newScore":87.5,"timestamp":"2026-12-03T21:00:04.000Z"}`, mine.ID))

		t.Run("pages", func(t *testing.T) {
			var first historyPage
			e.do(t, "alice", "GET", path(mine.ID, "/history?limit=2"), nil).want(t, http.StatusOK).decode(t, &first)
			if first.LeadID != mine.ID || len(first.Events) != 2 || first.Next != p2 {
				t.Fatalf("first page: %+v, want 2 events and next %d", first, p2)
			}
			want := map[string]any{"type": "NEW_LEAD", "leadId": float64(mine.ID), "source": "Manual", "sequence": float64(p1),
				"lead": map[string]any{"id": float64(mine.ID), "name": "Ada", "status": "New"}, "timestamp": "2026-12-03T21:00:01.000Z"}
			if got := first.Events[0]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("first event\n got %v\nwant %v", got, want)
			}
			if got := first.Events[1]; got["sequence"] != float64(p2) || got["newStatus"] != "Enriching" {
				t.Errorf("second event: %v", got)
			}
			var second historyPage
			e.do(t, "alice", "GET", path(mine.ID, fmt.Sprintf("/history?limit=2&after=%d", first.Next)), nil).
				want(t, http.StatusOK).decode(t, &second)
			if len(second.Events) != 1 || second.Next != 0 || second.Events[0]["sequence"] != float64(p3) ||
				second.Events[0]["newScore"] != 87.5 || second.Events[0]["previousScore"] != float64(0) {
				t.Fatalf("second page: %+v", second)
			}
			var all historyPage
			e.do(t, "admin", "GET", path(mine.ID, "/history"), nil).want(t, http.StatusOK).decode(t, &all)
			if len(all.Events) != 3 || all.Next != 0 {
				t.Fatalf("admin, default limit: %+v", all)
			}
		})

		t.Run("a lead without events", func(t *testing.T) {
			quiet := e.create(t, "alice", map[string]any{"name": "Quiet"})
			r := e.do(t, "alice", "GET", path(quiet.ID, "/history"), nil).want(t, http.StatusOK)
			if string(r.body) != fmt.Sprintf(`{"leadId":%d,"events":[],"next":0}`+"\n", quiet.ID) {
				t.Fatalf("body %s", r.body)
			}
		})

		t.Run("access is the lead's", func(t *testing.T) {
			e.do(t, "bob", "GET", path(mine.ID, "/history"), nil).wantErr(t, http.StatusNotFound, "")
			e.do(t, "nobody", "GET", path(mine.ID, "/history"), nil).want(t, http.StatusForbidden)
			e.do(t, "", "GET", path(mine.ID, "/history"), nil).want(t, http.StatusUnauthorized)
			e.do(t, "admin", "GET", path(999999, "/history"), nil).wantErr(t, http.StatusNotFound, "")
			e.do(t, "admin", "POST", path(mine.ID, "/history"), nil).want(t, http.StatusMethodNotAllowed)
		})

		t.Run("a deleted lead's is its last owner's and the admins'", func(t *testing.T) {
			gone := e.create(t, "alice", map[string]any{"name": "Gone"})
			log.add(gone.ID, "LEAD_DELETED", fmt.Sprintf(`{"type":"LEAD_DELETED","leadId":%d,"timestamp":"2026-12-03T21:00:09.000Z"}`, gone.ID))
			e.do(t, "alice", "DELETE", path(gone.ID), nil).want(t, http.StatusNoContent)
			e.do(t, "alice", "GET", path(gone.ID), nil).want(t, http.StatusNotFound)
			for who, status := range map[string]int{"alice": http.StatusOK, "admin": http.StatusOK, "bob": http.StatusNotFound} {
				r := e.do(t, who, "GET", path(gone.ID, "/history"), nil).want(t, status)
				if status == http.StatusOK {
					var h historyPage
					r.decode(t, &h)
					if len(h.Events) != 1 || h.Events[0]["type"] != "LEAD_DELETED" {
						t.Fatalf("%s: %+v", who, h)
					}
				}
			}
		})

		t.Run("bad after and limit", func(t *testing.T) {
			for _, q := range []string{"after=-1", "after=x", "after=1.5", "after=9223372036854775808"} {
				e.do(t, "alice", "GET", path(mine.ID, "/history?"+q), nil).wantErr(t, http.StatusBadRequest, "after")
			}
			for _, q := range []string{"limit=0", "limit=1001", "limit=x"} {
				e.do(t, "alice", "GET", path(mine.ID, "/history?"+q), nil).wantErr(t, http.StatusBadRequest, "limit")
			}
			e.do(t, "alice", "GET", path(mine.ID, "/history?limit=1000&after=9223372036854775807"), nil).want(t, http.StatusOK)
		})

		t.Run("the list says its position", func(t *testing.T) {
			var pg struct {
				Position *uint64 `json:"position"`
			}
			e.do(t, "alice", "GET", "/api/leads", nil).want(t, http.StatusOK).decode(t, &pg)
			if head, _ := log.Head(t.Context()); pg.Position == nil || *pg.Position != head {
				t.Fatalf("position %v, want %d", pg.Position, head)
			}
		})

		t.Run("an unavailable log is a 503", func(t *testing.T) {
			log.mu.Lock()
			log.err = fmt.Errorf("read lead_events: %w", syscall.ECONNREFUSED)
			log.mu.Unlock()
			t.Cleanup(func() {
				log.mu.Lock()
				log.err = nil
				log.mu.Unlock()
			})
			r := e.do(t, "alice", "GET", path(mine.ID, "/history"), nil).want(t, http.StatusServiceUnavailable)
			if r.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			e.do(t, "alice", "GET", "/api/leads", nil).want(t, http.StatusServiceUnavailable)
		})
	})
}

func TestHistoryWithoutLog(t *testing.T) {
	e := newEnv(t, migrated(t, testdb.SQLite))
	l := e.create(t, "alice", map[string]any{"name": "Ada"})
	if b := e.do(t, "alice", "GET", path(l.ID, "/history"), nil).want(t, http.StatusServiceUnavailable).err(t); b.Error == "" {
		t.Fatal("no message")
	}
	e.do(t, "bob", "GET", path(l.ID, "/history"), nil).want(t, http.StatusNotFound)
	var pg map[string]any
	e.do(t, "alice", "GET", "/api/leads", nil).want(t, http.StatusOK).decode(t, &pg)
	if _, ok := pg["position"]; ok {
		t.Fatalf("a position without a log: %v", pg)
	}
}

// TestHistoryFromTheLog reads a lead's history from a real event log.
func TestHistoryFromTheLog(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		l, err := eventlog.Open(t.Context(), db, eventlog.WithTable(fmt.Sprintf("history_events_%d", time.Now().UnixNano())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		e := newEnv(t, db, withLog(l))
		ada := e.create(t, "alice", map[string]any{"name": "Ada"})
		other := e.create(t, "bob", map[string]any{"name": "Grace"})
		payloads := []string{
			fmt.Sprintf(`{"type":"NEW_LEAD","leadId":%d,"lead":{"id":%d,"name":"Ada"},"timestamp":"2026-12-03T21:00:01.000Z"}`, ada.ID, ada.ID),
			fmt.Sprintf(`{"type":"NEW_LEAD","leadId":%d,"timestamp":"2026-12-03T21:00:02.000Z"}`, other.ID),
			fmt.Sprintf(`{"type":"STATUS_UPDATE","leadId":%d,"previousStatus":"New","newStatus":"Enriching","timestamp":"2026-12-03T21:00:03.000Z"}`, ada.ID),
		}
		for i, p := range payloads {
			id := ada.ID
			if i == 1 {
				id = other.ID
			}
			var ev struct{ Type string }
			_ = json.Unmarshal([]byte(p), &ev)
			if err := l.Append(t.Context(), nil, eventlog.Event{LeadID: id, Type: ev.Type, Audience: "alice", Payload: json.RawMessage(p)}); err != nil {
				t.Fatal(err)
			}
		}
		// PostgreSQL positions committed events in the background.
		var h historyPage
		for deadline := time.Now().Add(30 * time.Second); ; {
			e.do(t, "alice", "GET", path(ada.ID, "/history"), nil).want(t, http.StatusOK).decode(t, &h)
			if len(h.Events) == 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(h.Events) != 2 || h.Events[0]["type"] != "NEW_LEAD" || h.Events[1]["newStatus"] != "Enriching" || h.Next != 0 {
			t.Fatalf("history: %+v", h)
		}
		first, second := h.Events[0]["sequence"].(float64), h.Events[1]["sequence"].(float64)
		if first < 1 || second <= first+1 { // the other lead's event lies between
			t.Fatalf("sequences %v, %v: want positions with one between", first, second)
		}
		if lead := h.Events[0]["lead"].(map[string]any); lead["name"] != "Ada" {
			t.Fatalf("lead %v", lead)
		}
		var pg struct{ Position *uint64 }
		e.do(t, "alice", "GET", "/api/leads", nil).want(t, http.StatusOK).decode(t, &pg)
		if pg.Position == nil || float64(*pg.Position) < second {
			t.Fatalf("list position %v, want at least %v", pg.Position, second)
		}
	})
}
