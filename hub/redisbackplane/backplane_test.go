package redisbackplane_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub/internal/redistest"
	"github.com/leadupdates/leadupdates/hub/redisbackplane"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

const wait = 10 * time.Second

// subscriber runs Subscribe in the background and collects what it
// delivers.
type subscriber struct {
	bp     *redisbackplane.Backplane
	cancel context.CancelFunc
	done   chan error
	msgs   chan string
}

func subscribe(t *testing.T, bp *redisbackplane.Backplane) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{bp: bp, cancel: cancel, done: make(chan error, 1), msgs: make(chan string, 10000)}
	go func() { s.done <- bp.Subscribe(ctx, func(m []byte) { s.msgs <- string(m) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Subscribe returned %v, want context.Canceled", err)
			}
		case <-time.After(wait):
			t.Error("Subscribe did not return after its context was canceled")
		}
	})
	return s
}

func (s *subscriber) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message in time")
		return ""
	}
}

func awaitReady(t *testing.T, bp *redisbackplane.Backplane, want bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for (bp.Ready(t.Context()) == nil) != want {
		if time.Now().After(deadline) {
			t.Fatalf("Ready never became %v", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newBackplane(t *testing.T, rdb redis.UniversalClient, opts ...redisbackplane.Option) *redisbackplane.Backplane {
	t.Helper()
	bp, err := redisbackplane.New(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

func TestNewRejectsBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, tt := range []struct {
		name string
		opt  redisbackplane.Option
	}{
		{"empty channel", redisbackplane.WithChannel("")},
		{"zero backoff", redisbackplane.WithBackoff(0, time.Second)},
		{"decreasing backoff", redisbackplane.WithBackoff(time.Second, time.Millisecond)},
		{"zero health interval", redisbackplane.WithHealthInterval(0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := redisbackplane.New(rdb, tt.opt); err == nil || !strings.HasPrefix(err.Error(), "redisbackplane: ") {
				t.Fatalf("got %v, want an error with the package prefix", err)
			}
		})
	}
	if _, err := redisbackplane.New(nil); err == nil {
		t.Fatal("New accepted a nil client")
	}
}

// A second Backplane on one registry fails at New with an error that says
// what to do; on wrapped registries, two work.
func TestNewSecondOnOneRegistry(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	reg := prometheus.NewPedanticRegistry()
	newBackplane(t, rdb, redisbackplane.WithRegisterer(reg))
	_, err := redisbackplane.New(rdb, redisbackplane.WithRegisterer(reg))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || !strings.HasPrefix(err.Error(), "redisbackplane: metrics already registered on this registry") {
		t.Fatalf("second Backplane on one registry: %v", err)
	}
	shared := prometheus.NewPedanticRegistry()
	for _, instance := range []string{"a", "b"} {
		newBackplane(t, rdb, redisbackplane.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"instance": instance}, shared)))
	}
}

func TestEveryPublishReachesEverySubscriberInOrder(t *testing.T) {
	rdb := redistest.Shared(t)
	ch := redisbackplane.WithChannel(redistest.Channel(t))
	a, b := newBackplane(t, rdb, ch), newBackplane(t, rdb, ch)
	sa, sb := subscribe(t, a), subscribe(t, b)
	awaitReady(t, a, true)
	awaitReady(t, b, true)
	const n = 2000
	var wg sync.WaitGroup
	for _, p := range []struct {
		name string
		bp   *redisbackplane.Backplane
	}{{"a", a}, {"b", b}} {
		wg.Go(func() {
			for i := range n {
				if err := p.bp.Publish(context.Background(), fmt.Appendf(nil, "%s %d", p.name, i)); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range []*subscriber{sa, sb} {
		next := map[string]int{}
		for range 2 * n {
			var from string
			var i int
			if _, err := fmt.Sscanf(s.next(t), "%s %d", &from, &i); err != nil {
				t.Fatal(err)
			}
			if i != next[from] {
				t.Fatalf("from %s: got %d, want %d", from, i, next[from])
			}
			next[from]++
		}
	}
}

func TestUnavailableAtStartRunsDegradedUntilRedisComes(t *testing.T) {
	p := redistest.StartPrivate(t)
	p.Stop()
	reg := prometheus.NewPedanticRegistry()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer rdb.Close()
	bp := newBackplane(t, rdb, redisbackplane.WithRegisterer(reg), redisbackplane.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	s := subscribe(t, bp)
	if err := bp.Ready(t.Context()); !errors.Is(err, redisbackplane.ErrNotSubscribed) {
		t.Fatalf("Ready without Redis: %v", err)
	}
	if err := bp.Publish(t.Context(), []byte("x")); err == nil {
		t.Fatal("Publish without Redis succeeded")
	}
	awaitCount(t, reg, "leadupdates_redisbackplane_reconnects_total", 2)
	if got := count(t, reg, "leadupdates_redisbackplane_subscribed"); got != 0 {
		t.Fatalf("subscribed gauge %v without Redis", got)
	}

	p.Start()
	awaitReady(t, bp, true)
	if err := bp.Publish(t.Context(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t); got != "hello" {
		t.Fatalf("got %q", got)
	}
	if got := count(t, reg, "leadupdates_redisbackplane_subscribed"); got != 1 {
		t.Fatalf("subscribed gauge %v with Redis", got)
	}
}

func TestRedisRestartResubscribes(t *testing.T) {
	p := redistest.StartPrivate(t)
	reg := prometheus.NewPedanticRegistry()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer rdb.Close()
	bp := newBackplane(t, rdb, redisbackplane.WithRegisterer(reg), redisbackplane.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	s := subscribe(t, bp)
	awaitReady(t, bp, true)
	if err := bp.Publish(t.Context(), []byte("before")); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t); got != "before" {
		t.Fatalf("got %q", got)
	}

	p.Stop()
	awaitReady(t, bp, false)
	p.Start()
	awaitReady(t, bp, true)
	if err := bp.Publish(t.Context(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t); got != "after" {
		t.Fatalf("got %q", got)
	}
	if got := count(t, reg, "leadupdates_redisbackplane_reconnects_total"); got < 1 {
		t.Errorf("reconnects %v, want at least 1", got)
	}
}

func TestSilentRedisIsDetected(t *testing.T) {
	p := redistest.StartPrivate(t)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer rdb.Close()
	bp := newBackplane(t, rdb, redisbackplane.WithHealthInterval(50*time.Millisecond), redisbackplane.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	subscribe(t, bp)
	awaitReady(t, bp, true)
	// Pings keep a quiet subscription alive: it stays subscribed across
	// several health intervals.
	time.Sleep(300 * time.Millisecond)
	if err := bp.Ready(t.Context()); err != nil {
		t.Fatalf("a quiet, healthy subscription was dropped: %v", err)
	}
	// A Redis that stops answering (SIGSTOP: the socket stays open) is
	// given up.
	if err := p.Signal(sigStop); err != nil {
		t.Fatal(err)
	}
	awaitReady(t, bp, false)
	if err := p.Signal(sigCont); err != nil {
		t.Fatal(err)
	}
	awaitReady(t, bp, true)
}

func awaitCount(t *testing.T, reg prometheus.Gatherer, name string, atLeast float64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for count(t, reg, name) < atLeast {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %v", name, atLeast)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
