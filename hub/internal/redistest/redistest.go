// Package redistest gives the hub's backplane tests their Redis: a client of
// the shared server (127.0.0.1:6379, or TEST_REDIS_ADDR), a channel name no
// other run uses, and a private redis-server a test may stop and restart.
// It is for tests only.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared returns a client of the Redis the tests share; it fails the test
// when that Redis does not answer.
func Shared(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv("TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (start one, e.g. `redis-server`, or set TEST_REDIS_ADDR): %v", addr, err)
	}
	return rdb
}

// Channel names a channel no other test run uses, so that parallel runs on
// the shared Redis do not hear each other.
func Channel(t testing.TB) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test:" + t.Name() + ":" + hex.EncodeToString(b[:])
}

// A Private is a redis-server of the test's own on a free port, which the
// test may Stop and Start again; the shared Redis is never touched.
type Private struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPrivate starts a Private, stopped at the test's cleanup; a missing
// redis-server fails the test.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Private{t: t, port: ln.Addr().(*net.TCPAddr).Port}
	ln.Close()
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Addr is the server's host:port.
func (p *Private) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *Private) String() string { return fmt.Sprintf("redis-server on %s", p.Addr()) }

// Start starts redis-server (again) and waits until it answers.
func (p *Private) Start() {
	p.t.Helper()
	p.cmd = exec.Command("redis-server", "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start redis-server: %v", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(p.cmd, p.done)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not answer within 10 s", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to the running server, e.g. SIGSTOP to make it silent
// while its sockets stay open.
func (p *Private) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop kills redis-server and waits for it to exit.
func (p *Private) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}
