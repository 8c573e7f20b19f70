package signalrtest_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

// A test connects to a hub, invokes a hub method and reads the completion.
func Example() {
	srv, err := hub.New()
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Mount(mux)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &signalrtest.Client{URL: ts.URL + srv.Path(), HTTPClient: ts.Client()}
	conn, err := c.Connect(ctx, signalrtest.JSON) // negotiate, dial, handshake
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Write(ctx, websocket.MessageText, signalrtest.JSONInvocation("1", "JoinLeadGroup", 42)); err != nil {
		log.Fatal(err)
	}
	rec, err := conn.ReadRecord(ctx)
	if err != nil {
		log.Fatal(err)
	}
	m, err := signalrtest.DecodeJSON(rec.Data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Type, m.InvocationID, m.Error == nil)
	// Output: 3 1 true
}
