package api_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/internal/testdb"
)

// TestQueryTokenRefused: the REST API takes its token from the
// Authorization header only; ?access_token= (which the hub accepts for
// browsers' WebSockets and EventSource) would put tokens into access logs.
func TestQueryTokenRefused(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.Dialect) {
		e := newEnv(t, migrated(t, d.Open))
		for _, p := range []string{"/api/leads", "/api/metrics"} {
			req := httptest.NewRequestWithContext(t.Context(), "GET", p+"?access_token="+e.tokens["admin"], nil)
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("GET %s?access_token=: %d, want 401", p, rec.Code)
			}
		}
		e.do(t, "admin", "GET", "/api/leads", nil).want(t, http.StatusOK)
	})
}

// TestNotYoursIsNotFound: a salesperson cannot tell another user's lead
// from a missing one.
func TestNotYoursIsNotFound(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.Dialect) {
		e := newEnv(t, migrated(t, d.Open))
		theirs := e.create(t, "bob", map[string]any{"name": "Theirs"})
		for _, r := range []struct{ method, path string }{
			{"GET", path(theirs.ID)}, {"PATCH", path(theirs.ID)}, {"DELETE", path(theirs.ID)},
			{"POST", path(theirs.ID, "/process")},
		} {
			var body any
			if r.method == "PATCH" {
				body = map[string]any{"score": 1}
			}
			mine := e.do(t, "alice", r.method, r.path, body)
			missing := e.do(t, "alice", r.method, path(theirs.ID+1000000, r.path[len(path(theirs.ID)):]), body)
			if mine.status != http.StatusNotFound || missing.status != mine.status || string(mine.body) != string(missing.body) {
				t.Errorf("%s %s: another's lead %d %s, a missing one %d %s", r.method, r.path, mine.status, mine.body, missing.status, missing.body)
			}
		}
	})
}

// TestDatabaseDown503: an unreachable database answers 503 with
// Retry-After, not 500.
func TestDatabaseDown503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	db, err := gorm.Open(postgres.Open("postgres://postgres@"+addr+"/test?connect_timeout=2"), &gorm.Config{Logger: logger.Discard, TranslateError: true})
	if err != nil {
		t.Skipf("open: %v", err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	e := newEnv(t, db)
	for _, r := range []struct{ method, path string }{{"GET", "/api/leads"}, {"GET", path(1)}, {"POST", "/api/leads"}} {
		var body any
		if r.method == "POST" {
			body = map[string]any{"name": "x"}
		}
		res := e.do(t, "admin", r.method, r.path, body)
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the database down: %d (Retry-After %q) %s", r.method, r.path, res.status, res.header.Get("Retry-After"), res.body)
		}
	}
}
