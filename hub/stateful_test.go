package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"github.com/prometheus/client_golang/prometheus"
)

// Stateful reconnect driven byte by byte: the JavaScript client's side of
// it (its MessageBuffer) is played by hand here; the real client runs in
// stateful_client_test.go.

func TestStatefulNegotiate(t *testing.T) {
	on := newEnv(t)
	off := newEnv(t, hub.WithStatefulReconnect(0, 0))
	cases := []struct {
		e     *env
		query string
		want  bool
	}{
		{on, "negotiateVersion=1&useStatefulReconnect=true", true},
		{on, "negotiateVersion=1&useStatefulReconnect=True", true},
		{on, "negotiateVersion=1&useStatefulReconnect=%20TRUE%20", true},
		{on, "negotiateVersion=1&useStatefulReconnect=false", false},
		{on, "negotiateVersion=1&useStatefulReconnect=1", false},
		{on, "negotiateVersion=1", false},
		{off, "negotiateVersion=1&useStatefulReconnect=true", false},
	}
	for _, tc := range cases {
		code, _, body := tc.e.do(t, http.MethodPost, tc.e.base+"/negotiate?"+tc.query, nil, nil)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", tc.query, code)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		v, present := m["useStatefulReconnect"]
		if tc.want && v != true || !tc.want && present {
			t.Errorf("%s (enabled %v): %s", tc.query, tc.e != off, body)
		}
	}
}

// sclient is a stateful client's bookkeeping, as @microsoft/signalr keeps
// it: what it received, by id.
type sclient struct {
	t    *testing.T
	e    *env
	c    *signalrtest.Client
	conn *signalrtest.Conn
	w    *rawWS
}

func (e *env) connectStateful(t *testing.T, token string) *sclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	c := e.client()
	c.AccessToken = token
	c.StatefulReconnect = true
	conn, err := c.Connect(ctx, signalrtest.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if !conn.Stateful() {
		t.Fatal("the hub did not offer stateful reconnect")
	}
	s := &sclient{t: t, e: e, c: c, conn: conn, w: wrapWS(t, conn)}
	s.w.start()
	// The client's first Ping, once its buffer exists, releases what the
	// hub holds after the handshake answer.
	s.w.send(websocket.MessageText, []byte(`{"type":6}`+rs))
	return s
}

// cut drops the WebSocket without a close frame, as a network failure does.
func (s *sclient) cut() {
	s.w.close()
}

// resume opens a new WebSocket for the connection and returns it reading.
func (s *sclient) resume() (*rawWS, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), wait)
	defer cancel()
	conn, resp, err := s.c.Resume(ctx, s.conn)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return nil, code
	}
	s.conn = conn
	s.w = wrapWS(s.t, conn)
	s.w.start()
	return s.w, http.StatusSwitchingProtocols
}

// nextCounted returns the next message that counts (types 1 to 5),
// skipping pings and acks.
func (w *rawWS) nextCounted() jmsg {
	w.t.Helper()
	for {
		m := w.nextJSON(true)
		if m.Type != 8 {
			return m
		}
	}
}

func TestStatefulResumeResendsAndDropsDuplicates(t *testing.T) {
	var disconnected sync.WaitGroup
	disconnected.Add(1)
	e := newEnv(t, hub.WithOnDisconnected(func(context.Context, hub.ConnInfo) { disconnected.Done() }))
	s := e.connectStateful(t, "")
	id := s.conn.ConnectionID()

	// id 1 from the client: JoinLeadGroup; id 1 from the hub: its completion.
	s.w.invoke("1", "JoinLeadGroup", 7).ok(t)
	for i := range 5 { // hub ids 2..6
		e.s.Group(hub.LeadGroup(7)).Send("ReceiveLeadUpdate", i)
	}
	for i := range 5 {
		if m := s.w.nextCounted(); m.Target != "ReceiveLeadUpdate" || string(m.Arguments[0]) != fmt.Sprint(i) {
			t.Fatalf("update %d: %s", i, m.Raw)
		}
	}
	// The hub acknowledges the client's id 1 within about a second.
	for {
		m := s.w.nextJSON(true)
		if m.Type == 8 {
			if m.SequenceID != 1 {
				t.Fatalf("Ack %s, want sequenceId 1", m.Raw)
			}
			break
		}
		t.Fatalf("want an Ack, got %s", m.Raw)
	}
	s.w.send(websocket.MessageText, signalrtest.JSON.Ack(3)) // hub ids 1..3 received

	s.cut()
	awaitCond(t, "the connection to be detached", func() bool { return e.s.Detached(id) })
	for i := 5; i < 10; i++ { // hub ids 7..11, while detached
		e.s.Group(hub.LeadGroup(7)).Send("ReceiveLeadUpdate", i)
	}
	w, code := s.resume()
	if w == nil {
		t.Fatalf("resume: %d", code)
	}
	if m := w.nextJSON(true); m.Type != 9 || m.SequenceID != 4 {
		t.Fatalf("first message after the resume %s, want Sequence 4", m.Raw)
	}
	for i := 2; i < 10; i++ { // ids 4..11: updates 2..9
		if m := w.nextCounted(); m.Target != "ReceiveLeadUpdate" || string(m.Arguments[0]) != fmt.Sprint(i) {
			t.Fatalf("resent update %d: %s", i, m.Raw)
		}
	}
	// The client resends its id 1 (the hub acknowledged it, but say the
	// Ack was lost) and goes on with id 2: one completion, for "2".
	w.send(websocket.MessageText, []byte(string(signalrtest.JSON.Sequence(1))+
		invocation("1", "JoinLeadGroup", 8)+invocation("2", "LeaveLeadGroup", 7)))
	if m := w.nextCounted(); m.Type != 3 || m.InvocationID != "2" {
		t.Fatalf("want only the completion of 2, got %s", m.Raw)
	}
	if e.s.InGroup(hub.LeadGroup(8), id) {
		t.Error("the resent JoinLeadGroup(8) ran again")
	}
	if e.s.ConnectionCount() != 1 || !e.s.InGroup(hub.DefaultGroup, id) {
		t.Error("the connection is not the same live connection")
	}
	e.s.Client(id).Send("ReceiveLeadUpdate", "after")
	if m := w.nextCounted(); string(m.Arguments[0]) != `"after"` {
		t.Fatalf("after the resume: %s", m.Raw)
	}

	// A Close message from the client ends it for good.
	w.send(websocket.MessageText, []byte(`{"type":7}`+rs))
	disconnected.Wait()
	if _, code := s.resume(); code != http.StatusNotFound {
		t.Fatalf("resume after the end: %d, want 404", code)
	}
}

func TestStatefulHoldsWhatFollowsTheHandshakeAnswer(t *testing.T) {
	var s *hub.Server
	e := newEnv(t, hub.WithOnConnected(func(_ context.Context, i hub.ConnInfo) {
		s.Client(i.ConnectionID).Send("ReceiveMetrics", 1)
	}))
	s = e.s
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	c := e.client()
	c.StatefulReconnect = true
	conn, err := c.Connect(ctx, signalrtest.JSON)
	if err != nil {
		t.Fatal(err)
	}
	w := wrapWS(t, conn)
	w.start()
	select {
	case r := <-w.recs:
		t.Fatalf("before the client's first message: %q", r.b)
	case <-time.After(300 * time.Millisecond):
	}
	w.sendText(`{"type":6}` + rs)
	if m := w.nextCounted(); m.Target != "ReceiveMetrics" {
		t.Fatalf("got %s", m.Raw)
	}
}

func TestStatefulWindowExpires(t *testing.T) {
	ended := make(chan hub.ConnInfo, 1)
	e := newEnv(t, hub.WithStatefulReconnect(time.Second, 100_000),
		hub.WithOnDisconnected(func(_ context.Context, i hub.ConnInfo) { ended <- i }))
	s := e.connectStateful(t, "")
	s.w.invoke("1", "JoinLeadGroup", 7).ok(t)
	s.cut()
	select {
	case <-ended:
		t.Fatal("OnDisconnected ran when the WebSocket dropped")
	case <-time.After(500 * time.Millisecond):
	}
	select {
	case i := <-ended:
		if i.ConnectionID != s.conn.ConnectionID() {
			t.Fatalf("OnDisconnected for %s", i.ConnectionID)
		}
	case <-time.After(wait):
		t.Fatal("the window did not expire")
	}
	if _, code := s.resume(); code != http.StatusNotFound {
		t.Fatalf("resume after the window: %d, want 404", code)
	}
	if e.s.GroupCount() != 0 {
		t.Errorf("%d groups left", e.s.GroupCount())
	}
}

func TestStatefulBufferOverflowCloses(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, hub.WithStatefulReconnect(time.Minute, 2000), hub.WithRegisterer(reg))
	s := e.connectStateful(t, "")
	id := s.conn.ConnectionID()
	s.w.invoke("1", "LeaveLeadGroup", 7).ok(t)
	for i := range 100 { // ~50 bytes each, never acknowledged
		e.s.Client(id).Send("ReceiveLeadUpdate", i)
	}
	last := lastBeforeEnd(t, s.w)
	expectClose(t, last, "did not acknowledge", true)
	if _, code := s.resume(); code != http.StatusNotFound && code != http.StatusConflict {
		t.Fatalf("resume after the Close: %d, want 404", code)
	}
	// Detached, the same bound ends the connection without a Close.
	s = e.connectStateful(t, "")
	id = s.conn.ConnectionID()
	s.w.invoke("1", "LeaveLeadGroup", 7).ok(t)
	s.cut()
	awaitCond(t, "the connection to be detached", func() bool { return e.s.Detached(id) })
	for i := range 100 {
		e.s.Client(id).Send("ReceiveLeadUpdate", i)
	}
	awaitCond(t, "the connection to end", func() bool { return e.s.ConnectionCount() == 0 })
	got := gather(t, reg)
	for k, v := range map[string]float64{
		"leadupdates_hub_unacked_closes_total":                                          2,
		"leadupdates_hub_connections_closed_total{reason=unacked,transport=WebSockets}": 2,
		"leadupdates_hub_reattached_total":                                              0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["leadupdates_hub_messages_dropped_total{reason=unacked}"] < 2 {
		t.Errorf("dropped{unacked} = %v, want at least 2", got["leadupdates_hub_messages_dropped_total{reason=unacked}"])
	}
}

func TestStatefulResumeIsAuthenticated(t *testing.T) {
	e := newEnv(t, hub.WithAuthenticator(staticTokens))
	s := e.connectStateful(t, "alice")
	id := s.conn.ConnectionID()
	s.w.invoke("1", "JoinLeadGroup", 7).ok(t)

	// Bob's token, the connection's token: 403, and Alice's socket works on.
	mallory := *s.c
	mallory.AccessToken = "bob"
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if _, resp, err := mallory.Resume(ctx, s.conn); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("resume with another user's token: %v", err)
	}
	s.w.invoke("2", "JoinLeadGroup", 8).ok(t)

	// A fresh token for the same user re-attaches: the connection keeps
	// its principal and groups.
	s.cut()
	awaitCond(t, "the connection to be detached", func() bool { return e.s.Detached(id) })
	e.s.Group(hub.LeadGroup(8)).Send("ReceiveLeadUpdate", "x")
	w, code := s.resume()
	if w == nil {
		t.Fatalf("resume: %d", code)
	}
	if m := w.nextJSON(true); m.Type != 9 {
		t.Fatalf("want Sequence, got %s", m.Raw)
	}
	// Never acknowledged: the completions of 1 and 2, then the update.
	for _, want := range []string{"1", "2"} {
		if m := w.nextCounted(); m.Type != 3 || m.InvocationID != want {
			t.Fatalf("want the completion of %s, got %s", want, m.Raw)
		}
	}
	if m := w.nextCounted(); m.Target != "ReceiveLeadUpdate" {
		t.Fatalf("got %s", m.Raw)
	}
}

func TestStatefulServerCloseRefusesTheExtraSocket(t *testing.T) {
	e := newEnv(t)
	s := e.connectStateful(t, "")
	s.w.invoke("1", "LeaveLeadGroup", 1).ok(t)
	e.s.Disconnect(s.conn.ConnectionID())
	last := lastBeforeEnd(t, s.w)
	expectClose(t, last, "closed by the server", true)
	if _, code := s.resume(); code != http.StatusNotFound && code != http.StatusConflict {
		t.Fatalf("the socket after the Close: %d, want 404 or 409", code)
	}
}

// A WebSocket close frame from the client ends the connection: it is not
// a network failure.
func TestStatefulCloseFrameEnds(t *testing.T) {
	e := newEnv(t)
	s := e.connectStateful(t, "")
	s.w.invoke("1", "LeaveLeadGroup", 1).ok(t)
	if err := s.conn.CloseNormally(); err != nil {
		t.Log(err)
	}
	awaitCond(t, "the connection to end", func() bool { return e.s.ConnectionCount() == 0 })
}

// Without stateful reconnect a second WebSocket still gets 409, and a
// version 2 handshake is a plain connection.
func TestStatefulNotNegotiated(t *testing.T) {
	e := newEnv(t)
	_, token := e.negotiateV1(t)
	w := e.open(t, "id="+token, false)
	w.sendText(`{"protocol":"json","version":2}` + rs)
	if r := w.next(); string(r.b) != "{}" {
		t.Fatalf("answer %q", r.b)
	}
	w.invoke("1", "LeaveLeadGroup", 1).ok(t)
	if _, resp, err := e.dial(t, "id="+token, nil); err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("second WebSocket: %v", err)
	}
	w.sendText(string(signalrtest.JSON.Ack(5)) + string(signalrtest.JSON.Sequence(9)))
	w.invoke("2", "LeaveLeadGroup", 1).ok(t)
}

// lastBeforeEnd reads w until the socket ends and returns the last message
// before the end: the Close, when the hub closed the connection.
func lastBeforeEnd(t *testing.T, w *rawWS) jmsg {
	t.Helper()
	got := w.expectEnd()
	if len(got) == 0 {
		t.Fatal("the socket ended without a message")
	}
	return decodeJSON(t, got[len(got)-1])
}
