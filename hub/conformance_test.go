package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
)

// TestConformance drives the real @microsoft/signalr 10.x client (and its
// MessagePack protocol) in Node against the hub on every transport: see
// testdata/client/conformance.mjs for the cases. Each case is a subtest.
func TestConformance(t *testing.T) {

	main := startFixture(t, nil)
	fallback := startFixture(t, breakStreaming)

	runClient(t, "conformance.mjs", 4*time.Minute, 40, "HUB_URL="+main.url(), "FALLBACK_URL="+fallback.url())
}

// fixture is a hub behind a real listener that the client can ask, over
// /ctl/*, to send, to disconnect a connection and to restart on the same
// address.
type fixture struct {
	t    *testing.T
	wrap func(http.Handler) http.Handler

	mu   sync.Mutex
	addr string
	hub  *hub.Server
	srv  *http.Server
	done chan struct{}
}

func startFixture(t *testing.T, wrap func(http.Handler) http.Handler) *fixture {
	f := &fixture{t: t, wrap: wrap}
	if err := f.start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) url() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "http://" + f.addr
}

// staticTokens accepts "Bearer alice" and "Bearer bob".
var staticTokens = hub.AuthenticatorFunc(func(r *http.Request) (*hub.Principal, error) {
	switch tok := hub.BearerToken(r); tok {
	case "alice", "bob":
		return &hub.Principal{ID: tok}, nil
	case "":
		return nil, hub.ErrNoToken
	default:
		return nil, errors.New("unknown token")
	}
})

// denyLead666 lets anyone follow any lead but 666.
var denyLead666 = hub.GroupAuthorizerFunc(func(_ context.Context, _ *hub.Principal, id int64) (bool, error) {
	return id != 666, nil
})

func (f *fixture) start(addr string) error {
	h, err := hub.New(
		hub.WithAuthenticator(staticTokens),
		hub.WithGroupAuthorizer(denyLead666),
		hub.WithMaxLeadGroups(3),
	)
	if err != nil {
		return err
	}
	var ln net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		h.Close()
		return err
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	mux.HandleFunc("POST /ctl/send", f.send)
	mux.HandleFunc("POST /ctl/disconnect", f.disconnect)
	mux.HandleFunc("POST /ctl/restart", f.restart)
	mux.HandleFunc("GET /ctl/count", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, f.current().ConnectionCount())
	})
	var handler http.Handler = mux
	if f.wrap != nil {
		handler = f.wrap(mux)
	}
	srv := &http.Server{Handler: handler}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	f.mu.Lock()
	f.addr, f.hub, f.srv, f.done = ln.Addr().String(), h, srv, done
	f.mu.Unlock()
	return nil
}

func (f *fixture) current() *hub.Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hub
}

func (f *fixture) stop() {
	f.mu.Lock()
	h, srv, done := f.hub, f.srv, f.done
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		f.t.Errorf("hub shutdown: %v", err)
	}
	_ = srv.Shutdown(ctx)
	_ = srv.Close()
	<-done
}

// send: ?to=all|group:NAME|user:ID|conn:ID &n=count &pad=bytes. Messages are
// {"seq": i, "tag": tag, "pad": "..."}.
func (f *fixture) send(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	pad := strings.Repeat("x", atoi(q.Get("pad")))
	h := f.current()
	to := q.Get("to")
	kind, name, _ := strings.Cut(to, ":")
	for i := range max(n, 1) {
		msg := map[string]any{"seq": i, "tag": q.Get("tag")}
		if pad != "" {
			msg["pad"] = pad
		}
		switch kind {
		case "group":
			h.Group(name).Send("ReceiveLeadUpdate", msg)
		case "groups":
			h.Groups(strings.Split(name, ",")...).Send("ReceiveLeadUpdate", msg)
		case "user":
			h.User(name).Send("ReceiveLeadUpdate", msg)
		case "conn":
			h.Client(name).Send("ReceiveLeadUpdate", msg)
		default:
			h.All().Send("ReceiveLeadUpdate", msg)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func (f *fixture) disconnect(w http.ResponseWriter, r *http.Request) {
	if !f.current().Disconnect(r.URL.Query().Get("id")) {
		http.Error(w, "no such connection", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// restart shuts the hub down (clients are told to reconnect), keeps the
// address dark for ?down=ms, and starts a new hub on the same address.
func (f *fixture) restart(w http.ResponseWriter, r *http.Request) {
	down := time.Duration(atoi(r.URL.Query().Get("down"))) * time.Millisecond
	w.WriteHeader(http.StatusAccepted)
	go func() {
		f.mu.Lock()
		addr := f.addr
		f.mu.Unlock()
		f.stop()
		time.Sleep(down)
		if err := f.start(addr); err != nil {
			f.t.Errorf("restart: %v", err)
		}
	}()
}

// breakStreaming stands for a proxy that refuses WebSocket upgrades and
// Server-Sent Events, so that clients must fall back to long polling.
func breakStreaming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrades are not allowed here", http.StatusForbidden)
			return
		}
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			http.Error(w, "streaming is not allowed here", http.StatusBadGateway)
			return
		}
		next.ServeHTTP(w, r)
	})
}
