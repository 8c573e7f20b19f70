package notify_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
)

// TestStalledClientSlowsNobody: one client stops reading while 2,000 large
// events go out. Every Notify call returns at once, the reading client gets
// every event in order, and the hub closes the stalled one.
func TestStalledClientSlowsNobody(t *testing.T) {
	srv, ts := startHub(t, hub.WithWriteTimeout(2*time.Second))
	n := newNotifier(t, srv)

	stalled := dialHub(t, ts.URL)
	reader := dialHub(t, ts.URL)
	awaitConnections(t, srv, 2)

	const events = 2000
	got := make(chan []int64, 1)
	go func() { got <- readLeadIDs(t, reader, events) }()

	payload := strings.Repeat("x", 8<<10)
	for i := range events {
		if err := n.NotifyLeadEnrichment(t.Context(), int64(i+1), map[string]string{"notes": payload}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	ids := <-got
	if len(ids) != events {
		t.Fatalf("the reading client got %d events, want %d", len(ids), events)
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("event %d is lead %d: out of order", i, id)
		}
	}
	awaitConnections(t, srv, 1) // the stalled client was closed (its write timed out)
	_ = stalled.CloseNow()
}

func dialHub(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/leadupdates", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { _ = ws.CloseNow() })
	if err := ws.Write(ctx, websocket.MessageText, []byte("{\"protocol\":\"json\",\"version\":1}\x1e")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "{}\x1e" {
		t.Fatalf("handshake: %q %v", b, err)
	}
	return ws
}

func awaitConnections(t *testing.T, srv *hub.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for srv.ConnectionCount() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want %d", srv.ConnectionCount(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readLeadIDs reads ReceiveLeadUpdate invocations until it has n of them.
func readLeadIDs(t *testing.T, ws *websocket.Conn, n int) []int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ids []int64
	for len(ids) < n {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Errorf("reader: %v after %d events", err, len(ids))
			return ids
		}
		// A scan for the lead id rather than a full decode, so that the
		// reader keeps up on a loaded machine: a reader slower than the
		// hub's write timeout is closed as stalled too.
		for _, rec := range bytes.Split(bytes.TrimSuffix(b, []byte{0x1e}), []byte{0x1e}) {
			if !bytes.Contains(rec, []byte(`"target":"ReceiveLeadUpdate"`)) {
				continue
			}
			_, after, ok := bytes.Cut(rec, []byte(`"leadId":`))
			if end := bytes.IndexAny(after, ",}"); ok && end > 0 {
				if id, err := strconv.ParseInt(string(after[:end]), 10, 64); err == nil {
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}
