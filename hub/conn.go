package hub

import (
	"bufio"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leadupdates/leadupdates/hub/internal/protocol"
	"golang.org/x/time/rate"
)

// conn is one SignalR connection, from negotiate to its end. It is the
// signalr.Connection the engine serves, and it sits between the transport and
// the engine as its dispatcher (dispatch.go): Read hands the engine only validated invocations,
// Write translates what the engine answers, and every byte to the client goes
// through one ordered, bounded queue.
type conn struct {
	srv       *Server
	id        string // public: what hub code and clients see
	token     string // secret: what transport requests carry as ?id=
	principal *Principal
	created   time.Time
	// pendingKey is the user or address its pending slot counts against.
	pendingKey string
	// calls limits the client's invocations (WithInvocationRate); used by
	// the reader only.
	calls *rate.Limiter

	ctx    context.Context // the connection's life; canceled by finish
	cancel context.CancelFunc
	// engineCtx is what the engine serves; canceling it ends the engine's
	// loop once the last message has been written.
	engineCtx  context.Context
	stopEngine context.CancelFunc

	// Set when a transport attaches, under srv.reg.mu, and fixed after.
	transport Transport
	attached  bool
	opened    bool  // handshake done and registered; under srv.reg.mu
	ended     int64 // unix nanoseconds; under srv.reg.mu
	// link is the WebSocket the connection writes to, under mu; nil
	// before the upgrade and while a stateful connection waits to be
	// re-attached.
	link *wsLink
	// wsWriters counts the WebSocket flush goroutine and armed or running
	// write timers; the connection's serving goroutine waits for them.
	wsWriters sync.WaitGroup
	// stateful: negotiate offered stateful reconnect (fixed before the
	// connection is registered); rb is its state once a version 2
	// handshake took it up (set under mu by the reader, fixed after).
	stateful bool
	rb       *replay
	// ho is its part in hand-off (handoff.go), with a SessionStore; set
	// with rb, under mu.
	ho *handoff
	// resumeGroups: a connection resumed from another instance rejoins
	// these once live.
	resumeGroups []string
	inbox        chan []byte // SSE and Long Polling: records from POSTs, size-checked

	postMu    sync.Mutex        // one POST at a time
	postProto protocol.Protocol // framing of POST bodies, known after the handshake

	// Inbound state, used only by the engine's reader goroutine.
	br     *bufio.Reader // WebSocket: the message stream
	brLink *wsLink       // the WebSocket br reads
	heard  bool          // stateful: a message after the handshake came
	// synthetic: resumed from another instance, the client sends no
	// handshake; the engine is handed one.
	synthetic bool
	pending   []byte
	nextID    uint64

	proto       atomic.Pointer[protocol.Protocol] // the client's, after its handshake
	engineReady atomic.Bool                       // the engine has answered the handshake
	ready       atomic.Bool                       // the client has its handshake answer queued
	lastRecv    atomic.Int64                      // unix nanoseconds
	lastWrite   atomic.Int64
	polling     atomic.Bool // a long poll is waiting

	mu           sync.Mutex
	reply        []byte   // the engine's handshake answer, until accept
	call         *call    // the invocation the engine is running
	queue        [][]byte // waiting for the writer; a stateful connection's counted frames wait in rb
	lpBytes      int      // Long Polling: bytes of the messages queued (overflows)
	spare        [][]byte
	flushing     bool
	greeted      bool         // the first frame, the handshake answer, is taken
	gateUntil    time.Time    // stateful: hold what follows the handshake answer until then (takeUp)
	detachedAt   time.Time    // stateful: when the WebSocket was lost; zero while attached
	rejoin       chan *wsLink // stateful: a re-attached WebSocket, for the reader
	closing      bool
	closingSince time.Time
	reason       string
	closed       chan struct{} // closed when closing starts: stop taking input
	drained      chan struct{} // closed once closing and everything is written
	wake         chan struct{} // SSE and Long Polling: something is queued
	poll         chan struct{} // closed to end the current long poll early

	finishOnce sync.Once

	pos positions // Publish and CatchUp (publish.go, catchup.go)
}

// call is an invocation handed to the engine, awaiting its completion.
type call struct {
	engineID   string
	clientID   string
	hasID      bool
	target     string
	errorOnly  bool
	withError  bool
	completing bool // its completion is being queued; under c.mu
	done       chan struct{}
}

func newConn(s *Server, id, token string, p *Principal) *conn {
	ctx, cancel := context.WithCancel(withPrincipal(s.ctx, p))
	ectx, stop := context.WithCancel(ctx)
	c := &conn{
		srv: s, id: id, token: token, principal: p, created: time.Now(),
		ctx: ctx, cancel: cancel, engineCtx: ectx, stopEngine: stop,
		closed:  make(chan struct{}),
		drained: make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	// The engine's contexts carry c: an id may name another copy by the
	// time the engine reports this one's end (hand-off).
	c.engineCtx = context.WithValue(c.engineCtx, connKey{}, c)
	if s.cfg.callRate > 0 {
		c.calls = rate.NewLimiter(rate.Limit(s.cfg.callRate), s.cfg.callBurst)
	}
	c.lastRecv.Store(c.created.UnixNano())
	c.lastWrite.Store(c.created.UnixNano())
	return c
}

// Context, ConnectionID and SetConnectionID implement signalr.Connection.
func (c *conn) Context() context.Context  { return c.engineCtx }
func (c *conn) ConnectionID() string      { return c.id }
func (c *conn) SetConnectionID(id string) {}

func (c *conn) protocol() protocol.Protocol {
	if p := c.proto.Load(); p != nil {
		return *p
	}
	return nil
}

// closeWith queues a Close message and ends the connection once everything
// before it is written.
func (c *conn) closeWith(reason, text string, allowReconnect bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startClosing(reason, text, allowReconnect)
}

func (c *conn) startClosing(reason, text string, allowReconnect bool) {
	if c.closing {
		return
	}
	c.setClosing(reason)
	c.gateUntil = time.Time{}
	if p := c.protocol(); p != nil && c.ready.Load() && reason != reasonClient && !c.detached() {
		c.queue = append(c.queue, p.Close(text, allowReconnect))
	}
	if !c.queued() && !c.flushing {
		c.markDrained()
		return
	}
	c.kick()
}

// setClosing marks the start of the end; c.mu is held.
func (c *conn) setClosing(reason string) {
	if c.closing {
		return
	}
	c.closing, c.reason, c.closingSince = true, reason, time.Now()
	close(c.closed)
}

// markDrained runs with c.mu held, once the Close is written.
func (c *conn) markDrained() {
	select {
	case <-c.drained:
	default:
		close(c.drained)
		c.stopEngine()
	}
}

// abort ends the connection without writing anything more: the transport is
// gone.
func (c *conn) abort(reason string) {
	c.mu.Lock()
	c.setClosing(reason)
	c.discard()
	if !c.flushing {
		c.markDrained()
	}
	c.mu.Unlock()
	c.finish()
}

// finish ends the connection for good: the transport is closed or gone.
func (c *conn) finish() {
	c.finishOnce.Do(func() {
		c.mu.Lock()
		c.setClosing(reasonServer)
		reason := c.reason
		c.markDrained()
		c.mu.Unlock()
		c.cancel()
		c.srv.finished(c, reason)
	})
}

func (c *conn) info() ConnInfo {
	i := ConnInfo{ConnectionID: c.id, Transport: c.transport, Principal: c.principal}
	if p := c.protocol(); p != nil {
		i.Protocol = p.Name()
	}
	return i
}

func (c *conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == "" {
		return reasonServer
	}
	return c.reason
}
