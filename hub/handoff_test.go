package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

// Hand-off driven byte by byte, against a SessionStore in memory; the real
// client and PostgreSQL run in handoff_client_test.go.

// memStore is a hub.SessionStore in memory; while down, Save fails.
type memStore struct {
	mu    sync.Mutex
	rows  map[hub.TokenHash]hub.Session
	down  bool
	saves int
}

func newMemStore() *memStore { return &memStore{rows: map[hub.TokenHash]hub.Session{}} }

func (m *memStore) Save(_ context.Context, ss []hub.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errors.New("store down")
	}
	m.saves++
	for _, s := range ss {
		if old, ok := m.rows[s.TokenHash]; ok && (old.Owner != s.Owner || old.Epoch != s.Epoch) {
			continue
		}
		m.rows[s.TokenHash] = s
	}
	return nil
}

func (m *memStore) Claim(_ context.Context, h hub.TokenHash, user, owner string, until time.Time) (hub.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[h]
	switch {
	case !ok || time.Now().After(s.Expires):
		return hub.Session{}, hub.ErrNoSession
	case s.UserID != user:
		return hub.Session{}, hub.ErrSessionUser
	}
	if s.Owner != owner {
		s.Owner, s.Epoch = owner, s.Epoch+1
	}
	s.Expires = until
	m.rows[h] = s
	return s, nil
}

func (m *memStore) Delete(_ context.Context, h hub.TokenHash, owner string, epoch int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.rows[h]; ok && s.Owner == owner && s.Epoch == epoch {
		delete(m.rows, h)
		return true, nil
	}
	return false, nil
}

// session returns the stored session of a connection id.
func (m *memStore) session(id string) (hub.Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.rows {
		if s.ConnectionID == id {
			return s, true
		}
	}
	return hub.Session{}, false
}

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

// TestHandoffWire resumes a JSON connection on a second instance: Sequence
// Acked+1, then exactly the bound of padding Completions (for id "_"),
// then the log from the saved position, then live; what the client
// resends up to what the first instance received is ignored.
func TestHandoffWire(t *testing.T) {
	st := newMemStore()
	l := &memLog{}
	one := newEnv(t, hub.WithLog(l), hub.WithSessionStore(st))
	two := newEnv(t, hub.WithLog(l), hub.WithSessionStore(st))
	publish := func(n int) {
		for range n {
			e := l.add(everyone)
			one.s.Publish(e)
			two.s.Publish(e)
		}
	}

	s := one.connectStateful(t, "")
	id := s.conn.ConnectionID()
	s.w.invoke("1", "JoinLeadGroup", 7).ok(t) // hub id 1; client id 1
	publish(3)                                // positions 1..3, hub ids 2..4
	for p := 1; p <= 3; p++ {
		if m := s.w.nextCounted(); m.Target != "Receive" || string(m.Arguments[0]) != fmt.Sprint(p) {
			t.Fatalf("position %d: %s", p, m.Raw)
		}
	}
	s.w.send(websocket.MessageText, signalrtest.JSON.Ack(3)) // positions 1 and 2
	awaitCond(t, "the Ack to be saved", func() bool {
		x, ok := st.session(id)
		return ok && x.Acked == 3
	})
	x, _ := st.session(id)
	if x.Position != 2 || x.Received != 1 || x.Unacked != 100_000/30 || x.Protocol != "json" {
		t.Fatalf("saved %+v; want position 2, received 1, unacked 3333", x)
	}

	s.cut()
	awaitCond(t, "the connection to be detached", func() bool { return one.s.Detached(id) })
	publish(2) // positions 4, 5: only the first instance's detached copy has it
	s.c = two.client()
	w, code := s.resume()
	if w == nil {
		t.Fatalf("resume on the second instance: %d", code)
	}
	if m := w.nextJSON(true); m.Type != 9 || m.SequenceID != 4 {
		t.Fatalf("first message %s, want Sequence 4", m.Raw)
	}
	for i := range x.Unacked {
		if m := w.nextCounted(); m.Type != 3 || m.InvocationID != "_" || m.Error != nil || m.Result != nil {
			t.Fatalf("padding %d of %d: %s", i+1, x.Unacked, m.Raw)
		}
	}
	for p := 3; p <= 5; p++ { // the replay from position 2
		if m := w.nextCounted(); m.Target != "Receive" || string(m.Arguments[0]) != fmt.Sprint(p) {
			t.Fatalf("replayed position %d: %s", p, m.Raw)
		}
	}
	// The client resends its id 1 (not acknowledged) and sends id 2.
	w.send(websocket.MessageText, []byte(string(signalrtest.JSON.Sequence(1))+
		invocation("1", "JoinLeadGroup", 8)+invocation("2", "LeaveLeadGroup", 7)))
	if m := w.nextCounted(); m.Type != 3 || m.InvocationID != "2" {
		t.Fatalf("want only the completion of 2, got %s", m.Raw)
	}
	if two.s.InGroup(hub.LeadGroup(8), id) || two.s.InGroup(hub.LeadGroup(7), id) || !two.s.InGroup(hub.DefaultGroup, id) {
		t.Error("groups on the second instance: the resent join ran, or the leave did not")
	}
	publish(1)
	if m := w.nextCounted(); string(m.Arguments[0]) != "6" {
		t.Fatalf("live after the replay: %s", m.Raw)
	}
	if got, _ := st.session(id); got.Owner == x.Owner || got.Epoch != x.Epoch+1 {
		t.Fatalf("after the resume the session is %+v, was %+v", got, x)
	}
	if !one.s.Detached(id) {
		t.Fatal("the first instance's copy ended early")
	}
	// The client acknowledges everything: hub ids 4..3336 padding,
	// 3337..3339 the replay, 3340 the completion, 3341 position 6.
	last := 3 + x.Unacked + 3 + 1 + 1
	w.send(websocket.MessageText, signalrtest.JSON.Ack(last))
	awaitCond(t, "the Ack to be saved by the second instance", func() bool {
		got, _ := st.session(id)
		return got.Acked == last
	})
	// Back to the first instance while its copy still waits: it must
	// resume the session, not its stale copy (which would say Sequence 4
	// and resend positions 4 and 5 under ids the client has had).
	s.cut()
	awaitCond(t, "the second copy to be detached", func() bool { return two.s.Detached(id) })
	s.c = one.client()
	w, code = s.resume()
	if w == nil {
		t.Fatalf("resume on the first instance: %d", code)
	}
	if m := w.nextJSON(true); m.Type != 9 || m.SequenceID != last+1 {
		t.Fatalf("first message back on the first instance %s, want Sequence %d", m.Raw, last+1)
	}
	for i := range x.Unacked {
		if m := w.nextCounted(); m.Type != 3 || m.InvocationID != "_" {
			t.Fatalf("padding %d: %s", i+1, m.Raw)
		}
	}
	publish(1)
	if m := w.nextCounted(); m.Target != "Receive" || string(m.Arguments[0]) != "7" {
		t.Fatalf("after the padding, want position 7 alone: %s", m.Raw)
	}
	if one.s.Detached(id) || !one.s.InGroup(hub.DefaultGroup, id) {
		t.Fatal("the first instance does not hold the resumed connection")
	}
}

// TestHandoffAcksWaitForTheStore: an instance frees what the client
// acknowledged only once the Ack is saved, so a store that is down makes
// a client that keeps receiving overflow its buffer; up, the same traffic
// flows.
func TestHandoffAcksWaitForTheStore(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("down=%v", down), func(t *testing.T) {
			st := newMemStore()
			e := newEnv(t, hub.WithStatefulReconnect(time.Minute, 2000), hub.WithSessionStore(st))
			s := e.connectStateful(t, "")
			id := s.conn.ConnectionID()
			awaitCond(t, "the session to be saved", func() bool { _, ok := st.session(id); return ok })
			st.setDown(down)
			sent := 0
			for round := range 3 {
				for range 20 { // about 60 bytes each: 1,200 of the 2,000
					e.s.Client(id).Send("ReceiveLeadUpdate", strings.Repeat("x", 10))
				}
				for range 20 {
					m := s.w.nextCounted()
					if m.Type == 7 {
						if !down {
							t.Fatalf("round %d: closed with the store up: %s", round, m.Raw)
						}
						expectClose(t, m, "did not acknowledge", true)
						return
					}
					sent++
				}
				s.w.send(websocket.MessageText, signalrtest.JSON.Ack(int64(sent)))
				if !down {
					awaitCond(t, "the Ack to be saved", func() bool { x, _ := st.session(id); return x.Acked == int64(sent) })
				}
			}
			if down {
				t.Fatal("the client overflowed nothing with the store down")
			}
		})
	}
}

// TestHandoffRefusesAnotherUser: the session is another user's: 403, and
// nothing is claimed.
func TestHandoffRefusesAnotherUser(t *testing.T) {
	st := newMemStore()
	one := newEnv(t, hub.WithAuthenticator(staticTokens), hub.WithSessionStore(st))
	two := newEnv(t, hub.WithAuthenticator(staticTokens), hub.WithSessionStore(st))
	s := one.connectStateful(t, "alice")
	id := s.conn.ConnectionID()
	awaitCond(t, "the session to be saved", func() bool { _, ok := st.session(id); return ok })
	before, _ := st.session(id)
	s.cut()
	s.c = two.client()
	s.c.AccessToken = "bob"
	if w, code := s.resume(); w != nil || code != http.StatusForbidden {
		t.Fatalf("bob resuming alice's connection: %d, want 403", code)
	}
	if after, _ := st.session(id); after.Owner != before.Owner || after.Epoch != before.Epoch {
		t.Fatalf("bob's attempt claimed the session: %+v", after)
	}
}
