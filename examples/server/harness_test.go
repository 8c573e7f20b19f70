package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

// The end-to-end tests build the real binary once and start it as a
// process, as a user does; clients are the real @microsoft/signalr client in
// Node (testdata/listen.mjs) and plain HTTP for the REST API.

const secret = "an-end-to-end-test-secret-of-32-bytes+"

var binary string // built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leadupdates-server")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "server")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the server:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// databases runs f once on a private PostgreSQL schema and once on a fresh
// SQLite file; each gets the server flags that select it.
func databases(t *testing.T, f func(t *testing.T, dbArgs []string)) {
	t.Run("postgres", func(t *testing.T) { f(t, []string{"-db", testdb.PostgresURL(t)}) })
	t.Run("sqlite", func(t *testing.T) {
		f(t, []string{"-db", "", "-sqlite", filepath.Join(t.TempDir(), "leads.db")})
	})
}

// server is one running server process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string // host:port
	out    *lines
	exited chan struct{}
}

// startServer starts the binary with the test secret, a quiet simulation
// and a workflow without delays or failures, plus args (later flags win).
func startServer(t *testing.T, addr string, args ...string) *server {
	t.Helper()
	all := append([]string{"-addr", addr, "-jwt-secret", secret, "-simulate=false", "-step-delay", "0", "-failure-rate", "0", "-log-level", "warn"}, args...)
	cmd := exec.Command(binary, all...)
	s := &server{t: t, cmd: cmd, out: newLines(), exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: "server: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.out.read(stdout)
		cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.stop)
	line := s.out.wait(t, 60*time.Second, func(l string) bool { return strings.HasPrefix(l, "hub: http://") })
	s.addr = strings.TrimSuffix(strings.TrimPrefix(line, "hub: http://"), "/leadupdates")
	return s
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("the server did not stop within 30 s of SIGINT")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Errorf("the server exited with %d after SIGINT", code)
	}
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// issue issues a token signed with the test secret.
func issue(t *testing.T, sub, role string) string {
	t.Helper()
	signer, err := jwtauth.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Issue(sub, []string{role}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call does one REST request and decodes a JSON answer into out (may be nil).
func (s *server) call(t *testing.T, tok, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.url(path), r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// metrics returns /metrics as an admin reads it.
func (s *server) metrics(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", s.url("/metrics"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+issue(t, "metrics-reader", "admin"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// client is a running testdata/listen.mjs.
type client struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *lines
	done  chan struct{}
}

// listen connects a real @microsoft/signalr client to s with tok.
func listen(t *testing.T, s *server, tok, protocol string) *client {
	t.Helper()
	return listenWith(t, s, tok, protocol)
}

// listenWith is listen with extra environment for listen.mjs (STATEFUL=1).
func listenWith(t *testing.T, s *server, tok, protocol string, env ...string) *client {
	t.Helper()
	dir, err := filepath.Abs("../../hub/testdata/client/node_modules/@microsoft/signalr")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the SignalR client is not installed: run `make deps`: %v", err)
	}
	cmd := exec.Command("node", "testdata/listen.mjs")
	cmd.Env = append(os.Environ(), "HUB_URL="+s.url("/leadupdates"), "TOKEN="+tok, "PROTOCOL="+protocol, "SIGNALR_CLIENT="+dir)
	cmd.Env = append(cmd.Env, env...)
	c := &client{cmd: cmd, out: newLines(), done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: "client: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.out.read(stdout)
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-c.done
		}
	})
	// Messages may arrive before start() resolves: look without consuming.
	c.out.seen(t, 30*time.Second, `{"state":"connected"}`)
	return c
}

// event is one line of listen.mjs.
type event struct {
	State        string          `json:"state"`
	Method       string          `json:"method"`
	M            json.RawMessage `json:"m"`
	Joined       *int64          `json:"joined"`
	Left         *int64          `json:"left"`
	JoinE        string          `json:"joinError"`
	ConnectionID string          `json:"connectionId"` // STATEFUL=1
	// The answer to {"catchup": position}.
	CaughtUp   *catchUpRes `json:"caughtUp"`
	CatchUpErr string      `json:"catchUpError"`
}

// message is the part of a LeadUpdateMessage or MetricsUpdateMessage the
// tests read.
type message struct {
	Type           string          `json:"type"`
	LeadID         int64           `json:"leadId"`
	Lead           json.RawMessage `json:"lead"`
	Source         string          `json:"source"`
	PreviousStatus string          `json:"previousStatus"`
	NewStatus      string          `json:"newStatus"`
	PreviousScore  *float64        `json:"previousScore"`
	NewScore       *float64        `json:"newScore"`
	Message        string          `json:"message"`
	Sequence       uint64          `json:"sequence"`
	Metrics        map[string]any  `json:"metrics"`
}

// next returns the next event that match accepts, skipping others, within d.
func (c *client) next(t *testing.T, d time.Duration, match func(event) bool) event {
	t.Helper()
	var ev event
	c.out.wait(t, d, func(l string) bool {
		ev = event{}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("client line %q: %v", l, err)
		}
		return match(ev)
	})
	return ev
}

// nextLead returns the next ReceiveLeadUpdate, skipping metrics and states.
func (c *client) nextLead(t *testing.T) message {
	t.Helper()
	ev := c.next(t, 30*time.Second, func(e event) bool { return e.Method == "ReceiveLeadUpdate" })
	var m message
	if err := json.Unmarshal(ev.M, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// nextMetrics returns the next ReceiveMetricsUpdate that ok accepts.
func (c *client) nextMetrics(t *testing.T, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var m message
	c.next(t, 30*time.Second, func(e event) bool {
		if e.Method != "ReceiveMetricsUpdate" {
			return false
		}
		m = message{}
		json.Unmarshal(e.M, &m)
		return ok(m.Metrics)
	})
	return m.Metrics
}

// send writes one command line to the client.
func (c *client) send(t *testing.T, cmd any) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

// lines collects a process's output lines for the test to wait on, in order.
type lines struct {
	mu     sync.Mutex
	cond   *sync.Cond
	all    []string
	pos    int
	closed bool
}

func newLines() *lines {
	l := &lines{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		l.mu.Unlock()
		l.cond.Broadcast()
	}
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
}

// wait consumes lines until match accepts one and returns it; it fails the
// test when the process ends or d passes first.
func (l *lines) wait(t *testing.T, d time.Duration, match func(string) bool) string {
	t.Helper()
	return l.scan(t, d, true, match)
}

// seen waits until line has been output, without consuming anything.
func (l *lines) seen(t *testing.T, d time.Duration, line string) {
	t.Helper()
	l.scan(t, d, false, func(s string) bool { return s == line })
}

// scan looks at the lines from the unconsumed one on, as they arrive, until
// match accepts one; consume moves past every line it looked at.
func (l *lines) scan(t *testing.T, d time.Duration, consume bool, match func(string) bool) string {
	t.Helper()
	timer := time.AfterFunc(d, l.cond.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(d)
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := l.pos; ; {
		for ; i < len(l.all); i++ {
			s := l.all[i]
			if consume {
				l.pos = i + 1
			}
			l.mu.Unlock()
			ok := match(s)
			l.mu.Lock()
			if ok {
				return s
			}
		}
		if l.closed {
			t.Fatalf("the process ended; its output: %q", l.all)
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("nothing matched within %v; output so far: %q", d, l.all)
		}
		l.cond.Wait()
	}
}

// testWriter logs a process's stderr through t.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(p), nil
}

// rest returns the lines not yet consumed, without consuming them.
func (l *lines) rest() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all[l.pos:]...)
}

// balancer is a load balancer in front of the instances: a reverse proxy
// that sends every request to its current backend, first, until moveTo
// points it elsewhere (as a health check would once an instance is gone).
func balancer(t *testing.T, first *server) (front *server, moveTo func(*server)) {
	t.Helper()
	var target atomic.Pointer[url.URL]
	moveTo = func(s *server) { target.Store(&url.URL{Scheme: "http", Host: s.addr}) }
	moveTo(first)
	lb := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target.Load()) },
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	})
	t.Cleanup(lb.Close)
	return &server{addr: strings.TrimPrefix(lb.URL, "http://")}, moveTo
}
