package api_test

import (
	"net/http"
	"testing"

	"github.com/leadupdates/leadupdates/internal/testdb"
)

// FuzzBadInput sends arbitrary bodies to every endpoint that reads one, as
// an admin and as a salesperson, on PostgreSQL and SQLite: bad input is
// never a 500.
func FuzzBadInput(f *testing.F) {
	var envs []*env
	for _, d := range testdb.Dialects() {
		e := newEnv(f, migrated(f, d.Open))
		e.create(f, "alice", map[string]any{"name": "Target"}) // id 1
		envs = append(envs, e)
	}
	for _, seed := range []string{
		`{"name": "x"}`, `[{"name": "x"}]`, `{"status": "Enriching"}`, `{"score": 5}`, `{"score": null}`,
		`{"enrichmentData": {"a": [1, {"b": null}]}}`, `{"owner": "bob"}`, `{"name": "\u0000"}`,
		"{\"name\": \"\xff\xfe\"}", `{"email": "a@b"}`, `{"website": "http://[::1"}`, `[null]`, `{"score": 1e309}`,
		`{"enrichmentData": {"x": "\u0000"}}`, `{"name": "x", "name": "y"}`, `[[[[[]]]]]`, `{"status": "Failed"}`,
	} {
		f.Add(uint8(0), seed)
	}
	targets := []struct{ method, path string }{
		{"POST", "/api/leads"}, {"POST", "/api/leads/import"}, {"PATCH", "/api/leads/1"},
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		tg := targets[int(which)%len(targets)]
		for _, e := range envs {
			for _, who := range []string{"admin", "alice"} {
				if res := e.do(t, who, tg.method, tg.path, body); res.status >= http.StatusInternalServerError {
					t.Fatalf("%s %s %q as %s: %d %s", tg.method, tg.path, body, who, res.status, res.body)
				}
			}
		}
	})
}
