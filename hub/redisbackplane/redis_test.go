package redisbackplane_test

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

// sharedRedis returns a client of the Redis the tests share
// (127.0.0.1:6379, or TEST_REDIS_ADDR); it fails the test when that Redis
// does not answer.
func sharedRedis(t testing.TB) *redis.Client {
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

// uniqueChannel names a channel no other test run uses, so that parallel
// runs on the shared Redis do not hear each other.
func uniqueChannel(t testing.TB) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test:" + t.Name() + ":" + hex.EncodeToString(b[:])
}

// privateRedis is a redis-server of the test's own, on a free port, that the
// test may stop and start again; the shared Redis is never touched.
type privateRedis struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startPrivateRedis(t testing.TB) *privateRedis {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
	}
	_ = path
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &privateRedis{t: t, port: ln.Addr().(*net.TCPAddr).Port}
	ln.Close()
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *privateRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// start starts redis-server and waits until it answers.
func (p *privateRedis) start() {
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
	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			p.t.Fatalf("private redis-server on %s did not answer", p.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills redis-server and waits for it to exit.
func (p *privateRedis) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

func (p *privateRedis) String() string { return fmt.Sprintf("redis-server on %s", p.addr()) }
