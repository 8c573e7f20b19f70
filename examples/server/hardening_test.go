package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub/jwtauth"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

// TestRolelessTokenRefusedAtHub: a validly signed token with neither the
// admin nor the sales role is refused by the hub as by the REST API.
func TestRolelessTokenRefusedAtHub(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", filepath.Join(t.TempDir(), "r.db"))
	signer, err := jwtauth.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	roleless, err := signer.Issue("mallory", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	negotiate := func(tok string) int {
		return s.call(t, tok, "POST", "/leadupdates/negotiate?negotiateVersion=1", nil, nil)
	}
	if code := negotiate(roleless); code != http.StatusUnauthorized {
		t.Errorf("negotiate with a role-less token: %d, want 401", code)
	}
	if code := s.call(t, roleless, "GET", "/api/leads", nil, nil); code != http.StatusForbidden {
		t.Errorf("REST with a role-less token: %d, want 403", code)
	}
	if code := negotiate(issue(t, "alice", "sales")); code != http.StatusOK {
		t.Errorf("negotiate with a sales token: %d, want 200", code)
	}
}

// TestNoSecretInOutput: passwords in the database and Redis URLs appear in
// no banner, log line or error, and with a configured JWT secret no admin
// token is printed unless asked for.
func TestNoSecretInOutput(t *testing.T) {
	const pw = "s3cr3t-pw-in-url"
	dbURL := testdb.PostgresURL(t)
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	run := func(wantExit bool, args ...string) string {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append([]string{"-addr", "127.0.0.1:0", "-jwt-secret", secret, "-simulate=false", "-log-level", "debug"}, args...)...)
		var out syncBuf
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if wantExit {
			<-done
			return out.String()
		}
		deadline := time.After(50 * time.Second)
		for !strings.Contains(out.String(), "msg=listening") {
			select {
			case err := <-done:
				t.Fatalf("exited: %v\n%s", err, out.String())
			case <-deadline:
				t.Fatalf("no listening line:\n%s", out.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		cmd.Process.Signal(os.Interrupt)
		<-done
		return out.String()
	}
	// PostgreSQL on the test machine trusts local connections, so the
	// password is ignored there, but it is in the URL as an operator would
	// write it.
	out := run(false, "-db", dbURL+sep+"password="+pw)
	if strings.Contains(out, pw) {
		t.Errorf("the database password is printed:\n%s", out)
	}
	if strings.Contains(out, "demo token") || strings.Contains(out, "#token=") {
		t.Errorf("an admin token is printed with a configured secret:\n%s", out)
	}
	if out := run(false, "-db", dbURL, "-print-token"); !strings.Contains(out, "demo token") {
		t.Errorf("-print-token prints no token:\n%s", out)
	}
	// Redis without a password refuses AUTH: the start fails, and says so
	// without the password.
	out = run(true, "-db", dbURL, "-redis", "redis://:"+pw+"@"+strings.TrimPrefix(redisURL(), "redis://"))
	if strings.Contains(out, pw) {
		t.Errorf("the Redis password is printed:\n%s", out)
	}
	if out := run(true, "-db", "postgres://u:"+pw+"@127.0.0.1:1/x?connect_timeout=1"); strings.Contains(out, pw) || !strings.Contains(out, "unreachable") {
		t.Errorf("an unreachable database's error:\n%s", out)
	}
}

// TestMetricsProtected: /metrics on the main address is for admins only;
// with -metrics-addr it is served there, and not on the main address.
func TestMetricsProtected(t *testing.T) {
	get := func(url, tok string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	s := startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", filepath.Join(t.TempDir(), "m.db"))
	for tok, want := range map[string]int{"": 401, issue(t, "alice", "sales"): 403, issue(t, "ann", "admin"): 200} {
		if code := get(s.url("/metrics"), tok); code != want {
			t.Errorf("GET /metrics: %d, want %d", code, want)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := ln.Addr().String()
	ln.Close()
	s2 := startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", filepath.Join(t.TempDir(), "m2.db"), "-metrics-addr", maddr)
	if code := get("http://"+maddr+"/metrics", ""); code != 200 {
		t.Errorf("GET -metrics-addr /metrics: %d, want 200", code)
	}
	if code := get(s2.url("/metrics"), issue(t, "ann", "admin")); code == 200 {
		t.Errorf("/metrics still served on the main address with -metrics-addr")
	}
}

// TestSlowBodiesClosed: 200 connections that send a request head and then
// drip their body one byte every 2 s are closed within 30 s (the minimum
// body data rate), on the REST API with and without a valid token, while
// normal requests are answered meanwhile.
func TestSlowBodiesClosed(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", "-db", "", "-sqlite", filepath.Join(t.TempDir(), "s.db"))
	admin := issue(t, "ann", "admin")
	const n = 200
	var closed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		auth := ""
		if i%2 == 0 {
			auth = "Authorization: Bearer " + admin + "\r\n"
		}
		path := []string{"/api/leads", "/api/leads/import", "/api/leads/1", "/"}[i%4]
		method := map[string]string{"/api/leads/1": "PATCH"}[path]
		if method == "" {
			method = "POST"
		}
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", method, path, auth)
		wg.Go(func() {
			defer conn.Close()
			buf := make([]byte, 4096)
			for time.Since(start) < 40*time.Second {
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := conn.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						if _, err := conn.Write([]byte(" ")); err != nil {
							closed.Add(1)
							return
						}
						continue
					}
					closed.Add(1) // EOF or reset: the server closed it
					return
				}
				// An answer arrived (400 or 401): the server closes next.
			}
		})
	}
	// Normal requests are answered meanwhile.
	for time.Since(start) < 10*time.Second {
		if code := s.call(t, admin, "GET", "/api/leads", nil, nil); code != 200 {
			t.Fatalf("a normal request during the drip: %d", code)
		}
		if code := s.call(t, admin, "POST", "/api/leads", map[string]any{"name": "x"}, nil); code != 201 {
			t.Fatalf("a normal POST during the drip: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	if c := closed.Load(); c != n || time.Since(start) > 30*time.Second {
		t.Errorf("%d of %d dripping connections closed after %v, want all within 30 s", c, n, time.Since(start).Round(time.Second))
	}
}

// syncBuf is a bytes.Buffer safe for a process's stdout and stderr.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
