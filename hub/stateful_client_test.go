package hub_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/leadupdates/leadupdates/hub"
)

// TestStatefulReconnectClient drives the real @microsoft/signalr client
// with withStatefulReconnect(), JSON and MessagePack, through a TCP proxy
// that the client asks to cut every connection: see
// testdata/client/stateful.mjs for the cases. Each case is a subtest.
func TestStatefulReconnectClient(t *testing.T) {
	main := startCutFixture(t)
	short := startCutFixture(t, hub.WithStatefulReconnect(time.Second, 4000))

	runClient(t, "stateful.mjs", 3*time.Minute, 7,
		"HUB_URL="+main.proxyURL(), "CTL_URL="+main.ctlURL(),
		"SHORT_HUB_URL="+short.proxyURL(), "SHORT_CTL_URL="+short.ctlURL())
}

// cutFixture is a hub, reached by clients through a cutProxy, with control
// endpoints reached directly: /ctl/send (as the conformance fixture's),
// /ctl/cut and /ctl/joins.
type cutFixture struct {
	t     *testing.T
	hub   *hub.Server
	ts    *http.Server
	addr  string
	proxy *cutProxy

	mu    sync.Mutex
	joins map[string]int // "user/lead": times JoinLeadGroup ran
}

func startCutFixture(t *testing.T, opts ...hub.Option) *cutFixture {
	f := &cutFixture{t: t, joins: map[string]int{}}
	counting := hub.GroupAuthorizerFunc(func(_ context.Context, p *hub.Principal, lead int64) (bool, error) {
		f.mu.Lock()
		f.joins[fmt.Sprintf("%s/%d", p.ID, lead)]++
		f.mu.Unlock()
		return true, nil
	})
	opts = append([]hub.Option{hub.WithAuthenticator(staticTokens), hub.WithGroupAuthorizer(counting)}, opts...)
	if os.Getenv("HUB_DEBUG") != "" {
		opts = append(opts, hub.WithLogger(log.NewLogfmtLogger(os.Stderr)))
	}
	h, err := hub.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.hub = h
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	mux := http.NewServeMux()
	h.Mount(mux)
	mux.HandleFunc("POST /ctl/send", f.send)
	mux.HandleFunc("POST /ctl/cut", f.cut)
	mux.HandleFunc("GET /ctl/joins", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		fmt.Fprint(w, f.joins[r.URL.Query().Get("key")])
	})
	mux.HandleFunc("GET /ctl/count", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, h.ConnectionCount())
	})
	f.proxy = newCutProxy(t, f.addr)
	f.ts = &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = f.ts.Serve(ln)
	}()
	t.Cleanup(func() {
		f.proxy.close()
		_ = h.Close()
		_ = f.ts.Close()
		<-served
	})
	return f
}

func (f *cutFixture) proxyURL() string { return "http://" + f.proxy.addr() }
func (f *cutFixture) ctlURL() string   { return "http://" + f.addr }

// send: ?to=group:NAME|conn:ID &n=count &tag=... &pad=bytes; messages are
// {"seq": i, "tag": tag, "pad": "..."}.
func (f *cutFixture) send(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	pad, _ := strconv.Atoi(q.Get("pad"))
	kind, name, _ := strings.Cut(q.Get("to"), ":")
	for i := range max(n, 1) {
		msg := map[string]any{"seq": i, "tag": q.Get("tag")}
		if pad > 0 {
			msg["pad"] = strings.Repeat("x", pad)
		}
		if kind == "group" {
			f.hub.Group(name).Send("ReceiveLeadUpdate", msg)
		} else {
			f.hub.Client(name).Send("ReceiveLeadUpdate", msg)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// cut: drop every proxied connection now and hold new ones for ?hold=ms.
func (f *cutFixture) cut(w http.ResponseWriter, r *http.Request) {
	hold, _ := strconv.Atoi(r.URL.Query().Get("hold"))
	f.proxy.cut(time.Duration(hold) * time.Millisecond)
	w.WriteHeader(http.StatusNoContent)
}

// cutProxy forwards TCP connections to a target, which retarget changes.
// cut closes every one at
// once, both ways, without a WebSocket close frame, as a network failure
// does, and holds connections made in the next moment until it is over,
// as a network that is still down would.
type cutProxy struct {
	t      *testing.T
	ln     net.Listener
	target string // under mu

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	resumed chan struct{} // closed when a hold ends; nil when none
	wg      sync.WaitGroup
	done    chan struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *cutProxy) forward(down net.Conn) {
	defer p.wg.Done()
	if !p.track(down) {
		down.Close()
		return
	}
	p.mu.Lock()
	held := p.resumed
	p.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-p.done:
		}
	}
	p.mu.Lock()
	target := p.target // after the hold: a retarget during it applies
	p.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil || !p.track(up) {
		down.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	var both sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer both.Done()
		_, _ = io.Copy(dst, src)
		// Either side ending ends both, as a cut does.
		dst.Close()
		src.Close()
	}
	both.Add(2)
	go pipe(up, down)
	go pipe(down, up)
	both.Wait()
	p.mu.Lock()
	delete(p.conns, up)
	delete(p.conns, down)
	p.mu.Unlock()
}

func (p *cutProxy) cut(hold time.Duration) {
	p.mu.Lock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a goodbye
		}
		c.Close()
	}
	clear(p.conns)
	if hold > 0 && p.resumed == nil {
		ch := make(chan struct{})
		p.resumed = ch
		time.AfterFunc(hold, func() {
			p.mu.Lock()
			p.resumed = nil
			p.mu.Unlock()
			close(ch)
		})
	}
	p.mu.Unlock()
}

// retarget sends the connections made from now on to target, as a load
// balancer choosing another instance would.
func (p *cutProxy) retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *cutProxy) close() {
	p.mu.Lock()
	close(p.done)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}
