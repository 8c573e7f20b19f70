package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/api"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/notify"
)

func TestNewRequiresCollaborators(t *testing.T) {
	if _, err := api.New(api.Config{}); err == nil {
		t.Fatal("New without collaborators succeeded")
	}
}

func TestAuthentication(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		routes := []struct{ method, path string }{
			{"GET", "/api/leads"}, {"POST", "/api/leads"}, {"POST", "/api/leads/import"},
			{"GET", "/api/leads/1"}, {"PATCH", "/api/leads/1"}, {"DELETE", "/api/leads/1"},
			{"POST", "/api/leads/1/process"}, {"GET", "/api/metrics"}, {"GET", "/api/nothing"},
			{"PUT", "/api/leads"},
		}
		for _, r := range routes {
			for _, who := range []string{"", "not-a-token"} {
				res := e.do(t, who, r.method, r.path, `{}`)
				res.wantErr(t, http.StatusUnauthorized, "")
				if res.header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("%s %s: no WWW-Authenticate", r.method, r.path)
				}
			}
			if r.path != "/api/nothing" && r.method != "PUT" {
				e.do(t, "nobody", r.method, r.path, `{}`).wantErr(t, http.StatusForbidden, "")
			}
		}
	})
}

func TestRouting(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for _, p := range []string{"/api/", "/api/nothing", "/api/leads/", "/api/leads/1/other"} {
			e.do(t, "admin", "GET", p, nil).wantErr(t, http.StatusNotFound, "")
		}
		for _, c := range []struct{ method, path, allow string }{
			{"PUT", "/api/leads", "GET, POST"},
			{"GET", "/api/leads/import", "POST"},
			{"POST", "/api/leads/1", "DELETE, GET, PATCH"},
			{"GET", "/api/leads/1/process", "POST"},
			{"POST", "/api/metrics", "GET"},
		} {
			res := e.do(t, "admin", c.method, c.path, nil)
			res.wantErr(t, http.StatusMethodNotAllowed, "")
			if got := res.header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
		}
		for _, p := range []string{"/api/leads/abc", "/api/leads/0", "/api/leads/-1", "/api/leads/99999999999999999999"} {
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				e.do(t, "admin", m, p, `{}`).wantErr(t, http.StatusBadRequest, "id")
			}
			e.do(t, "admin", "POST", p+"/process", nil).wantErr(t, http.StatusBadRequest, "id")
		}
	})
}

func TestProcess(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		mine := e.create(t, "alice", map[string]any{"name": "Mine"})
		theirs := e.create(t, "bob", map[string]any{"name": "Theirs"})

		var got struct {
			LeadID   int64  `json:"leadId"`
			Workflow string `json:"workflow"`
		}
		e.do(t, "alice", "POST", path(mine.ID, "/process"), nil).want(t, http.StatusAccepted).decode(t, &got)
		if got.LeadID != mine.ID || got.Workflow != "LeadProcessing" {
			t.Errorf("answer %+v", got)
		}
		e.do(t, "admin", "POST", path(theirs.ID, "/process"), nil).want(t, http.StatusAccepted)
		e.do(t, "alice", "POST", path(theirs.ID, "/process"), nil).wantErr(t, http.StatusNotFound, "")
		e.do(t, "alice", "POST", path(999999, "/process"), nil).wantErr(t, http.StatusNotFound, "")
		if want := []int64{mine.ID, theirs.ID}; !equal(e.proc.started, want) {
			t.Errorf("started %v, want %v", e.proc.started, want)
		}

		// Not processable: refused before the workflow is asked.
		e.do(t, "admin", "PATCH", path(mine.ID), map[string]any{"status": lead.StatusEnriching}).want(t, http.StatusOK)
		b := e.do(t, "admin", "POST", path(mine.ID, "/process"), nil).wantErr(t, http.StatusConflict, "")
		if !strings.Contains(b.Error, "Enriching") {
			t.Errorf("message %q", b.Error)
		}
		if len(e.proc.started) != 2 {
			t.Errorf("started %v", e.proc.started)
		}

		// The workflow's own refusals keep their status and message.
		e.proc.err = statusError{http.StatusConflict, "workflow already running"}
		b = e.do(t, "admin", "POST", path(theirs.ID, "/process"), nil).wantErr(t, http.StatusConflict, "")
		if b.Error != "workflow already running" {
			t.Errorf("message %q", b.Error)
		}
		e.proc.err = statusError{http.StatusServiceUnavailable, "too many workflows running, retry later"}
		b = e.do(t, "admin", "POST", path(theirs.ID, "/process"), nil).wantErr(t, http.StatusServiceUnavailable, "")
		if b.Error != "too many workflows running, retry later" {
			t.Errorf("message %q", b.Error)
		}
		e.proc.err = statusError{http.StatusInternalServerError, "pq: secret internals"}
		b = e.do(t, "admin", "POST", path(theirs.ID, "/process"), nil).wantErr(t, http.StatusInternalServerError, "")
		if b.Error != "internal error" {
			t.Errorf("500 leaks %q", b.Error)
		}
		e.proc.err = statusError{http.StatusNotFound, "no such lead"}
		e.do(t, "admin", "POST", path(theirs.ID, "/process"), nil).wantErr(t, http.StatusNotFound, "")
		// Anything else is a 500 that says nothing internal.
		e.proc.err = errors.New("engine exploded at 0xdeadbeef")
		b = e.do(t, "admin", "POST", path(theirs.ID, "/process"), nil).wantErr(t, http.StatusInternalServerError, "")
		if strings.Contains(b.Error, "deadbeef") {
			t.Errorf("500 leaks %q", b.Error)
		}
		if !strings.Contains(e.log.String(), "deadbeef") || !strings.Contains(e.log.String(), "/process") {
			t.Errorf("not logged: %s", e.log.String())
		}
	})
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMetrics(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.metrics.d = notify.Metrics{TotalLeads: 10, QualifiedLeads: 4, ConversionRate: 40, ActiveHarvesters: 2,
			ProcessingTime: 1.5, ScoreAverage: 70, DailyGrowth: 10, WeeklyGrowth: -5, NewLeadsToday: 3,
			ProcessedToday: 2, LeadsBySource: map[string]int64{"Google": 10}, LeadsByStatus: map[string]int64{"New": 6, "Qualified": 4}}
		var got map[string]any
		e.do(t, "alice", "GET", "/api/metrics", nil).want(t, http.StatusOK).decode(t, &got)
		want := map[string]any{"totalLeads": 10.0, "qualifiedLeads": 4.0, "conversionRate": 40.0, "activeHarvesters": 2.0,
			"processingTime": 1.5, "scoreAverage": 70.0, "dailyGrowth": 10.0, "weeklyGrowth": -5.0, "newLeadsToday": 3.0,
			"processedToday": 2.0}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		if s := got["leadsByStatus"].(map[string]any); s["Qualified"] != 4.0 {
			t.Errorf("leadsByStatus %v", s)
		}
		if s := got["leadsBySource"].(map[string]any); s["Google"] != 10.0 {
			t.Errorf("leadsBySource %v", s)
		}
		e.metrics.err = errors.New("relation leads does not exist")
		b := e.do(t, "admin", "GET", "/api/metrics", nil).wantErr(t, http.StatusInternalServerError, "")
		if strings.Contains(b.Error, "relation") {
			t.Errorf("500 leaks %q", b.Error)
		}
	})
}

// A database failure is a logged 500 with a generic message.
func TestDatabaseFailure(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		l := e.create(t, "admin", map[string]any{"name": "Gone"})
		if err := db.Migrator().DropTable(&lead.Lead{}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/leads", nil},
			{"POST", "/api/leads", map[string]any{"name": "x"}},
			{"POST", "/api/leads/import", []map[string]any{{"name": "x"}}},
			{"GET", path(l.ID), nil},
			{"PATCH", path(l.ID), map[string]any{"score": 5}},
			{"DELETE", path(l.ID), nil},
		} {
			b := e.do(t, "admin", r.method, r.path, r.body).wantErr(t, http.StatusInternalServerError, "")
			if b.Error != "internal error" {
				t.Errorf("%s %s: message %q", r.method, r.path, b.Error)
			}
			if logged := e.log.String(); !strings.Contains(logged, "method="+r.method) || !strings.Contains(logged, "path="+r.path) {
				t.Errorf("%s %s not logged: %s", r.method, r.path, logged)
			}
		}
	})
}
