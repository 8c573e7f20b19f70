package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glebarez/sqlite"

	"github.com/leadupdates/leadupdates/metrics"
)

// TestStartsAndServes: the one command starts the whole server, which
// answers its operational endpoints and greets a client with the figures.
func TestStartsAndServes(t *testing.T) {
	databases(t, func(t *testing.T, db []string) {
		s := startServer(t, "127.0.0.1:0", db...)
		// A new connection gets the latest snapshot without waiting for a change.
		c := listen(t, s, issue(t, "ann", "admin"), "json")
		m := c.nextMetrics(t, func(map[string]any) bool { return true })
		if m["totalLeads"] != float64(0) || m["leadsBySource"] == nil {
			t.Errorf("first metrics = %v, want an empty database's", m)
		}
		for path, want := range map[string]string{
			"/healthz": "ok",
			// The dashboard, or how to build it.
			"/":       "html",
			"/readyz": "ready",
			// The hub's, the notifier's, the publisher's and the Go runtime's
			// collectors on one registry (the interceptor's: TestLeadLifecycle).
			"/metrics": `leadupdates_hub_connections{transport="WebSockets"} 1`,
		} {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url(path), nil)
			req.Header.Set("Authorization", "Bearer "+issue(t, "ann", "admin")) // /metrics is for admins
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Errorf("GET %s: %d %.200q, want 200 with %q", path, resp.StatusCode, body, want)
			}
			if path == "/metrics" {
				for _, name := range []string{"leadupdates_notify_", "leadupdates_metrics_", "leadupdates_eventlog_", "go_goroutines", "process_resident_memory_bytes"} {
					if !strings.Contains(string(body), name) {
						t.Errorf("/metrics has no %s*", name)
					}
				}
			}
		}
	})
}

// TestRejectsBadConfiguration: a bad setting stops the start with a message
// that names it, before anything listens.
func TestRejectsBadConfiguration(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"-db", "mysql://x/y"}, nil, `-db: scheme "mysql"`},
		{[]string{"-db", "postgres://postgres@127.0.0.1:1/test?connect_timeout=2"}, nil, "unreachable"},
		{[]string{"-jwt-secret", "short"}, nil, "-jwt-secret: 5 bytes"},
		{[]string{"-failure-rate", "2"}, nil, "-failure-rate"},
		{[]string{"-redis", "http://x"}, nil, "-redis"},
		{[]string{"-redis", "redis://127.0.0.1:1"}, nil, "redis redis://127.0.0.1:1 unreachable"},
		{nil, []string{"LEADUPDATES_SIMULATE=perhaps"}, `LEADUPDATES_SIMULATE="perhaps"`},
		{[]string{"stray"}, nil, `unexpected argument "stray"`},
		{[]string{"-event-retention", "-1h"}, nil, "-event-retention"},
		{nil, []string{"LEADUPDATES_EVENT_LOG=maybe"}, `LEADUPDATES_EVENT_LOG="maybe"`},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, binary, append([]string{"-addr", "127.0.0.1:0", "-sqlite", t.TempDir() + "/x.db"}, tc.args...)...)
		cmd.Env = append(cmd.Environ(), tc.env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err == nil || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v %v: err %v, output %q; want a failure naming %q", tc.args, tc.env, err, out.String(), tc.want)
		}
	}
}

// TestTokenCommand: the token subcommand signs with the server's secret, so
// its token works on the running server; the wrong secret's does not.
func TestTokenCommand(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", t.TempDir()+"/t.db")
	mint := func(sec string, args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"token"}, args...)...)
		cmd.Env = append(cmd.Environ(), "LEADUPDATES_JWT_SECRET="+sec)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	negotiate := func(tok string) int {
		req, _ := http.NewRequest("POST", s.url("/leadupdates/negotiate?negotiateVersion=1"), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tok, err := mint(secret, "-sub", "alice", "-role", "sales", "-ttl", "5m")
	if err != nil {
		t.Fatalf("token: %v %s", err, tok)
	}
	if code := negotiate(tok); code != 200 {
		t.Errorf("negotiate with the token command's token: %d", code)
	}
	other, err := mint(strings.Repeat("x", 40), "-sub", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if code := negotiate(other); code != 401 {
		t.Errorf("negotiate with another secret's token: %d, want 401", code)
	}
	if out, err := mint(secret, "-role", "root"); err == nil || !strings.Contains(out, `role "root"`) {
		t.Errorf("token -role root: %v %q", err, out)
	}
	if out, err := mint("", "-sub", "x"); err == nil || !strings.Contains(out, "LEADUPDATES_JWT_SECRET") {
		t.Errorf("token without a secret: %v %q", err, out)
	}
}

// TestPrunesOldWorkflowFailures: the server deletes recorded workflow
// failures older than two days as it starts (and hourly), keeping the
// recent ones the analytics count.
func TestPrunesOldWorkflowFailures(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.db")
	s := startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", file) // creates the tables
	s.stop()
	db := openGorm(t, sqlite.Open(file+"?_pragma=busy_timeout(5000)"))
	calc, err := metrics.New(db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, at := range []time.Time{now.Add(-72 * time.Hour), now.Add(-49 * time.Hour), now.Add(-time.Hour)} {
		if err := calc.RecordFailure(t.Context(), 1, "Enrich", at); err != nil {
			t.Fatal(err)
		}
	}
	startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", file)
	var left int64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := db.Raw(`SELECT count(*) FROM leads_workflow_failures`).Scan(&left).Error; err != nil {
			t.Fatal(err)
		}
		if left == 1 {
			return
		}
	}
	t.Fatalf("%d workflow failures left 20 s after start, want 1 (the one of the last hour)", left)
}
