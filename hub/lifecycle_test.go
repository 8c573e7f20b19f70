package hub_test

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/leadupdates/leadupdates/hub"
)

// Close stops and waits for every goroutine and timer the Server started,
// even while WebSocket writes are stuck on clients that stopped reading: when
// it returns, no flush goroutine is left, and after the clients and the
// listener are gone, no goroutine at all.
func TestCloseWaitsForWebSocketWriters(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := hub.New(hub.WithSendQueue(1<<20), hub.WithWriteTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var clients []*websocket.Conn
	for range 4 {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+srv.Path(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"protocol":"json","version":1}`+"\x1e")); err != nil {
			t.Fatal(err)
		}
		if _, b, err := ws.Read(ctx); err != nil || string(b) != "{}\x1e" {
			t.Fatalf("handshake answer %q, %v", b, err)
		}
		clients = append(clients, ws) // and never read again
	}
	for srv.ConnectionCount() != len(clients) {
		if ctx.Err() != nil {
			t.Fatal("clients did not connect")
		}
		time.Sleep(time.Millisecond)
	}
	// Far more than the sockets buffer: the flush goroutines block in Write.
	payload := strings.Repeat("x", 16<<10)
	for range 2000 {
		srv.All().Send("ReceiveLeadUpdate", payload)
	}
	time.Sleep(100 * time.Millisecond)

	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "hub.(*conn).flushWS") {
		t.Fatalf("a flush goroutine outlived Close:\n%s", stacks)
	}
	for _, ws := range clients {
		ws.CloseNow()
	}
}
