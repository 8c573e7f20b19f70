package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// e2eSecret signs the tokens of both server runs, so that the dashboard's
// token stays valid across the restart.
const e2eSecret = "dashboard-e2e-secret-at-least-32-bytes-long"

// TestEndToEnd drives the built dashboard in headless Chromium against the
// real example server (a binary built from ./examples/server, on a fresh
// SQLite file): live rows and metrics, a lead group, the server stopping
// (reconnecting, then labelled sample data) and coming back on the same port
// and database (retry, reload, live again). The scenario is e2e/browser.mjs;
// screenshots go to test-results/.
func TestEndToEnd(t *testing.T) {
	chromium := requireE2E(t)
	tmp := t.TempDir()
	bin := buildServer(t, tmp)

	db := filepath.Join(tmp, "e2e.db")
	srv := startServer(t, bin, "127.0.0.1:0", db)
	u, err := url.Parse(srv.dashboard)
	if err != nil {
		t.Fatalf("dashboard link %q: %v", srv.dashboard, err)
	}
	addr := u.Host
	t.Logf("server: %s", srv.dashboard)

	shots, err := filepath.Abs("test-results")
	if err != nil {
		t.Fatal(err)
	}
	node := exec.CommandContext(t.Context(), "node", filepath.Join("e2e", "browser.mjs"))
	node.Env = append(os.Environ(), "DASHBOARD_URL="+srv.dashboard, "CHROMIUM="+chromium, "SCREENSHOTS="+shots)
	var nodeErr bytes.Buffer
	node.Stderr = &nodeErr
	stdin, err := node.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatalf("node: %v", err)
	}

	var passed bool
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		switch line {
		case "@stop-server":
			srv.stop(t)
			t.Log("server stopped")
			fmt.Fprintln(stdin, "ok")
		case "@start-server":
			srv = startServer(t, bin, addr, db)
			t.Logf("server restarted on %s", addr)
			fmt.Fprintln(stdin, "ok")
		default:
			t.Log(line)
			passed = passed || line == "PASS"
		}
	}
	stdin.Close()
	if err := node.Wait(); err != nil || !passed {
		t.Fatalf("the browser scenario failed (%v):\n%s", err, nodeErr.String())
	}
}

// TestScreenshot makes the README's picture: the dashboard filled by the
// example server's simulated scrapers and workflow (e2e/screenshot.mjs). It
// writes test-results/dashboard.png, or the file DASHBOARD_SCREENSHOT names
// (`make screenshot` names examples/dashboard/screenshot.png).
func TestScreenshot(t *testing.T) {
	chromium := requireE2E(t)
	out := os.Getenv("DASHBOARD_SCREENSHOT")
	if out == "" {
		out = filepath.Join("test-results", "dashboard.png")
	}
	out, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := buildServer(t, tmp)
	// About four new leads a second across the scrapers, each taking a few
	// seconds through the workflow: a full table with some still running.
	srv := startServer(t, bin, "127.0.0.1:0", filepath.Join(tmp, "screenshot.db"),
		"-simulate=true", "-scrape-rate", "40", "-step-delay", "600ms", "-failure-rate", "0.08")

	node := exec.CommandContext(t.Context(), "node", filepath.Join("e2e", "screenshot.mjs"))
	node.Env = append(os.Environ(), "DASHBOARD_URL="+srv.dashboard, "CHROMIUM="+chromium, "SCREENSHOT="+out)
	log, err := node.CombinedOutput()
	t.Logf("%s", log)
	if err != nil || !bytes.Contains(log, []byte("\nPASS\n")) {
		t.Fatalf("the screenshot scenario failed (%v)", err)
	}
}

// buildServer builds ./examples/server, with the dashboard embedded, into dir.
func buildServer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "server")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./examples/server")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/server: %v\n%s", err, out)
	}
	return bin
}

// requireE2E returns Chromium's path, failing (never skipping) with what to
// do when something the test needs is missing.
func requireE2E(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		t.Fatal("examples/dashboard/node_modules/playwright-core is missing: run `make deps`")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium not found at %s: install it with `apt-get install -y chromium` (or set CHROMIUM)", chromium)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: the scenario runs in Node.js 20.19+")
	}
	return chromium
}

// server is one run of the example server binary.
type server struct {
	cmd       *exec.Cmd
	dashboard string
	done      chan struct{}
	stopped   bool
}

// startServer runs bin on addr and the SQLite file db, without the
// simulation unless flags (which come last, so they win) turn it on.
func startServer(t *testing.T, bin, addr, db string, flags ...string) *server {
	t.Helper()
	// -print-token: with a configured secret the server prints its
	// dashboard link with a token only when asked to.
	args := []string{"-addr", addr, "-db=", "-sqlite", db, "-jwt-secret", e2eSecret, "-print-token",
		"-simulate=false", "-step-delay", "0", "-shutdown-timeout", "5s"}
	cmd := exec.Command(bin, append(args, flags...)...)
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "REDIS_URL=")
	var logs lockedBuffer
	cmd.Stderr = &logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	link := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "dashboard: "); ok {
				select {
				case link <- rest:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("server log (%s):\n%s", addr, logs.String())
		}
	})
	select {
	case s.dashboard = <-link:
	case <-s.done:
		t.Fatalf("the server exited before printing its dashboard link:\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the server printed no dashboard link within a minute:\n%s", logs.String())
	}
	waitListening(t, s.dashboard)
	return s
}

// stop interrupts the server (a graceful shutdown: clients are told to
// reconnect) and waits for it to exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Error("the server did not stop within 20 s of SIGINT; killed")
	}
}

func waitListening(t *testing.T, link string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err == nil {
			c.Close()
			return
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("server not listening on %s: %v", u.Host, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer the process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
