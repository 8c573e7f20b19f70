package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

func TestCreate(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		res := e.do(t, "admin", "POST", "/api/leads", map[string]any{
			"name": "Ada Lovelace", "company": "Analytical Engines", "email": "ada@example.com",
			"phone": "+44 20 7946 0000", "website": "https://example.com", "source": "LinkedIn", "owner": "alice",
		}).want(t, http.StatusCreated)
		var v lead.View
		res.decode(t, &v)
		if v.ID == 0 || v.Name != "Ada Lovelace" || v.Company != "Analytical Engines" || v.Email != "ada@example.com" ||
			v.Phone != "+44 20 7946 0000" || v.Website != "https://example.com" || v.Source != "LinkedIn" ||
			v.Status != lead.StatusNew || v.Owner != "alice" || v.Score != nil || v.CreatedAt == "" || v.ProcessedAt != "" {
			t.Errorf("view %+v", v)
		}
		if loc := res.header.Get("Location"); loc != path(v.ID) {
			t.Errorf("Location %q", loc)
		}
		var got lead.View
		e.do(t, "admin", "GET", path(v.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.Name != v.Name || got.Email != v.Email || got.Owner != v.Owner || got.Status != v.Status {
			t.Errorf("stored %+v, created %+v", got, v)
		}

		// Defaults: source Manual, no owner.
		v = e.create(t, "admin", map[string]any{"name": "Bare"})
		if v.Source != lead.SourceManual || v.Owner != "" || v.Status != lead.StatusNew {
			t.Errorf("defaults %+v", v)
		}
	})
}

func TestCreateValidation(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		long := func(n int) string { return strings.Repeat("é", n) }
		for _, c := range []struct {
			name   string
			body   any
			status int
			field  string
		}{
			{"no name", `{"company": "x"}`, 400, "name"},
			{"blank name", `{"name": "   "}`, 400, "name"},
			{"long name", map[string]any{"name": long(201)}, 400, "name"},
			{"NUL in name", map[string]any{"name": "a\x00b"}, 400, "name"},
			{"long company", map[string]any{"name": "x", "company": long(201)}, 400, "company"},
			{"bad email", map[string]any{"name": "x", "email": "not-an-address"}, 400, "email"},
			{"email with a name", map[string]any{"name": "x", "email": "Ada <ada@example.com>"}, 400, "email"},
			{"long phone", map[string]any{"name": "x", "phone": long(51)}, 400, "phone"},
			{"ftp website", map[string]any{"name": "x", "website": "ftp://example.com"}, 400, "website"},
			{"relative website", map[string]any{"name": "x", "website": "example.com"}, 400, "website"},
			{"long website", map[string]any{"name": "x", "website": "https://example.com/" + strings.Repeat("a", 500)}, 400, "website"},
			{"bad source", map[string]any{"name": "x", "source": "Fax"}, 400, "source"},
			{"long owner", map[string]any{"name": "x", "owner": long(101)}, 400, "owner"},
			{"unknown field", `{"name": "x", "status": "Qualified"}`, 400, "status"},
			{"wrong type", `{"name": 5}`, 400, "name"},
			{"not an object", `[{"name": "x"}]`, 400, ""},
			{"bad JSON", `{"name": "x",}`, 400, ""},
			{"truncated", `{"name": "x"`, 400, ""},
			{"empty", ``, 400, ""},
			{"trailing data", `{"name": "x"} {"name": "y"}`, 400, ""},
			{"trailing garbage", `{"name": "x"}]`, 400, ""},
			{"too large", `{"name": "x", "company": "` + strings.Repeat("a", 1<<20) + `"}`, 413, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				b := e.do(t, "admin", "POST", "/api/leads", c.body).wantErr(t, c.status, c.field)
				if c.field != "" && !strings.Contains(b.Error, c.field) {
					t.Errorf("message %q does not name %s", b.Error, c.field)
				}
			})
		}
		if n := count(t, db); n != 0 {
			t.Errorf("%d leads stored", n)
		}
		// Limits count characters, not bytes; trailing whitespace is fine.
		e.do(t, "admin", "POST", "/api/leads", map[string]any{"name": long(200)}).want(t, http.StatusCreated)
		e.do(t, "admin", "POST", "/api/leads", "{\"name\": \"x\"}\n\t ").want(t, http.StatusCreated)
	})
}

func TestCreateRoles(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		if v := e.create(t, "alice", map[string]any{"name": "Mine"}); v.Owner != "alice" {
			t.Errorf("sales lead owned by %q", v.Owner)
		}
		if v := e.create(t, "alice", map[string]any{"name": "Mine too", "owner": "alice"}); v.Owner != "alice" {
			t.Errorf("sales lead owned by %q", v.Owner)
		}
		e.do(t, "alice", "POST", "/api/leads", map[string]any{"name": "For Bob", "owner": "bob"}).
			wantErr(t, http.StatusForbidden, "owner")
		if v := e.create(t, "admin", map[string]any{"name": "For Bob", "owner": "bob"}); v.Owner != "bob" {
			t.Errorf("admin lead owned by %q", v.Owner)
		}
		if n := count(t, db); n != 3 {
			t.Errorf("%d leads, want 3", n)
		}
	})
}

func TestGet(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		mine := e.create(t, "alice", map[string]any{"name": "Mine"})
		nobodys := e.create(t, "admin", map[string]any{"name": "Unassigned"})
		var v lead.View
		e.do(t, "alice", "GET", path(mine.ID), nil).want(t, http.StatusOK).decode(t, &v)
		if v.ID != mine.ID || v.Name != "Mine" {
			t.Errorf("got %+v", v)
		}
		e.do(t, "admin", "GET", path(mine.ID), nil).want(t, http.StatusOK)
		e.do(t, "bob", "GET", path(mine.ID), nil).wantErr(t, http.StatusNotFound, "")
		e.do(t, "alice", "GET", path(nobodys.ID), nil).wantErr(t, http.StatusNotFound, "")
		e.do(t, "admin", "GET", path(nobodys.ID+1000), nil).wantErr(t, http.StatusNotFound, "")
	})
}

func TestList(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		// 7 leads: alice owns 0,2,4,6 (Google), bob 1,3,5 (LinkedIn).
		var ids []int64
		for i := range 7 {
			owner, source := "alice", "Google"
			if i%2 == 1 {
				owner, source = "bob", "LinkedIn"
			}
			ids = append(ids, e.create(t, "admin", map[string]any{"name": fmt.Sprintf("L%d", i), "owner": owner, "source": source}).ID)
		}
		e.do(t, "admin", "PATCH", path(ids[2]), map[string]any{"status": lead.StatusDisqualified}).want(t, http.StatusOK)

		type page struct {
			Items    []lead.View `json:"items"`
			Page     int         `json:"page"`
			PageSize int         `json:"pageSize"`
			Total    int64       `json:"total"`
		}
		list := func(who, query string) (p page, got []int64) {
			t.Helper()
			e.do(t, who, "GET", "/api/leads"+query, nil).want(t, http.StatusOK).decode(t, &p)
			got = []int64{}
			for _, v := range p.Items {
				got = append(got, v.ID)
			}
			return p, got
		}
		rev := func(is ...int) []int64 {
			var out []int64
			for _, i := range is {
				out = append(out, ids[i])
			}
			return out
		}
		for _, c := range []struct {
			who, query      string
			want            []int64
			total, pageSize int
		}{
			{"admin", "", rev(6, 5, 4, 3, 2, 1, 0), 7, 50},
			{"admin", "?pageSize=3", rev(6, 5, 4), 7, 3},
			{"admin", "?pageSize=3&page=3", rev(0), 7, 3},
			{"admin", "?pageSize=3&page=4", nil, 7, 3},
			{"admin", "?owner=bob", rev(5, 3, 1), 3, 50},
			{"admin", "?source=Google&status=New", rev(6, 4, 0), 3, 50},
			{"admin", "?status=Disqualified", rev(2), 1, 50},
			{"admin", "?pageSize=200", rev(6, 5, 4, 3, 2, 1, 0), 7, 200},
			{"alice", "", rev(6, 4, 2, 0), 4, 50},
			{"alice", "?owner=bob", nil, 0, 50},
			{"alice", "?status=New&pageSize=2&page=2", rev(0), 3, 2},
			{"bob", "?source=Google", nil, 0, 50},
		} {
			p, got := list(c.who, c.query)
			if c.want == nil {
				c.want = []int64{}
			}
			if !equal(got, c.want) || p.Total != int64(c.total) || p.PageSize != c.pageSize {
				t.Errorf("%s %q: items %v total %d pageSize %d, want %v %d %d", c.who, c.query, got, p.Total, p.PageSize, c.want, c.total, c.pageSize)
			}
		}
		if p, _ := list("admin", "?pageSize=3&page=4"); p.Items == nil || p.Page != 4 {
			t.Errorf("empty page %+v", p)
		}
		for _, c := range []struct{ query, field string }{
			{"?page=0", "page"}, {"?page=x", "page"}, {"?page=-1", "page"}, {"?page=99999999999999999999", "page"},
			{"?pageSize=0", "pageSize"}, {"?pageSize=201", "pageSize"}, {"?pageSize=1.5", "pageSize"},
			{"?status=Nope", "status"}, {"?source=Fax", "source"}, {"?owner=" + strings.Repeat("a", 101), "owner"},
			{"?owner=%ff", "owner"}, {"?owner=a%00b", "owner"},
		} {
			e.do(t, "admin", "GET", "/api/leads"+c.query, nil).wantErr(t, http.StatusBadRequest, c.field)
		}
	})
}

func TestPatch(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		l := e.create(t, "alice", map[string]any{"name": "Ada"})
		patch := func(who string, body any) lead.View {
			t.Helper()
			var v lead.View
			e.do(t, who, "PATCH", path(l.ID), body).want(t, http.StatusOK).decode(t, &v)
			return v
		}

		v := patch("alice", map[string]any{"status": "Enriching"})
		if v.Status != "Enriching" {
			t.Errorf("status %q", v.Status)
		}
		b := e.do(t, "alice", "PATCH", path(l.ID), map[string]any{"status": "Qualified"}).wantErr(t, http.StatusConflict, "")
		if !strings.Contains(b.Error, "Enriching") || !strings.Contains(b.Error, "Qualified") {
			t.Errorf("message %q", b.Error)
		}
		v = patch("alice", map[string]any{"status": "Enriched", "enrichmentData": map[string]any{"employees": 120, "industry": "Software"}})
		if v.Status != "Enriched" || v.EnrichmentData["employees"] != 120.0 || v.EnrichmentData["industry"] != "Software" {
			t.Errorf("enriched %+v", v)
		}
		var stored lead.Lead
		if err := db.Take(&stored, l.ID).Error; err != nil || stored.EnrichmentData != `{"employees":120,"industry":"Software"}` {
			t.Errorf("stored %q, %v", stored.EnrichmentData, err)
		}
		v = patch("alice", map[string]any{"status": "Scored", "score": 87.5})
		if v.Score == nil || *v.Score != 87.5 {
			t.Errorf("score %v", v.Score)
		}
		v = patch("alice", `{"score": null}`)
		if v.Score != nil {
			t.Errorf("score %v, want none", *v.Score)
		}
		v = patch("alice", map[string]any{"score": 0})
		if v.Score == nil || *v.Score != 0 {
			t.Errorf("score %v, want 0", v.Score)
		}
		if v = patch("alice", map[string]any{"score": 100}); *v.Score != 100 {
			t.Errorf("score %v", *v.Score)
		}

		// Nothing to change: no UPDATE at all, not even of updated_at.
		var updates atomic.Int64
		if err := db.Callback().Update().Before("gorm:update").Register("test:count", func(*gorm.DB) { updates.Add(1) }); err != nil {
			t.Fatal(err)
		}
		before := v
		v = patch("alice", map[string]any{"status": "Scored", "score": 100, "owner": "alice",
			"enrichmentData": map[string]any{"industry": "Software", "employees": 120}})
		patch("alice", `{}`)
		if n := updates.Load(); n != 0 || v.UpdatedAt != before.UpdatedAt {
			t.Errorf("no-op PATCHes wrote: %d updates, updatedAt %s → %s", n, before.UpdatedAt, v.UpdatedAt)
		}
		patch("alice", map[string]any{"score": 99})
		if n := updates.Load(); n != 1 {
			t.Errorf("%d updates, want 1", n)
		}
		patch("alice", map[string]any{"score": 100})

		// Roles.
		e.do(t, "alice", "PATCH", path(l.ID), map[string]any{"owner": "bob"}).wantErr(t, http.StatusForbidden, "")
		e.do(t, "bob", "PATCH", path(l.ID), map[string]any{"score": 1}).wantErr(t, http.StatusNotFound, "")
		if v = patch("admin", map[string]any{"owner": "bob"}); v.Owner != "bob" {
			t.Errorf("owner %q", v.Owner)
		}
		e.do(t, "alice", "PATCH", path(l.ID), map[string]any{"score": 1}).wantErr(t, http.StatusNotFound, "")
		if v = patch("admin", map[string]any{"owner": ""}); v.Owner != "" {
			t.Errorf("owner %q", v.Owner)
		}
		if v = patch("admin", map[string]any{"status": "Failed"}); v.Status != "Failed" {
			t.Errorf("status %q", v.Status)
		}
		e.do(t, "admin", "PATCH", path(l.ID+1000), map[string]any{"score": 1}).wantErr(t, http.StatusNotFound, "")

		// Bad input names the field.
		for _, c := range []struct {
			name   string
			body   any
			status int
			field  string
		}{
			{"unknown status", `{"status": "Won"}`, 400, "status"},
			{"null status", `{"status": null}`, 400, "status"},
			{"numeric status", `{"status": 3}`, 400, "status"},
			{"negative score", `{"score": -0.5}`, 400, "score"},
			{"score over 100", `{"score": 100.01}`, 400, "score"},
			{"huge score", `{"score": 1e400}`, 400, "score"},
			{"string score", `{"score": "high"}`, 400, "score"},
			{"null owner", `{"owner": null}`, 400, "owner"},
			{"long owner", map[string]any{"owner": strings.Repeat("a", 101)}, 400, "owner"},
			{"array enrichment", `{"enrichmentData": [1]}`, 400, "enrichmentData"},
			{"string enrichment", `{"enrichmentData": "x"}`, 400, "enrichmentData"},
			{"null enrichment", `{"enrichmentData": null}`, 400, "enrichmentData"},
			{"big enrichment", map[string]any{"enrichmentData": map[string]string{"x": strings.Repeat("a", 16<<10)}}, 400, "enrichmentData"},
			{"unknown field", `{"name": "Eve"}`, 400, "name"},
			{"trailing data", `{"score": 1}{}`, 400, ""},
			{"bad JSON", `{"score": }`, 400, ""},
			{"empty", ``, 400, ""},
			{"too large", `{"enrichmentData": {"x": "` + strings.Repeat("a", 1<<20) + `"}}`, 413, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				e.do(t, "admin", "PATCH", path(l.ID), c.body).wantErr(t, c.status, c.field)
			})
		}
		var got lead.View
		e.do(t, "admin", "GET", path(l.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.Status != "Failed" || got.Score == nil || *got.Score != 100 || got.Owner != "" {
			t.Errorf("after bad PATCHes %+v", got)
		}
	})
}

// PATCH validates the transition against the status it read and writes only
// if that is still the status: a concurrent move makes it a 409, a
// concurrent delete a 404, and the concurrent write stands.
func TestPatchConflict(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		l := e.create(t, "admin", map[string]any{"name": "Raced"})
		// race runs once, between the PATCH's read and its UPDATE, on
		// another connection.
		var race atomic.Pointer[func()]
		err := db.Callback().Update().Before("gorm:update").Register("test:race", func(tx *gorm.DB) {
			if f := race.Swap(nil); f != nil {
				(*f)()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		moveTo := func(status string) func() {
			return func() {
				if err := db.Exec("UPDATE leads SET status = ? WHERE id = ?", status, l.ID).Error; err != nil {
					t.Error(err)
				}
			}
		}

		f := moveTo(lead.StatusDisqualified)
		race.Store(&f)
		b := e.do(t, "admin", "PATCH", path(l.ID), map[string]any{"status": lead.StatusEnriching, "score": 5}).
			wantErr(t, http.StatusConflict, "")
		if !strings.Contains(b.Error, "Disqualified") {
			t.Errorf("message %q", b.Error)
		}
		var got lead.View
		e.do(t, "admin", "GET", path(l.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.Status != lead.StatusDisqualified || got.Score != nil {
			t.Errorf("after the conflict %+v", got)
		}

		// A salesperson's write is conditional on still owning the lead.
		if err := db.Model(&lead.Lead{}).Where("id = ?", l.ID).Update("owner", "alice").Error; err != nil {
			t.Fatal(err)
		}
		reassign := func() {
			if err := db.Exec("UPDATE leads SET owner = 'bob' WHERE id = ?", l.ID).Error; err != nil {
				t.Error(err)
			}
		}
		race.Store(&reassign)
		e.do(t, "alice", "PATCH", path(l.ID), map[string]any{"score": 5}).wantErr(t, http.StatusConflict, "")
		e.do(t, "alice", "GET", path(l.ID), nil).wantErr(t, http.StatusNotFound, "")

		del := func() {
			if err := db.Delete(&lead.Lead{}, l.ID).Error; err != nil {
				t.Error(err)
			}
		}
		race.Store(&del)
		e.do(t, "admin", "PATCH", path(l.ID), map[string]any{"status": lead.StatusNew}).wantErr(t, http.StatusNotFound, "")
	})
}

func TestDelete(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		mine := e.create(t, "alice", map[string]any{"name": "Mine"})
		theirs := e.create(t, "bob", map[string]any{"name": "Theirs"})
		e.do(t, "alice", "DELETE", path(theirs.ID), nil).wantErr(t, http.StatusNotFound, "")
		res := e.do(t, "alice", "DELETE", path(mine.ID), nil).want(t, http.StatusNoContent)
		if len(res.body) != 0 {
			t.Errorf("204 with a body: %s", res.body)
		}
		e.do(t, "alice", "GET", path(mine.ID), nil).wantErr(t, http.StatusNotFound, "")
		e.do(t, "alice", "DELETE", path(mine.ID), nil).wantErr(t, http.StatusNotFound, "")
		e.do(t, "admin", "PATCH", path(mine.ID), map[string]any{"score": 1}).wantErr(t, http.StatusNotFound, "")
		e.do(t, "admin", "POST", path(mine.ID, "/process"), nil).wantErr(t, http.StatusNotFound, "")
		e.do(t, "admin", "DELETE", path(theirs.ID), nil).want(t, http.StatusNoContent)

		// Soft: the rows are still there, with deleted_at set.
		var rows []lead.Lead
		if err := db.Unscoped().Order("id").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || !rows[0].DeletedAt.Valid || !rows[1].DeletedAt.Valid {
			t.Errorf("rows %+v", rows)
		}
		var p struct{ Total int64 }
		e.do(t, "admin", "GET", "/api/leads", nil).want(t, http.StatusOK).decode(t, &p)
		if p.Total != 0 {
			t.Errorf("deleted leads listed: %d", p.Total)
		}
	})
}
