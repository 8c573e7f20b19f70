package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/interceptor"
)

type imported struct {
	Items []lead.View `json:"items"`
}

func rows(n int, f func(i int, r map[string]any)) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"name": fmt.Sprintf("Lead %d", i), "email": fmt.Sprintf("lead%d@example.com", i)}
		if f != nil {
			f(i, out[i])
		}
	}
	return out
}

func TestImport(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		var got imported
		e.do(t, "admin", "POST", "/api/leads/import", rows(3, func(i int, r map[string]any) {
			r["source"] = []string{"Google", "LinkedIn", ""}[i]
			r["owner"] = []string{"alice", "", "bob"}[i]
		})).want(t, http.StatusCreated).decode(t, &got)
		if len(got.Items) != 3 {
			t.Fatalf("items %+v", got.Items)
		}
		for i, v := range got.Items {
			want := lead.View{ID: v.ID, Name: fmt.Sprintf("Lead %d", i), Email: fmt.Sprintf("lead%d@example.com", i),
				Source: []string{"Google", "LinkedIn", "Manual"}[i], Status: lead.StatusNew, Owner: []string{"alice", "", "bob"}[i],
				CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
			if v.ID == 0 || fmt.Sprint(v) != fmt.Sprint(want) {
				t.Errorf("item %d: %+v, want %+v", i, v, want)
			}
		}
		if n := count(t, db); n != 3 {
			t.Errorf("%d rows, want 3", n)
		}

		// A salesperson imports for themselves.
		e.do(t, "alice", "POST", "/api/leads/import", rows(2, nil)).want(t, http.StatusCreated).decode(t, &got)
		if got.Items[0].Owner != "alice" || got.Items[1].Owner != "alice" {
			t.Errorf("sales import owners %q, %q", got.Items[0].Owner, got.Items[1].Owner)
		}
		// The largest import.
		e.do(t, "admin", "POST", "/api/leads/import", rows(1000, nil)).want(t, http.StatusCreated).decode(t, &got)
		if len(got.Items) != 1000 || count(t, db) != 1005 {
			t.Errorf("1000-row import: %d items, %d rows", len(got.Items), count(t, db))
		}
	})
}

// One bad row stores nothing, and the error names it.
func TestImportValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		many := strings.Repeat(`{"name":"x"},`, 1000)
		for _, c := range []struct {
			name   string
			who    string
			body   any
			status int
			field  string
		}{
			{"bad email", "admin", rows(5, func(i int, r map[string]any) {
				if i == 3 {
					r["email"] = "nope"
				}
			}), 400, "[3].email"},
			{"no name", "admin", `[{"name": "a"}, {}]`, 400, "[1].name"},
			{"null row", "admin", `[{"name": "a"}, null]`, 400, "[1].name"},
			{"bad source", "admin", `[{"name": "a", "source": "Fax"}]`, 400, "[0].source"},
			{"unknown field", "admin", `[{"name": "a"}, {"name": "b", "score": 5}]`, 400, "[1].score"},
			{"wrong type", "admin", `[{"name": "a"}, {"name": ["b"]}]`, 400, "[1].name"},
			{"row not an object", "admin", `[{"name": "a"}, "b"]`, 400, "[1]"},
			{"another's lead", "alice", `[{"name": "a"}, {"name": "b", "owner": "bob"}]`, 403, "[1].owner"},
			{"empty", "admin", `[]`, 400, ""},
			{"null", "admin", `null`, 400, ""},
			{"too many", "admin", "[" + many + `{"name":"x"}]`, 400, ""},
			{"not an array", "admin", `{"name": "a"}`, 400, ""},
			{"trailing data", "admin", `[{"name": "a"}] []`, 400, ""},
			{"bad JSON", "admin", `[{"name": "a"},]`, 400, ""},
			{"too large", "admin", `[{"name": "a", "company": "` + strings.Repeat("a", 1<<20) + `"}]`, 413, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				e.do(t, c.who, "POST", "/api/leads/import", c.body).wantErr(t, c.status, c.field)
			})
		}
		if n := count(t, db); n != 0 {
			t.Errorf("%d rows stored by refused imports", n)
		}
	})
}

// uniqueEmails makes the database refuse a second lead with an email, so
// that a test can fail an import inside its transaction.
func uniqueEmails(t *testing.T, db *gorm.DB) {
	t.Helper()
	if err := db.Exec("CREATE UNIQUE INDEX leads_email_unique ON leads (email) WHERE email <> ''").Error; err != nil {
		t.Fatal(err)
	}
}

// An import that fails in the database after some of its rows were inserted
// (a unique violation in its third batch) stores nothing.
func TestImportDatabaseFailure(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		uniqueEmails(t, db)
		e.create(t, "admin", map[string]any{"name": "First", "email": "taken@example.com"})
		b := e.do(t, "admin", "POST", "/api/leads/import", rows(250, func(i int, r map[string]any) {
			if i == 230 {
				r["email"] = "taken@example.com"
			}
		})).wantErr(t, http.StatusInternalServerError, "")
		if b.Error != "internal error" {
			t.Errorf("message %q", b.Error)
		}
		if n := count(t, db); n != 1 {
			t.Errorf("%d rows, want only the first lead", n)
		}
	})
}

// sink records what the interceptor publishes, and whether each new lead was
// visible to another connection when it was published (committed).
type sink struct {
	db *gorm.DB

	mu      sync.Mutex
	batches [][]string
}

func (s *sink) Publish(ctx context.Context, cs []interceptor.Change) error {
	var batch []string
	for _, c := range cs {
		// Unscoped: delivery is asynchronous, so the lead may be soft-deleted
		// by a later request by the time its NEW_LEAD is published.
		var n int64
		if err := s.db.WithContext(ctx).Unscoped().Model(&lead.Lead{}).Where("id = ?", c.LeadID).Count(&n).Error; err != nil {
			return err
		}
		e := fmt.Sprintf("%s#%d", c.Op, c.LeadID)
		switch c.Op {
		case interceptor.OpNewLead:
			e += fmt.Sprintf(" visible=%v", n == 1)
		case interceptor.OpStatusUpdate:
			e += fmt.Sprintf(" %s->%s", c.PreviousStatus, c.NewStatus)
		case interceptor.OpScoreUpdate:
			e += fmt.Sprintf(" %g->%g", c.PreviousScore, c.NewScore)
		case interceptor.OpLeadDeleted:
			e += fmt.Sprintf(" soft=%v", c.Soft)
		}
		batch = append(batch, e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, batch)
	return nil
}

// withInterceptor plugs the interceptor into db with a recording sink; the
// returned func closes it and returns what was published.
func withInterceptor(t *testing.T, db *gorm.DB) func() [][]string {
	s := &sink{db: db}
	p, err := interceptor.New(&lead.Lead{}, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := db.Use(p); err != nil {
		t.Fatal(err)
	}
	return func() [][]string {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.batches
	}
}

// With the interceptor on the API's *gorm.DB, a refused or failed import
// notifies nothing, and a successful one one NEW_LEAD per row, after commit.
func TestImportNotifications(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		published := withInterceptor(t, db)
		uniqueEmails(t, db)
		e := newEnv(t, db)
		first := e.create(t, "admin", map[string]any{"name": "First", "email": "taken@example.com"})

		e.do(t, "admin", "POST", "/api/leads/import", rows(3, func(i int, r map[string]any) {
			if i == 2 {
				r["website"] = "gopher://x"
			}
		})).wantErr(t, http.StatusBadRequest, "[2].website")
		e.do(t, "admin", "POST", "/api/leads/import", rows(150, func(i int, r map[string]any) {
			if i == 120 {
				r["email"] = "taken@example.com"
			}
		})).want(t, http.StatusInternalServerError)

		var got imported
		e.do(t, "admin", "POST", "/api/leads/import", rows(3, nil)).want(t, http.StatusCreated).decode(t, &got)
		got2 := published()
		want := [][]string{{fmt.Sprintf("NEW_LEAD#%d visible=true", first.ID)}, {}}
		for _, v := range got.Items {
			want[1] = append(want[1], fmt.Sprintf("NEW_LEAD#%d visible=true", v.ID))
		}
		if fmt.Sprint(got2) != fmt.Sprint(want) {
			t.Errorf("published %v\nwant %v", got2, want)
		}
		if n := count(t, db); n != 4 {
			t.Errorf("%d rows, want 4", n)
		}
	})
}

// The API's writes reach the interceptor as the changes they are; refused
// and no-op writes as nothing.
func TestWriteNotifications(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		published := withInterceptor(t, db)
		e := newEnv(t, db)
		id := e.create(t, "alice", map[string]any{"name": "Ada"}).ID
		patch := func(body any, status int) {
			t.Helper()
			e.do(t, "alice", "PATCH", path(id), body).want(t, status)
		}
		patch(map[string]any{"status": "Enriching"}, http.StatusOK)
		patch(map[string]any{"status": "Qualified"}, http.StatusConflict)
		patch(map[string]any{"status": "Enriched", "enrichmentData": map[string]any{"industry": "Software"}}, http.StatusOK)
		patch(map[string]any{"status": "Scored", "score": 80}, http.StatusOK)
		patch(map[string]any{"status": "Scored", "score": 80}, http.StatusOK) // no-op
		patch(map[string]any{"score": 120}, http.StatusBadRequest)
		patch(map[string]any{"score": 90.5}, http.StatusOK)
		e.do(t, "bob", "DELETE", path(id), nil).want(t, http.StatusNotFound)
		e.do(t, "alice", "DELETE", path(id), nil).want(t, http.StatusNoContent)

		got := published()
		d := func(s string) string { return fmt.Sprintf(s, id) }
		want := [][]string{
			{d("NEW_LEAD#%d visible=true")},
			{d("STATUS_UPDATE#%d New->Enriching")},
			{d("STATUS_UPDATE#%d Enriching->Enriched"), d("ENRICHMENT_UPDATE#%d")},
			{d("STATUS_UPDATE#%d Enriched->Scored"), d("SCORE_UPDATE#%d 0->80")},
			{d("SCORE_UPDATE#%d 80->90.5")},
			{d("LEAD_DELETED#%d soft=true")},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("published\n%v\nwant\n%v", got, want)
		}
	})
}
