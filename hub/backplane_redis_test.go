package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/internal/redistest"
	"github.com/leadupdates/leadupdates/hub/redisbackplane"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// The cluster tests over a real Redis (127.0.0.1:6379, or TEST_REDIS_ADDR),
// each on a channel of its own so that parallel runs do not hear each other.

var redisBackplane = backplaneKind{"redis", func(t *testing.T) func() (hub.Backplane, func() bool) {
	rdb := redistest.Shared(t)
	ch := redisbackplane.WithChannel(redistest.Channel(t))
	return func() (hub.Backplane, func() bool) {
		bp, err := redisbackplane.New(rdb, ch)
		if err != nil {
			t.Fatal(err)
		}
		return bp, func() bool { return bp.Ready(context.Background()) == nil }
	}
}}

func TestBackplaneRedis(t *testing.T) {
	t.Run("two instances", func(t *testing.T) { testEveryInstanceReceives(t, redisBackplane, 2) })
	t.Run("three instances", func(t *testing.T) { testEveryInstanceReceives(t, redisBackplane, 3) })
	t.Run("audiences", func(t *testing.T) { testAudiences(t, redisBackplane) })
	t.Run("filter", func(t *testing.T) { testFilterAcrossInstances(t, redisBackplane) })
}

// TestBackplaneRedisRestart stops the Redis two instances share while they
// run, and starts it again: each instance's own clients keep receiving its
// sends, Ready reports the outage, what could not cross is counted on both
// sides, and the instances hear each other again once Redis is back.
func TestBackplaneRedisRestart(t *testing.T) {
	p := redistest.StartPrivate(t)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	ch := redisbackplane.WithChannel(redistest.Channel(t))
	backoff := redisbackplane.WithBackoff(10*time.Millisecond, 100*time.Millisecond)
	var es [2]*env
	var regs [2]*prometheus.Registry
	for i := range es {
		regs[i] = prometheus.NewPedanticRegistry()
		bp, err := redisbackplane.New(rdb, ch, backoff, redisbackplane.WithRegisterer(regs[i]))
		if err != nil {
			t.Fatal(err)
		}
		es[i] = newEnv(t, hub.WithBackplane(bp), hub.WithRegisterer(regs[i]))
	}
	a, b := es[0], es[1]
	ready := func(want bool) {
		t.Helper()
		for i, e := range es {
			awaitCond(t, "instance "+strconv.Itoa(i)+" readiness "+strconv.FormatBool(want), func() bool {
				return (e.s.Ready(t.Context()) == nil) == want
			})
		}
	}
	ready(true)
	wa, _ := a.connect(t)
	wb, _ := b.connect(t)

	a.s.All().Send("ReceiveLeadUpdate", tagged{"a", 0})
	b.s.All().Send("ReceiveLeadUpdate", tagged{"b", 0})
	expectFrom(t, wa, 1, "a", "b")
	expectFrom(t, wb, 1, "a", "b")

	p.Stop()
	ready(false)
	for seq := 1; seq <= 3; seq++ {
		a.s.All().Send("ReceiveLeadUpdate", tagged{"a", seq})
	}
	b.s.All().Send("ReceiveLeadUpdate", tagged{"b", 1})
	awaitCond(t, "the sends Redis did not take to be counted", func() bool {
		return gather(t, regs[0])["leadupdates_hub_backplane_dropped_total{reason=error}"] == 3 &&
			gather(t, regs[1])["leadupdates_hub_backplane_dropped_total{reason=error}"] == 1
	})
	if got := gather(t, regs[0])["leadupdates_redisbackplane_subscribed"]; got != 0 {
		t.Errorf("subscribed gauge %v while Redis is down", got)
	}

	p.Start()
	ready(true)
	a.s.All().Send("ReceiveLeadUpdate", tagged{"a", 4})
	b.s.All().Send("ReceiveLeadUpdate", tagged{"b", 2})
	// A's clients got all of A's sends, at once; B's, once Redis was back.
	t.Run("client of A", func(t *testing.T) {
		var fromA []int
		var fromB []int
		for range 5 {
			got := nextTagged(t, wa)
			if got.From == "a" {
				fromA = append(fromA, got.Seq)
			} else {
				fromB = append(fromB, got.Seq)
			}
		}
		if want := []int{1, 2, 3, 4}; !equalInts(fromA, want) || !equalInts(fromB, []int{2}) {
			t.Errorf("from A %v (want %v), from B %v (want [2])", fromA, want, fromB)
		}
	})
	t.Run("client of B", func(t *testing.T) {
		var got []tagged
		for range 3 {
			got = append(got, nextTagged(t, wb))
		}
		// b 1 locally during the outage; then a 4 and b 2 in either order.
		if got[0] != (tagged{"b", 1}) || !containsTagged(got[1:], tagged{"a", 4}) || !containsTagged(got[1:], tagged{"b", 2}) {
			t.Errorf("got %+v", got)
		}
	})
	if got := gather(t, regs[1])["leadupdates_hub_backplane_lost_total{reason=gap}"]; got != 3 {
		t.Errorf("B counted %v sends of A lost, want 3", got)
	}
	if got := gather(t, regs[0])["leadupdates_hub_backplane_lost_total{reason=gap}"]; got != 1 {
		t.Errorf("A counted %v sends of B lost, want 1", got)
	}
	if got := gather(t, regs[0])["leadupdates_redisbackplane_reconnects_total"]; got < 1 {
		t.Errorf("reconnects %v, want at least 1", got)
	}
}

// TestBackplaneRedisUnavailableAtStart: an instance whose Redis is down when
// it starts serves its own clients and is not ready until Redis comes.
func TestBackplaneRedisUnavailableAtStart(t *testing.T) {
	p := redistest.StartPrivate(t)
	p.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	bp, err := redisbackplane.New(rdb, redisbackplane.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, hub.WithBackplane(bp))
	if err := e.s.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "not subscribed") {
		t.Fatalf("Ready with Redis down: %v", err)
	}
	w, _ := e.connect(t)
	e.s.All().Send("ReceiveLeadUpdate", tagged{"local", 0})
	expectFrom(t, w, 1, "local")
	p.Start()
	awaitCond(t, "the instance to become ready", func() bool { return e.s.Ready(t.Context()) == nil })
}

// TestBackplaneNodeClients: the real @microsoft/signalr client, on every
// transport and both protocols, connected to two instances joined by Redis,
// receives every send of both, in each sender's order, once.
func TestBackplaneNodeClients(t *testing.T) {
	dir, err := filepath.Abs("testdata/client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@microsoft", "signalr")); err != nil {
		t.Fatalf("the Node client is not installed: run `npm ci --prefix hub/testdata/client` (or `make deps`): %v", err)
	}
	es := cluster(t, 2, redisBackplane)
	const n = 200
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "backplane.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HUB_URLS="+es[0].ts.URL+","+es[1].ts.URL, "N="+strconv.Itoa(n), "SENDERS=2")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 16<<20)
	type report struct {
		Ready  bool     `json:"ready"`
		Client string   `json:"client"`
		Got    []tagged `json:"got"`
	}
	var reports []report
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Logf("client: %s", sc.Text())
			continue
		}
		if r.Ready {
			var wg sync.WaitGroup
			for i, e := range es {
				from := "instance" + strconv.Itoa(i)
				wg.Go(func() {
					for seq := range n {
						e.s.Group(hub.DefaultGroup).Send("ReceiveLeadUpdate", tagged{from, seq})
					}
				})
			}
			wg.Wait()
			continue
		}
		reports = append(reports, r)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v", err)
	}
	if len(reports) != 8 {
		t.Fatalf("%d clients reported, want 8", len(reports))
	}
	for _, r := range reports {
		t.Run(r.Client, func(t *testing.T) {
			next := map[string]int{}
			for _, m := range r.Got {
				if m.Seq != next[m.From] {
					t.Fatalf("from %s: got seq %d, want %d", m.From, m.Seq, next[m.From])
				}
				next[m.From]++
			}
			if len(r.Got) != 2*n || next["instance0"] != n || next["instance1"] != n {
				t.Fatalf("got %d messages (%v), want %d from each instance", len(r.Got), next, n)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func containsTagged(s []tagged, v tagged) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
