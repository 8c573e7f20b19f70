package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

// Pipelined invocations, many to one WebSocket message, complete in call
// order: a call ends only once its Completion is queued.
func TestRawPipelinedBatchesCompleteInOrder(t *testing.T) {
	e := newEnv(t)
	w, _ := e.connect(t)
	const batches, per = 100, 30
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
		defer cancel()
		for b := range batches {
			var sb strings.Builder
			for i := range per {
				sb.WriteString(invocation(fmt.Sprint(b*per+i), "LeaveLeadGroup", i+1))
			}
			if err := w.c.Write(ctx, websocket.MessageText, []byte(sb.String())); err != nil {
				return
			}
		}
	}()
	for i := range batches * per {
		m := w.nextJSON(true)
		if m.Type != 3 || m.InvocationID != fmt.Sprint(i) {
			t.Fatalf("completion %d: got %s", i, m.Raw)
		}
	}
}

// An invocation id "" asks for no Completion, as in ASP.NET Core, in both
// protocols.
func TestRawEmptyInvocationIDGetsNoCompletion(t *testing.T) {
	e := newEnv(t)
	w, _ := e.connect(t)
	w.sendText(`{"type":1,"invocationId":"","target":"JoinLeadGroup","arguments":[5]}` + rs)
	w.sendText(`{"type":1,"invocationId":"","target":"nope","arguments":[]}` + rs)
	w.invoke("after", "LeaveLeadGroup", 5).ok(t)

	_, token := e.negotiateV1(t)
	m := e.open(t, "id="+url.QueryEscape(token), true)
	m.sendText(mpHandshake)
	if r := m.next(); string(r.b) != "{}" {
		t.Fatalf("handshake answer %q", r.b)
	}
	m.send(websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]string{}, "", "JoinLeadGroup", []any{5}))
	m.send(websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]string{}, "x", "LeaveLeadGroup", []any{5}))
	for {
		v := mpDecode(t, m.next().b)
		if typ, _ := asInt(v[0]); typ == 6 {
			continue
		} else if typ != 3 || v[2] != "x" {
			t.Fatalf("want the completion of x first, got %v", v)
		}
		break
	}
}

// A DELETE on a Long Polling connection that has ended answers 404, as
// ASP.NET Core does, not 202 again.
func TestRawSecondDeleteIsNotFound(t *testing.T) {
	e := newEnv(t)
	_, token := e.negotiateV1(t)
	u := e.base + "?id=" + url.QueryEscape(token)
	if code, _, _ := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK {
		t.Fatalf("first poll: %d", code)
	}
	if code, _, _ := e.do(t, http.MethodDelete, u, nil, nil); code != http.StatusAccepted {
		t.Fatalf("first DELETE: %d, want 202", code)
	}
	if code, _, _ := e.do(t, http.MethodDelete, u, nil, nil); code != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", code)
	}
}

// The handshake answer is alone in its WebSocket message, even when the
// application sends to the connection as it connects.
func TestHandshakeAnswerHasItsOwnMessage(t *testing.T) {
	var s *hub.Server
	e := newEnv(t, hub.WithOnConnected(func(_ context.Context, i hub.ConnInfo) {
		for n := range 3 {
			s.Client(i.ConnectionID).Send("ReceiveMetrics", n)
		}
	}))
	s = e.s
	for _, p := range []signalrtest.Protocol{signalrtest.JSON, signalrtest.MessagePack} {
		for range 10 {
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			c := &signalrtest.Client{URL: e.base}
			conn, err := c.Connect(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			first := int64(1) // Connect read the answer, in message 1
			rec, err := conn.ReadRecord(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Msg == first {
				t.Errorf("%v: a message arrived with the handshake answer", p)
			}
			conn.Close()
			cancel()
		}
	}
}
