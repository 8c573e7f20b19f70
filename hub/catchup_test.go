package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"github.com/prometheus/client_golang/prometheus"
)

// memLog is a hub.Log in memory: entries appended in position order, those
// at or below floor pruned.
type memLog struct {
	mu      sync.Mutex
	entries []hub.Entry
	floor   uint64
	fail    error // what Read answers, if not nil
	// onRead, if set, runs as Read returns n entries, outside the lock.
	onRead func(n int)
	// args makes an entry's arguments; nil: its position.
	args func(hub.Entry) []any
}

func (l *memLog) Read(_ context.Context, after uint64, limit int) ([]hub.Entry, error) {
	l.mu.Lock()
	out, err := l.read(after, limit)
	onRead := l.onRead
	l.mu.Unlock()
	if onRead != nil && err == nil {
		onRead(len(out))
	}
	return out, err
}

func (l *memLog) read(after uint64, limit int) ([]hub.Entry, error) {
	if l.fail != nil {
		return nil, l.fail
	}
	if after < l.floor {
		return nil, fmt.Errorf("read after %d: %w", after, hub.ErrPruned)
	}
	i, _ := slices.BinarySearchFunc(l.entries, after+1, func(e hub.Entry, p uint64) int {
		switch {
		case e.Position < p:
			return -1
		case e.Position > p:
			return 1
		}
		return 0
	})
	end := min(i+limit, len(l.entries))
	return slices.Clone(l.entries[i:end]), nil
}

func (l *memLog) Reload(after uint64) (string, []any) { return "Reload", []any{after} }

// add appends an entry at the next position and returns it.
func (l *memLog) add(e hub.Entry) hub.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Position = 1
	if n := len(l.entries); n > 0 {
		e.Position = l.entries[n-1].Position + 1
	}
	if e.Target == "" {
		e.Target = "Receive"
	}
	e.Args = []any{e.Position}
	if l.args != nil {
		e.Args = l.args(e)
	}
	l.entries = append(l.entries, e)
	return e
}

func (l *memLog) prune(upTo uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.floor = upTo
}

// publish appends n entries for e's audience and publishes each, as a
// relay tailing the log would.
func (l *memLog) publish(s *hub.Server, n int, e hub.Entry) {
	for range n {
		s.Publish(l.add(e))
	}
}

var everyone = hub.Entry{Groups: []string{hub.DefaultGroup}}

// catchUpEnv is a hub with a memLog and the "owner" filter.
func catchUpEnv(t *testing.T, opts ...hub.Option) (*env, *memLog) {
	l := &memLog{}
	owner := hub.WithFilter("owner", func(arg string, p *hub.Principal) bool { return arg == p.ID })
	opts = append([]hub.Option{hub.WithLog(l), hub.WithAuthenticator(staticTokens), owner}, opts...)
	return newEnv(t, opts...), l
}

// catcher is a JSON client of positioned messages ("Receive"(position)).
type catcher struct {
	t   *testing.T
	w   *rawWS
	got []uint64
}

func newCatcher(t *testing.T, e *env, token string) *catcher {
	w, _ := e.connectAs(t, token)
	return &catcher{t: t, w: w}
}

// catchUp calls CatchUp(args...) with invocation id and returns its
// completion, recording the positions that come before it.
func (k *catcher) catchUp(id string, args ...any) jmsg {
	k.t.Helper()
	k.w.sendText(invocation(id, "CatchUp", args...))
	return k.completion(id)
}

func (k *catcher) completion(id string) jmsg {
	k.t.Helper()
	for {
		m := k.w.nextJSON(true)
		if m.Type == 3 && m.InvocationID == id {
			return m
		}
		k.record(m)
	}
}

func (k *catcher) record(m jmsg) {
	k.t.Helper()
	var pos uint64
	if m.Type != 1 || m.Target != "Receive" || len(m.Arguments) != 1 || json.Unmarshal(m.Arguments[0], &pos) != nil {
		k.t.Fatalf("want a Receive(position), got %s", m.Raw)
	}
	k.got = append(k.got, pos)
}

// until reads until position p is received.
func (k *catcher) until(p uint64) {
	k.t.Helper()
	for !slices.Contains(k.got, p) {
		k.record(k.w.nextJSON(true))
	}
}

// result decodes a successful CatchUp completion.
func result(t *testing.T, m jmsg) hub.CatchUpResult {
	t.Helper()
	var r hub.CatchUpResult
	if m.Type != 3 || m.Error != nil || json.Unmarshal(m.Result, &r) != nil {
		t.Fatalf("want a CatchUp result, got %s", m.Raw)
	}
	var raw map[string]any
	if err := json.Unmarshal(m.Result, &raw); err != nil || len(raw) != 2 {
		t.Fatalf("result %s: want exactly position and reload", m.Result)
	}
	return r
}

func seq(from, to uint64) []uint64 {
	var s []uint64
	for p := from; p <= to; p++ {
		s = append(s, p)
	}
	return s
}

func TestCatchUpThenLive(t *testing.T) {
	for _, tt := range []struct {
		name  string
		after uint64
	}{
		{"from 0", 0},
		{"from the middle", 12},
		{"from the head", 20},
		{"from beyond the head", 25},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, l := catchUpEnv(t)
			l.publish(e.s, 20, everyone)
			k := newCatcher(t, e, "alice")
			r := result(t, k.catchUp("c", tt.after))
			want := seq(tt.after+1, 20)
			if !slices.Equal(k.got, want) {
				t.Fatalf("replayed %v, want %v", k.got, want)
			}
			if want := max(tt.after, 20); r.Position != want || r.Reload {
				t.Fatalf("result %+v, want position %d", r, want)
			}
			l.publish(e.s, 30, everyone)
			k.until(50)
			want = seq(max(tt.after, 20)+1, 50)
			if got := k.got[len(k.got)-len(want):]; !slices.Equal(got, want) || len(k.got) != len(want)+int(20-min(tt.after, 20)) {
				t.Fatalf("received %v, want the replay then %v", k.got, want)
			}
		})
	}
}

func TestCatchUpLargerThanTheQueue(t *testing.T) {
	e, l := catchUpEnv(t, hub.WithSendQueue(8))
	l.publish(e.s, 3000, everyone)
	k := newCatcher(t, e, "alice")
	r := result(t, k.catchUp("c", 0))
	if !slices.Equal(k.got, seq(1, 3000)) || r.Position != 3000 {
		t.Fatalf("replayed %d positions (%v...), result %+v; want 1..3000", len(k.got), k.got[:min(len(k.got), 10)], r)
	}
}

func TestCatchUpFiltered(t *testing.T) {
	e, l := catchUpEnv(t)
	for i := range 30 {
		owner := []string{"alice", "bob", "carol"}[i%3]
		l.publish(e.s, 1, hub.Entry{Groups: []string{hub.DefaultGroup}, Filter: "owner", Arg: owner})
	}
	l.publish(e.s, 1, hub.Entry{Groups: []string{hub.DefaultGroup}, Filter: "no such filter", Arg: "alice"}) // 31: nobody
	l.publish(e.s, 1, everyone)                                                                              // 32
	for _, tt := range []struct {
		token string
		first uint64
	}{{"alice", 1}, {"bob", 2}} {
		t.Run(tt.token, func(t *testing.T) {
			k := newCatcher(t, e, tt.token)
			r := result(t, k.catchUp("c", 0))
			var want []uint64
			for p := tt.first; p <= 30; p += 3 {
				want = append(want, p)
			}
			want = append(want, 32)
			if !slices.Equal(k.got, want) || r.Position != 32 {
				t.Fatalf("replayed %v, result %+v; want %v, position 32", k.got, r, want)
			}
		})
	}
}

func TestCatchUpGroups(t *testing.T) {
	e, l := catchUpEnv(t)
	lead := func(id int64) hub.Entry { return hub.Entry{Groups: []string{hub.LeadGroup(id)}} }
	both := hub.Entry{Groups: []string{hub.DefaultGroup, hub.LeadGroup(1)}}
	k := newCatcher(t, e, "alice")
	l.publish(e.s, 1, lead(1)) // 1: not yet in Lead_1
	l.publish(e.s, 1, lead(2)) // 2: never in Lead_2
	k.w.invoke("j", "JoinLeadGroup", 1).ok(t)
	l.publish(e.s, 1, lead(1))  // 3: live
	l.publish(e.s, 1, both)     // 4: live, once
	l.publish(e.s, 1, everyone) // 5: live
	k.until(5)
	if !slices.Equal(k.got, []uint64{3, 4, 5}) {
		t.Fatalf("live %v, want [3 4 5]", k.got)
	}
	// The replay sends what was published before the join, and nothing
	// that was sent live.
	k.got = nil
	r := result(t, k.catchUp("c", 0))
	if !slices.Equal(k.got, []uint64{1}) || r.Position != 5 {
		t.Fatalf("replayed %v, result %+v; want [1], position 5", k.got, r)
	}
	// After leaving Lead_1, its entries are neither sent nor replayed.
	k.w.invoke("l", "LeaveLeadGroup", 1).ok(t)
	l.publish(e.s, 1, lead(1))  // 6
	l.publish(e.s, 1, everyone) // 7
	k.until(7)
	k.got = nil
	r = result(t, k.catchUp("c2", 0))
	if len(k.got) != 0 || r.Position != 7 {
		t.Fatalf("second replay %v, result %+v; want nothing, position 7", k.got, r)
	}
}

// TestCatchUpSeam publishes without pause while clients catch up, from
// several points: each client receives every position it may see exactly
// once, and in order but for the live ones that came before its CatchUp
// started (which the replay then leaves out).
func TestCatchUpSeam(t *testing.T) {
	e, l := catchUpEnv(t, hub.WithSendQueue(1<<20))
	const before, during = 2000, 3000
	alice := func(p uint64) bool { return p%4 != 1 } // 1 mod 4 is bob's
	entry := func(i int) hub.Entry {
		if i%4 == 0 { // positions 1, 5, 9, ...
			return hub.Entry{Groups: []string{hub.DefaultGroup}, Filter: "owner", Arg: "bob"}
		}
		return everyone
	}
	for i := range before {
		e.s.Publish(l.add(entry(i)))
	}
	froms := []uint64{0, 500, 1999, 2000}
	ks := make([]*catcher, len(froms))
	for i := range ks {
		ks[i] = newCatcher(t, e, "alice")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := before; i < before+during; i++ {
			e.s.Publish(l.add(entry(i)))
		}
	}()
	var wg sync.WaitGroup
	results := make([]hub.CatchUpResult, len(ks))
	for i, k := range ks {
		wg.Go(func() {
			k.w.sendText(invocation("c", "CatchUp", froms[i]))
		})
	}
	wg.Wait()
	for i, k := range ks {
		results[i] = result(t, k.completion("c"))
	}
	<-done
	const head = before + during
	for i, k := range ks {
		var want []uint64
		for p := froms[i] + 1; p <= head; p++ {
			if alice(p) {
				want = append(want, p)
			}
		}
		k.until(want[len(want)-1])
		got := k.got
		if len(got) != len(want) {
			t.Errorf("from %d: %d positions, want %d", froms[i], len(got), len(want))
		}
		descents := 0
		for j := 1; j < len(got); j++ {
			if got[j] < got[j-1] {
				descents++
			}
		}
		sorted := slices.Sorted(slices.Values(got))
		if !slices.Equal(sorted, want) || descents > 1 {
			t.Errorf("from %d: %d descents; received %v", froms[i], descents, got)
		}
		if results[i].Position < froms[i] || results[i].Position > head || results[i].Reload {
			t.Errorf("from %d: result %+v", froms[i], results[i])
		}
	}
}

// The seam's worst case, made to happen: entries are published while the
// catch-up is between a short read, which did not return them, and its
// check of the published position. Publish leaves them to the replay,
// which must read on.
func TestCatchUpSeamPublishedAfterTheLastRead(t *testing.T) {
	e, l := catchUpEnv(t)
	l.publish(e.s, 300, everyone)
	k := newCatcher(t, e, "alice")
	var once sync.Once
	l.mu.Lock()
	l.onRead = func(n int) {
		if n < 256 {
			once.Do(func() { l.publish(e.s, 5, everyone) })
		}
	}
	l.mu.Unlock()
	r := result(t, k.catchUp("c", 0))
	if !slices.Equal(k.got, seq(1, 305)) || r.Position != 305 {
		t.Fatalf("replayed %d positions (..., %v), result %+v; want 1..305", len(k.got), k.got[max(0, len(k.got)-6):], r)
	}
	l.publish(e.s, 1, everyone)
	k.until(306)
	if !slices.Equal(k.got, seq(1, 306)) {
		t.Fatalf("then live %v, want 306", k.got[300:])
	}
}

// A log that lags behind what was published (a replica, say): the
// catch-up waits for it rather than going live with a gap.
func TestCatchUpLogBehind(t *testing.T) {
	e, l := catchUpEnv(t)
	l.publish(e.s, 10, everyone)
	l.mu.Lock()
	hidden := slices.Clone(l.entries[5:])
	l.entries = l.entries[:5]
	reads := 0
	l.onRead = func(int) {
		if reads++; reads == 3 {
			l.mu.Lock()
			l.entries = append(l.entries, hidden...)
			l.mu.Unlock()
		}
	}
	l.mu.Unlock()
	k := newCatcher(t, e, "alice")
	if r := result(t, k.catchUp("c", 0)); !slices.Equal(k.got, seq(1, 10)) || r.Position != 10 {
		t.Fatalf("replayed %v, result %+v; want 1..10", k.got, r)
	}
}

func TestCatchUpPruned(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e, l := catchUpEnv(t, hub.WithRegisterer(reg))
	l.publish(e.s, 20, everyone)
	l.prune(10)
	k := newCatcher(t, e, "alice")
	k.w.sendText(invocation("c", "CatchUp", 5))
	m := k.w.nextJSON(true)
	if m.Type != 1 || m.Target != "Reload" || len(m.Arguments) != 1 || string(m.Arguments[0]) != "5" {
		t.Fatalf("want Reload(5), got %s", m.Raw)
	}
	if r := result(t, k.completion("c")); r != (hub.CatchUpResult{Position: 20, Reload: true}) {
		t.Fatalf("result %+v, want position 20, reload", r)
	}
	if len(k.got) != 0 {
		t.Fatalf("replayed %v besides the reload", k.got)
	}
	l.publish(e.s, 2, everyone)
	k.until(22)
	if !slices.Equal(k.got, []uint64{21, 22}) {
		t.Fatalf("live after the reload %v, want [21 22]", k.got)
	}
	// From the floor on, a catch-up is complete.
	k2 := newCatcher(t, e, "bob")
	if r := result(t, k2.catchUp("c", 10)); !slices.Equal(k2.got, seq(11, 22)) || r.Reload {
		t.Fatalf("from the floor: %v, %+v", k2.got, r)
	}
	// A log that cannot be read fails the call; the connection goes on live.
	l.mu.Lock()
	l.fail = errors.New("database down")
	l.mu.Unlock()
	k2.catchUp("f", 0).failed(t, "HubException: could not read the missed messages; call CatchUp again")
	l.publish(e.s, 1, everyone)
	k2.until(23)
	if !slices.Equal(k2.got, seq(11, 23)) {
		t.Fatalf("after the failure %v, want 11..23", k2.got)
	}
	got := gather(t, reg)
	for name, want := range map[string]float64{
		"leadupdates_hub_catchups_total{result=reload}":   1,
		"leadupdates_hub_catchups_total{result=complete}": 1,
		"leadupdates_hub_catchups_total{result=failed}":   1,
		"leadupdates_hub_catchup_messages_total":          12,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

func TestCatchUpBadArguments(t *testing.T) {
	e, _ := catchUpEnv(t)
	k := newCatcher(t, e, "alice")
	for _, tt := range []struct {
		name string
		args []any
		want string
	}{
		{"negative", []any{-1}, "HubException: position must be an integer of 0 or more"},
		{"fraction", []any{1.5}, "Argument 1 must be an integer"},
		{"string", []any{"5"}, "Argument 1 must be an integer"},
		{"null", []any{nil}, "Argument 1 must be an integer"},
		{"boolean", []any{true}, "Argument 1 must be an integer"},
		{"object", []any{map[string]any{"position": 1}}, "Argument 1 must be an integer"},
		{"too large", []any{json.Number("18446744073709551616")}, "Argument 1 must be an integer"},
		{"none", nil, "provides 0 argument(s) but target expects 1"},
		{"two", []any{1, 2}, "provides 2 argument(s) but target expects 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k.catchUp(tt.name, tt.args...).failed(t, tt.want)
		})
	}
	t.Run("messagepack", func(t *testing.T) {
		e := newEnv(t, hub.WithLog(&memLog{}))
		w := e.open(t, "", true)
		w.send(websocket.MessageBinary, []byte(mpHandshake))
		if r := w.next(); string(r.b) != "{}" {
			t.Fatalf("handshake answer %q", r.b)
		}
		next := func() []any {
			for {
				a := mpDecode(t, w.next().b)
				if typ, _ := asInt(a[0]); typ != 6 {
					return a
				}
			}
		}
		for _, tt := range []struct {
			name string
			arg  any
			want string
		}{
			{"negative", int8(-1), "position must be an integer of 0 or more"},
			{"float", 2.0, "Argument 1 must be an integer"},
			{"string", "5", "Argument 1 must be an integer"},
			{"nil", nil, "Argument 1 must be an integer"},
		} {
			w.send(websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]any{}, tt.name, "CatchUp", []any{tt.arg}))
			a := next()
			if typ, _ := asInt(a[0]); typ != 3 || a[2] != tt.name {
				t.Fatalf("%s: want its completion, got %v", tt.name, a)
			}
			if kind, _ := asInt(a[3]); kind != 1 || !strings.Contains(fmt.Sprint(a[4]), tt.want) {
				t.Errorf("%s: want an error containing %q, got %v", tt.name, tt.want, a)
			}
		}
		w.send(websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]any{}, "ok", "CatchUp", []any{uint64(3)}))
		a := next()
		res, _ := a[4].(map[any]any)
		if kind, _ := asInt(a[3]); kind != 3 || res == nil {
			t.Fatalf("want a result, got %v", a)
		}
		if p, _ := asInt(res["position"]); p != 3 || res["reload"] != false || len(res) != 2 {
			t.Fatalf("result %v, want position 3, reload false", res)
		}
	})
	t.Run("without a log", func(t *testing.T) {
		e := newEnv(t)
		w, _ := e.connect(t)
		w.invoke("c", "CatchUp", 0).failed(t, "HubException: catch-up is not enabled")
	})
}

// countLog is a hub.Log of as many entries as asked, made up as they are
// read: a catch-up of millions holds no memory here.
type countLog struct {
	head  uint64
	reads atomic.Int64
}

func (l *countLog) Read(ctx context.Context, after uint64, limit int) ([]hub.Entry, error) {
	l.reads.Add(1)
	var out []hub.Entry
	for p := after + 1; p <= l.head && len(out) < limit; p++ {
		out = append(out, hub.Entry{Position: p, Groups: []string{hub.DefaultGroup}, Target: "Receive", Args: []any{p}})
	}
	return out, ctx.Err()
}

func (l *countLog) Reload(uint64) (string, []any) { return "Reload", nil }

// A client that stops reading in the middle of a long catch-up and goes
// away: the catch-up waits for room, never drops, and ends with the
// connection, long before the end of the log.
func TestCatchUpConnectionEnds(t *testing.T) {
	for _, how := range []string{"client goes away", "server disconnects"} {
		t.Run(how, func(t *testing.T) {
			l := &countLog{head: 10_000_000}
			e := newEnv(t, hub.WithLog(l), hub.WithSendQueue(64))
			conn, _, err := e.dial(t, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			for _, m := range []string{jsonHandshake, invocation("c", "CatchUp", 0)} { // and never read
				if err := conn.Write(t.Context(), websocket.MessageText, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			var id string
			awaitCond(t, "the catch-up to start", func() bool {
				id = e.s.CatchingUpConnection()
				return id != "" && l.reads.Load() > 2
			})
			switch how {
			case "client goes away":
				_ = conn.Close()
			default:
				e.s.Disconnect(id)
			}
			awaitCond(t, "the catch-up to end", func() bool { return e.s.CatchingUpConnection() == "" })
			if n := l.reads.Load(); n*256 >= int64(l.head) {
				t.Fatalf("the catch-up read %d batches, to the end of the log", n)
			}
		})
	}
}

// Two CatchUp calls sent back to back run one after the other: the second
// sends nothing the first sent.
func TestCatchUpTwice(t *testing.T) {
	e, l := catchUpEnv(t)
	l.publish(e.s, 600, everyone)
	k := newCatcher(t, e, "alice")
	k.w.sendText(invocation("a", "CatchUp", 0) + invocation("b", "CatchUp", 0) + invocation("c", "CatchUp", 300))
	ra := result(t, k.completion("a"))
	rb := result(t, k.completion("b"))
	rc := result(t, k.completion("c"))
	l.publish(e.s, 1, everyone)
	k.until(601)
	if !slices.Equal(k.got, seq(1, 601)) {
		t.Fatalf("received %d positions, want 1..601 once each", len(k.got))
	}
	for _, r := range []hub.CatchUpResult{ra, rb, rc} {
		if r.Position != 600 || r.Reload {
			t.Fatalf("results %+v %+v %+v, want position 600", ra, rb, rc)
		}
	}
}

// Publish reaches this instance's connections only, like GroupsFiltered,
// once per connection, and an entry at or below what a connection was sent
// is not sent again.
func TestPublish(t *testing.T) {
	bp := &tap{}
	e, l := catchUpEnv(t, hub.WithBackplane(bp))
	alice, bob := newCatcher(t, e, "alice"), newCatcher(t, e, "bob")
	alice.w.invoke("j", "JoinLeadGroup", 7).ok(t)
	l.publish(e.s, 1, hub.Entry{Groups: []string{hub.DefaultGroup, hub.LeadGroup(7)}})                         // 1: both, once
	l.publish(e.s, 1, hub.Entry{Groups: []string{hub.LeadGroup(7)}})                                           // 2: alice
	l.publish(e.s, 1, hub.Entry{Groups: []string{hub.DefaultGroup}, Filter: "owner", Arg: "bob"})              // 3: bob
	e.s.Publish(hub.Entry{Position: 2, Groups: []string{hub.DefaultGroup}, Target: "Receive", Args: []any{2}}) // 2 again: below what each was sent
	l.publish(e.s, 1, everyone)                                                                                // 4
	alice.until(4)
	bob.until(4)
	if !slices.Equal(alice.got, []uint64{1, 2, 4}) || !slices.Equal(bob.got, []uint64{1, 3, 4}) {
		t.Fatalf("alice %v, want [1 2 4]; bob %v, want [1 3 4]", alice.got, bob.got)
	}
	if n := len(bp.messages()); n != 0 {
		t.Fatalf("%d messages published to the backplane, want none", n)
	}
}

// gateLog is an empty hub.Log whose reads wait for the test to let each
// one go, counting how many run at once.
type gateLog struct {
	gate           chan struct{}
	mu             sync.Mutex
	inflight, peak int
}

func (l *gateLog) Read(ctx context.Context, _ uint64, _ int) ([]hub.Entry, error) {
	l.mu.Lock()
	l.inflight++
	l.peak = max(l.peak, l.inflight)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.inflight--
		l.mu.Unlock()
	}()
	select {
	case <-l.gate:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *gateLog) Reload(uint64) (string, []any) { return "Reload", nil }

func (l *gateLog) running() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// WithCatchUpReads bounds the reads of the log that catch-ups make at once.
func TestCatchUpReadsBounded(t *testing.T) {
	if _, err := hub.New(hub.WithCatchUpReads(0)); err == nil {
		t.Fatal("New accepted WithCatchUpReads(0)")
	}
	l := &gateLog{gate: make(chan struct{})}
	e := newEnv(t, hub.WithLog(l), hub.WithCatchUpReads(2))
	const n = 6
	ws := make([]*rawWS, n)
	for i := range ws {
		ws[i], _ = e.connect(t)
		ws[i].sendText(invocation("c", "CatchUp", 0))
	}
	for left := n; left > 0; left-- {
		awaitCond(t, "reads at the bound", func() bool { return l.running() == min(2, left) })
		l.gate <- struct{}{}
	}
	for _, w := range ws {
		if m := w.nextJSON(true); m.Type != 3 || m.Error != nil {
			t.Fatalf("want a result, got %s", m.Raw)
		}
	}
	if l.peak != 2 {
		t.Fatalf("%d reads at once, want 2", l.peak)
	}
}

// countedArg counts how often it is encoded as JSON.
type countedArg struct {
	pos uint64
	n   *atomic.Int64
}

func (a countedArg) MarshalJSON() ([]byte, error) {
	a.n.Add(1)
	return json.Marshal(a.pos)
}

// Connections catching up over the same entries share their frames: each
// entry is encoded once for them all.
func TestCatchUpEncodesOnce(t *testing.T) {
	e, l := catchUpEnv(t)
	var encoded atomic.Int64
	l.args = func(en hub.Entry) []any { return []any{countedArg{en.Position, &encoded}} }
	l.publish(e.s, 300, hub.Entry{Groups: []string{"nobody"}})
	l.publish(e.s, 300, everyone)
	encoded.Store(0)
	for i := range 5 {
		k := newCatcher(t, e, "alice")
		if r := result(t, k.catchUp("c", 0)); !slices.Equal(k.got, seq(301, 600)) || r.Position != 600 {
			t.Fatalf("client %d: replayed %d positions, result %+v; want 301..600", i, len(k.got), r)
		}
	}
	if n := encoded.Load(); n != 300 {
		t.Fatalf("the entries were encoded %d times for 5 clients, want 300", n)
	}
}
