package hub_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

// FuzzStatefulAckSequence sends a stateful connection Ack and Sequence
// messages with arbitrary ids (negative, zero, huge, beyond what was sent
// or received), arbitrary bytes after them, and then re-attaches it,
// possibly with another user's token. Whatever comes, the connection either
// carries on or is closed with a Close message (or, cut, ends within its
// window); the hub does not panic; another user's connection is untouched.
//
//	go test -run=^$ -fuzz=FuzzStatefulAckSequence -fuzztime=30s ./hub/
func FuzzStatefulAckSequence(f *testing.F) {
	s, err := hub.New(hub.WithAuthenticator(staticTokens), hub.WithStatefulReconnect(time.Second, 4000),
		hub.WithWriteTimeout(2*time.Second))
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Mount(mux)
	ts := httptest.NewServer(mux)
	f.Cleanup(func() {
		_ = s.Close()
		ts.Close()
	})
	base := ts.URL + s.Path()

	// The victim: Bob, in Lead_9, connected throughout.
	ctx := context.Background()
	bob := &signalrtest.Client{URL: base, AccessToken: "bob", StatefulReconnect: true}
	victim, err := bob.Connect(ctx, signalrtest.JSON)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { victim.Close() })
	if err := victim.Ping(ctx); err != nil {
		f.Fatal(err)
	}
	vw := &fuzzPeer{c: victim}
	vw.invoke(f, "JoinLeadGroup", 9)

	const ack, seq = 8, 9
	f.Add(false, uint8(ack), int64(1), uint8(seq), int64(1), []byte{}, uint8(0))
	f.Add(false, uint8(ack), int64(-1), uint8(seq), int64(0), []byte{}, uint8(1))
	f.Add(true, uint8(ack), int64(math.MaxInt64), uint8(ack), int64(1<<40), []byte{}, uint8(1))
	f.Add(true, uint8(seq), int64(2), uint8(seq), int64(3), []byte{}, uint8(2))
	f.Add(false, uint8(seq), int64(math.MinInt64), uint8(ack), int64(0), []byte(`{"type":8,"sequenceId":1e99}`+"\x1e"), uint8(2))
	f.Add(false, uint8(ack), int64(5), uint8(ack), int64(4), []byte(`{"type":9}`+"\x1e"), uint8(1))
	f.Add(true, uint8(seq), int64(1), uint8(ack), int64(2), []byte{0x0b, 0x92, 0x08, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(1))
	f.Add(true, uint8(ack), int64(1), uint8(seq), int64(1), []byte{0x02, 0x92, 0x09}, uint8(0))

	f.Fuzz(func(t *testing.T, mp bool, k1 uint8, id1 int64, k2 uint8, id2 int64, raw []byte, resume uint8) {
		p := signalrtest.JSON
		if mp {
			p = signalrtest.MessagePack
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		alice := &signalrtest.Client{URL: base, AccessToken: "alice", StatefulReconnect: true}
		c, err := alice.Connect(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.Ping(ctx)
		peer := &fuzzPeer{c: c}
		peer.invoke(t, "JoinLeadGroup", 5) // one message each way
		s.Group(hub.LeadGroup(5)).Send("ReceiveLeadUpdate", 1)

		msg := func(k uint8, id int64) []byte {
			if k%2 == 0 {
				return p.Ack(id)
			}
			return p.Sequence(id)
		}
		_ = c.Write(ctx, p.MessageType(), msg(k1, id1))
		_ = c.Write(ctx, p.MessageType(), msg(k2, id2))
		if len(raw) > 0 {
			_ = c.Write(ctx, p.MessageType(), raw)
		}

		switch resume % 3 {
		case 1: // cut, then re-attach as Alice: a Sequence first
			c.Close()
			next, resp, err := alice.Resume(ctx, c)
			if err != nil {
				if resp == nil || (resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusConflict) {
					t.Fatalf("re-attach: %v", err)
				}
				break
			}
			defer next.Close()
			rec, err := next.ReadRecord(ctx)
			if err == nil {
				if typ := recordType(t, p, rec.Data); typ != seq {
					t.Fatalf("first message after a re-attach has type %d", typ)
				}
			}
		case 2: // Bob re-attaches Alice's connection: refused
			mallory := *bob
			if _, resp, err := mallory.Resume(ctx, c); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("re-attach with another user's token: %v", err)
			}
		}

		// The victim still works both ways, in its group.
		s.Group(hub.LeadGroup(9)).Send("ReceiveLeadUpdate", "victim")
		vw.invoke(t, "LeaveLeadGroup", 1)
		vw.await(t, "ReceiveLeadUpdate")
		if !s.InGroup(hub.LeadGroup(9), victim.ConnectionID()) {
			t.Fatal("the victim left its group")
		}
	})
}

// fuzzPeer reads a JSON stateful connection, acknowledging what it gets.
type fuzzPeer struct {
	c    *signalrtest.Conn
	next int
	got  []signalrtest.Message
}

func (w *fuzzPeer) read(t testing.TB) signalrtest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		rec, err := w.c.ReadRecord(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		p := w.c.Protocol()
		if p == signalrtest.MessagePack {
			a, err := signalrtest.DecodeMessagePack(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			typ, _ := asInt(a[0])
			if typ == 3 {
				w.next++
				return signalrtest.Message{Type: 3}
			}
			continue
		}
		m, err := signalrtest.DecodeJSON(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type >= 1 && m.Type <= 5 {
			w.next++
			_ = w.c.Write(ctx, p.MessageType(), p.Ack(int64(w.next)))
			return m
		}
	}
}

func (w *fuzzPeer) invoke(t testing.TB, target string, arg int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := w.c.Protocol()
	var b []byte
	if p == signalrtest.MessagePack {
		b = signalrtest.MessagePackFrame(1, map[string]any{}, "i", target, []any{arg})
	} else {
		b = signalrtest.JSONInvocation("i", target, arg)
	}
	if err := w.c.Write(ctx, p.MessageType(), b); err != nil {
		t.Fatal(err)
	}
	for {
		m := w.read(t)
		if m.Type == 3 {
			return
		}
		w.got = append(w.got, m)
	}
}

func (w *fuzzPeer) await(t testing.TB, target string) {
	t.Helper()
	for i, m := range w.got {
		if m.Target == target {
			w.got = w.got[i+1:]
			return
		}
	}
	w.got = w.got[:0]
	for {
		if m := w.read(t); m.Target == target {
			return
		}
	}
}

func recordType(t *testing.T, p signalrtest.Protocol, rec []byte) int64 {
	if p == signalrtest.MessagePack {
		a, err := signalrtest.DecodeMessagePack(rec)
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := asInt(a[0])
		return typ
	}
	m, err := signalrtest.DecodeJSON(rec)
	if err != nil {
		t.Fatal(err)
	}
	return int64(m.Type)
}
