package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/prometheus/client_golang/prometheus"
)

// bus is an in-memory backplane shared by the instances of one test: every
// Publish reaches every subscriber, in order. It stands for Redis in the
// tests of the hub's own side; backplane_redis_test.go runs the same cases
// over a real Redis.
type bus struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
	down bool // Publish fails, as with the backplane unreachable
}

func newBus() *bus { return &bus{subs: map[chan []byte]struct{}{}} }

func (b *bus) Publish(ctx context.Context, msg []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errors.New("bus is down")
	}
	for ch := range b.subs {
		select {
		case ch <- bytes.Clone(msg):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (b *bus) Subscribe(ctx context.Context, deliver func([]byte)) error {
	ch := make(chan []byte, 1024)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-ch:
			deliver(m)
		}
	}
}

func (b *bus) subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *bus) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

// backplanes are the kinds of backplane every cluster test runs over; each
// returns the backplane of one more instance of the same hub, and a wait
// for it to be subscribed.
type backplaneKind struct {
	name string
	// join returns a new instance's backplane; all instances of one test
	// share the same hub.
	join func(t *testing.T) func() (hub.Backplane, func() bool)
}

var memoryBackplane = backplaneKind{"memory", func(t *testing.T) func() (hub.Backplane, func() bool) {
	b := newBus()
	n := 0
	return func() (hub.Backplane, func() bool) {
		n++
		want := n
		return b, func() bool { return b.subscribers() >= want }
	}
}}

// cluster starts n hub instances joined by backplanes from join, each with
// opts, and waits until every one is subscribed.
func cluster(t *testing.T, n int, kind backplaneKind, opts ...hub.Option) []*env {
	t.Helper()
	join := kind.join(t)
	es := make([]*env, n)
	for i := range es {
		bp, ready := join()
		es[i] = newEnv(t, append(slices.Clone(opts), hub.WithBackplane(bp))...)
		awaitCond(t, fmt.Sprintf("instance %d to subscribe", i), ready)
	}
	for i, e := range es {
		awaitCond(t, fmt.Sprintf("instance %d to be ready", i), func() bool { return e.s.Ready(t.Context()) == nil })
	}
	return es
}

// tagged is the argument the cluster tests send: who sent it and its place
// in that sender's sequence.
type tagged struct {
	From string `json:"from"`
	Seq  int    `json:"seq"`
}

// nextTagged reads the next ReceiveLeadUpdate and decodes its argument.
func nextTagged(t *testing.T, w *rawWS) tagged {
	t.Helper()
	m := w.nextJSON(true)
	var got tagged
	if m.Type != 1 || m.Target != "ReceiveLeadUpdate" || len(m.Arguments) != 1 || json.Unmarshal(m.Arguments[0], &got) != nil {
		t.Fatalf("want ReceiveLeadUpdate(tagged), got %s", m.Raw)
	}
	return got
}

// expectFrom reads until it has n messages from every sender in from, and
// fails on any message out of its sender's order, duplicated, or from
// elsewhere.
func expectFrom(t *testing.T, w *rawWS, n int, from ...string) {
	t.Helper()
	next := map[string]int{}
	for _, f := range from {
		next[f] = 0
	}
	for range n * len(from) {
		got := nextTagged(t, w)
		want, ok := next[got.From]
		if !ok {
			t.Fatalf("unexpected message %+v", got)
		}
		if got.Seq != want {
			t.Fatalf("from %s: got seq %d, want %d (out of order, lost or duplicated)", got.From, got.Seq, want)
		}
		next[got.From]++
	}
}

func testEveryInstanceReceives(t *testing.T, kind backplaneKind, n int) {
	es := cluster(t, n, kind)
	const perSender = 300
	clients := make([][]*rawWS, n)
	for i, e := range es {
		for range 2 {
			w, _ := e.connect(t)
			clients[i] = append(clients[i], w)
		}
	}
	var senders []string
	var wg sync.WaitGroup
	for i, e := range es {
		from := fmt.Sprint("instance", i)
		senders = append(senders, from)
		wg.Go(func() {
			for seq := range perSender {
				if seq%2 == 0 {
					e.s.All().Send("ReceiveLeadUpdate", tagged{from, seq})
				} else {
					e.s.Group(hub.DefaultGroup).Send("ReceiveLeadUpdate", tagged{from, seq})
				}
			}
		})
	}
	wg.Wait()
	for i, ws := range clients {
		for j, w := range ws {
			t.Run(fmt.Sprintf("client %d on instance %d", j, i), func(t *testing.T) {
				expectFrom(t, w, perSender, senders...)
			})
		}
	}
	// Nothing more came: the next record is this completion.
	for _, ws := range clients {
		for _, w := range ws {
			w.invoke("end", "LeaveLeadGroup", 1).ok(t)
		}
	}
}

func testAudiences(t *testing.T, kind backplaneKind) {
	es := cluster(t, 3, kind, hub.WithAuthenticator(staticTokens))
	a, b, c := es[0], es[1], es[2]
	aliceA := connectAs(t, a, "alice")
	bobB, bobID := b.connectAs(t, "bob")
	aliceC := connectAs(t, c, "alice")
	bobB.invoke("j", "JoinLeadGroup", 7).ok(t)
	aliceC.invoke("j", "JoinLeadGroup", 8).ok(t)

	a.s.Group(hub.LeadGroup(7)).Send("ReceiveLeadUpdate", tagged{"group7", 0})
	a.s.Groups(hub.LeadGroup(7), hub.LeadGroup(8)).Send("ReceiveLeadUpdate", tagged{"groups78", 0})
	a.s.User("alice").Send("ReceiveLeadUpdate", tagged{"user-alice", 0})
	a.s.Client(bobID).Send("ReceiveLeadUpdate", tagged{"client-bob", 0})
	c.s.Groups(hub.DefaultGroup, hub.LeadGroup(8)).Send("ReceiveLeadUpdate", tagged{"both", 0})
	// A marker from each sender: per-sender order means that anything
	// wrongly delivered would come before it.
	a.s.All().Send("ReceiveLeadUpdate", tagged{"end-a", 0})
	c.s.All().Send("ReceiveLeadUpdate", tagged{"end-c", 0})

	for _, tt := range []struct {
		name string
		w    *rawWS
		want []string // in order per sender; senders a then c here
	}{
		{"alice on A", aliceA, []string{"user-alice", "end-a", "both", "end-c"}},
		{"bob on B", bobB, []string{"group7", "groups78", "client-bob", "end-a", "both", "end-c"}},
		{"alice on C", aliceC, []string{"groups78", "user-alice", "end-a", "both", "end-c"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var fromA, fromC []string
			for range tt.want {
				got := nextTagged(t, tt.w)
				switch got.From {
				case "both", "end-c":
					fromC = append(fromC, got.From)
				default:
					fromA = append(fromA, got.From)
				}
			}
			if got := append(fromA, fromC...); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func testFilterAcrossInstances(t *testing.T, kind backplaneKind) {
	// owner: arg is the lead's owner; managers see everything.
	owner := hub.WithFilter("owner", func(arg string, p *hub.Principal) bool {
		return arg == p.ID || p.HasRole("manager")
	})
	es := cluster(t, 2, kind, hub.WithAuthenticator(staticTokens), owner)
	a, b := es[0], es[1]
	aliceA, bobA := connectAs(t, a, "alice"), connectAs(t, a, "bob")
	aliceB, bobB := connectAs(t, b, "alice"), connectAs(t, b, "bob")

	a.s.GroupsFiltered("owner", "bob", hub.DefaultGroup).Send("ReceiveLeadUpdate", tagged{"bobs-lead", 0})
	a.s.GroupsFiltered("owner", "alice", hub.DefaultGroup).Send("ReceiveLeadUpdate", tagged{"alices-lead", 0})
	a.s.GroupsFiltered("no-such-filter", "alice", hub.DefaultGroup).Send("ReceiveLeadUpdate", tagged{"unknown-filter", 0})
	a.s.All().Send("ReceiveLeadUpdate", tagged{"end", 0})
	for _, tt := range []struct {
		name string
		w    *rawWS
		want string
	}{
		{"alice on A", aliceA, "alices-lead"},
		{"bob on A", bobA, "bobs-lead"},
		{"alice on B", aliceB, "alices-lead"},
		{"bob on B", bobB, "bobs-lead"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, want := range []string{tt.want, "end"} {
				if got := nextTagged(t, tt.w); got.From != want {
					t.Fatalf("got %q, want %q", got.From, want)
				}
			}
		})
	}
}

func TestBackplaneMemory(t *testing.T) {
	t.Run("two instances", func(t *testing.T) { testEveryInstanceReceives(t, memoryBackplane, 2) })
	t.Run("three instances", func(t *testing.T) { testEveryInstanceReceives(t, memoryBackplane, 3) })
	t.Run("audiences", func(t *testing.T) { testAudiences(t, memoryBackplane) })
	t.Run("filter", func(t *testing.T) { testFilterAcrossInstances(t, memoryBackplane) })
}

func TestBackplaneOutageLosesOnlyRemoteAndCounts(t *testing.T) {
	regB := prometheus.NewPedanticRegistry()
	regA := prometheus.NewPedanticRegistry()
	b0 := newBus()
	a := newEnv(t, hub.WithBackplane(b0), hub.WithRegisterer(regA))
	awaitCond(t, "A to subscribe", func() bool { return b0.subscribers() == 1 })
	b := newEnv(t, hub.WithBackplane(b0), hub.WithRegisterer(regB))
	awaitCond(t, "B to subscribe", func() bool { return b0.subscribers() == 2 })
	wa, _ := a.connect(t)
	wb, _ := b.connect(t)

	a.s.All().Send("ReceiveLeadUpdate", tagged{"a", 0})
	if got := nextTagged(t, wb); got != (tagged{"a", 0}) {
		t.Fatalf("B got %+v", got)
	}
	b0.setDown(true)
	for seq := 1; seq <= 3; seq++ {
		a.s.All().Send("ReceiveLeadUpdate", tagged{"a", seq})
	}
	awaitCond(t, "the failed publishes to be counted", func() bool {
		return gather(t, regA)["leadupdates_hub_backplane_dropped_total{reason=error}"] == 3
	})
	b0.setDown(false)
	a.s.All().Send("ReceiveLeadUpdate", tagged{"a", 4})
	expectFrom(t, wa, 5, "a") // local delivery went on
	if got := nextTagged(t, wb); got != (tagged{"a", 4}) {
		t.Fatalf("B after the outage got %+v, want seq 4", got)
	}
	if got := gather(t, regB)["leadupdates_hub_backplane_lost_total{reason=gap}"]; got != 3 {
		t.Errorf("B counted %v lost sends, want 3", got)
	}
}

// stuck is a backplane whose Publish waits until released: Redis, or the
// network, far slower than the sender.
type stuck struct {
	*bus
	calls   chan struct{}
	release chan struct{}
}

func (s *stuck) Publish(ctx context.Context, msg []byte) error {
	s.calls <- struct{}{}
	<-s.release
	return s.bus.Publish(ctx, msg)
}

// TestSlowBackplaneNeverBlocksSend: while the backplane takes nothing, Send
// still returns at once and delivers locally; what overflows the publish
// queue is counted by the sender and, as a gap, by the others.
func TestSlowBackplaneNeverBlocksSend(t *testing.T) {
	b := newBus()
	slow := &stuck{bus: b, calls: make(chan struct{}, 100), release: make(chan struct{})}
	regA, regB := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	a := newEnv(t, hub.WithBackplane(slow), hub.WithBackplaneQueue(2), hub.WithRegisterer(regA))
	awaitCond(t, "A to subscribe", func() bool { return b.subscribers() == 1 })
	bEnv := newEnv(t, hub.WithBackplane(b), hub.WithRegisterer(regB))
	awaitCond(t, "B to subscribe", func() bool { return b.subscribers() == 2 })
	t.Cleanup(func() { close(slow.release) }) // before the hubs close: LIFO
	wa, _ := a.connect(t)
	wb, _ := bEnv.connect(t)

	a.s.All().Send("ReceiveLeadUpdate", tagged{"a", 0})
	<-slow.calls // the publisher now waits with seq 0
	for seq := 1; seq <= 3; seq++ {
		a.s.All().Send("ReceiveLeadUpdate", tagged{"a", seq}) // 1, 2 queue; 3 overflows
	}
	expectFrom(t, wa, 4, "a") // local delivery never waited
	if got := gather(t, regA)["leadupdates_hub_backplane_dropped_total{reason=overflow}"]; got != 1 {
		t.Errorf("overflow counted %v, want 1", got)
	}
	slow.release <- struct{}{} // 0 goes out
	<-slow.calls               // the publisher waits with 1 and 2
	a.s.All().Send("ReceiveLeadUpdate", tagged{"a", 4})
	slow.release <- struct{}{} // 1 and 2 go out
	<-slow.calls               // the publisher waits with 4
	slow.release <- struct{}{}
	var got []int
	for range 4 {
		got = append(got, nextTagged(t, wb).Seq)
	}
	if !slices.Equal(got, []int{0, 1, 2, 4}) {
		t.Errorf("B got %v, want [0 1 2 4]", got)
	}
	if got := gather(t, regB)["leadupdates_hub_backplane_lost_total{reason=gap}"]; got != 1 {
		t.Errorf("B counted %v lost, want 1", got)
	}
}
