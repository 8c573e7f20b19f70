package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/internal/minrate"
	"github.com/leadupdates/leadupdates/internal/promreg"
	"github.com/philippseith/signalr"
	"github.com/rs/cors"
)

// DefaultGroup is the group every connection joins when it connects.
const DefaultGroup = "LeadUpdates"

// LeadGroup returns the name of the group that receives the updates of one
// lead: "Lead_{id}".
func LeadGroup(leadID int64) string { return fmt.Sprintf("Lead_%d", leadID) }

// Server is a SignalR endpoint for the LeadUpdatesHub: an http.Handler that
// serves negotiate, WebSockets, Server-Sent Events and Long Polling to
// unmodified @microsoft/signalr clients, and the sending side used by the
// application (All, Group, Groups, Client, User).
//
// Messages reach a client in the order they were sent; one addressed to
// several groups reaches a connection once; each is encoded once per
// protocol, not once per connection.
//
// A Server is safe for concurrent use. Sending never blocks on a client: each
// connection has its own ordered, bounded queue.
type Server struct {
	cfg     config
	tel     *telemetry
	engine  signalr.Server
	methods map[string]method // what clients may call, by lower-case name
	handler http.Handler
	origins []string

	ctx    context.Context
	cancel context.CancelFunc
	relay  *relay // nil without a backplane

	reg      *registry
	refusals refusals // the GroupAuthorizer's recent refusals

	conns     sync.WaitGroup // attached connections
	workers   sync.WaitGroup // goroutines serving connections
	heartbeat sync.WaitGroup
	catchUps  sync.WaitGroup // hub method CatchUp calls running
	logReads  chan struct{}  // a slot per CatchUp read of the Log running (WithCatchUpReads)
	frames    *frameCache    // what catch-ups encoded; nil without a Log
	closeOnce sync.Once

	// Hand-off (WithSessionStore): this instance's id as a session owner,
	// and what saves its sessions; nil without a store.
	instance  string
	saver     *saver
	hardClose atomic.Bool // Close: sessions stay for other instances
}

// New returns a Server. It starts the heartbeat that pings quiet clients and
// times out silent ones; Close stops it.
func New(opts ...Option) (*Server, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	f := promreg.With("hub", cfg.registerer)
	s := &Server{
		cfg:     cfg,
		tel:     newTelemetry(f),
		origins: cfg.origins,
		reg:     newRegistry(),
	}
	s.refusals.ttl = cfg.refusalTTL
	s.logReads = make(chan struct{}, cfg.logReads)
	if cfg.log != nil {
		s.frames = new(frameCache)
	}
	if cfg.backplane != nil {
		s.relay = newRelay(cfg.backplane, cfg.backplaneQueue, f, cfg.logger, s.deliverRecord)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.startEngine(); err != nil {
		s.cancel()
		return nil, err
	}
	allowed, allow := cfg.origins, func(string) bool { return false }
	switch {
	case slices.Contains(cfg.origins, "*"):
		// Every origin, with credentials: browsers refuse "*" for a
		// credentialed request, so the request's own origin is answered.
		allowed, allow = nil, func(string) bool { return true }
	case len(cfg.origins) > 0:
		allow = nil
	}
	s.handler = cors.New(cors.Options{
		AllowedOrigins:   allowed,
		AllowOriginFunc:  allow,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodDelete},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "X-Requested-With", "X-SignalR-User-Agent"},
		AllowCredentials: true,
		MaxAge:           600,
	}).Handler(http.HandlerFunc(s.route))
	if cfg.sessions != nil {
		s.instance = newInstanceID()
		s.saver = newSaver(s)
	}
	s.heartbeat.Add(1)
	go s.beat()
	if s.relay != nil {
		s.relay.start()
	}
	return s, nil
}

// Mount registers the Server on mux at its path and its negotiate path.
func (s *Server) Mount(mux *http.ServeMux) {
	mux.Handle(s.cfg.path, s)
	mux.Handle(s.cfg.path+"/negotiate", s)
}

// Path returns the path the Server answers on.
func (s *Server) Path() string { return s.cfg.path }

// ServeHTTP answers negotiate and transport requests and CORS preflights on
// the Server's path; anything else gets 404.
//
// A request body is read at a minimum rate, 240 bytes per second after a
// 5 s grace period, as Kestrel's default, or the connection is closed: a
// client dripping a body holds no connection. Only POSTs may have a body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 && r.Method != http.MethodPost {
		// Nobody reads it: let net/http, which would wait for it, give up
		// at once and close the connection.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		http.Error(w, "A request body is allowed only on POST.", http.StatusBadRequest)
		return
	}
	minrate.Limit(w, r, minrate.Rate, minrate.Grace)
	s.handler.ServeHTTP(w, r)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case s.cfg.path + "/negotiate":
		s.negotiate(w, r)
	case s.cfg.path:
		switch r.Method {
		case http.MethodGet:
			switch {
			case isWebSocket(r):
				s.serveWebSocket(w, r)
			case strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
				s.serveSSE(w, r)
			default:
				s.servePoll(w, r)
			}
		case http.MethodPost:
			s.servePost(w, r)
		case http.MethodDelete:
			s.serveDelete(w, r)
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		}
	default:
		http.NotFound(w, r)
	}
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func (s *Server) enabled(t Transport) bool {
	for _, e := range s.cfg.transports {
		if e == t {
			return true
		}
	}
	return false
}

// authenticate answers 401 and returns false when r does not authenticate.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*Principal, bool) {
	if s.cfg.auth == nil {
		return &Principal{}, true
	}
	p, err := s.cfg.auth.Authenticate(r)
	if err != nil || p == nil {
		if err == nil {
			err = errors.New("no principal")
		}
		s.tel.authFailures.Inc()
		level.Info(s.cfg.logger).Log("msg", "authentication failed", "path", r.URL.Path, "err", err)
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	return p, true
}

// lookup finds the connection a transport request names with ?id= and checks
// that the same user makes it. It answers the error itself.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*conn, bool) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return nil, false
	}
	c := s.reg.byToken(r.URL.Query().Get("id"))
	if c == nil {
		http.Error(w, "No Connection with that ID", http.StatusNotFound)
		return nil, false
	}
	if p.ID != c.principal.ID {
		s.tel.authFailures.Inc()
		http.Error(w, "Forbidden", http.StatusForbidden)
		return nil, false
	}
	return c, true
}

// attach binds a transport to a negotiated connection; a second transport
// request for it gets 409.
func (s *Server) attach(w http.ResponseWriter, c *conn, t Transport) bool {
	_, ok := s.bind(w, c, t)
	return ok
}

// bind is attach, but that a WebSocket may re-attach a stateful connection:
// resume.
func (s *Server) bind(w http.ResponseWriter, c *conn, t Transport) (resume, ok bool) {
	err := s.reg.attach(c, t, func() {
		s.conns.Add(1)
		s.workers.Add(1) // for the goroutine spawn starts
	})
	switch err {
	case nil:
		return false, true
	case errResumable:
		return true, true
	case errShuttingDown:
		http.Error(w, "Server is shutting down.", http.StatusServiceUnavailable)
	case errGone:
		http.Error(w, "No Connection with that ID", http.StatusNotFound)
	default:
		http.Error(w, "Connection ID is already in use.", http.StatusConflict)
	}
	return false, false
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// spawn runs f, the one goroutine serving an attached connection, in a
// goroutine that Close waits for. attach counted it already: a WaitGroup
// must not grow while Close waits on it.
func (s *Server) spawn(f func()) {
	go func() {
		defer s.workers.Done()
		f()
	}()
}

// finished removes a connection that has ended.
func (s *Server) finished(c *conn, reason string) {
	live, attached := s.reg.remove(c, time.Now())
	if live {
		s.tel.connectionClosed(c)
	}
	if c.opened && (s.saver == nil || s.sessionEnded(c)) {
		s.disconnected(c)
	}
	// The token stays known a moment (keepToken): the heartbeat forgets it.
	if attached {
		s.conns.Done()
	}
}

// disconnected runs the OnDisconnected hook of a connection that ended.
func (s *Server) disconnected(c *conn) {
	if f := s.cfg.onDisconnected; f != nil {
		// The connection's context is done; its values (the principal) stay.
		s.hook(c, "OnDisconnected", func() { f(context.WithoutCancel(c.ctx), c.info()) })
	}
}

func (s *Server) logf(c *conn, msg string, err error) {
	level.Debug(s.cfg.logger).Log("msg", msg, "connection_id", c.id, "err", err)
}

// Shutdown tells every client to reconnect (a Close with allowReconnect,
// after what is already queued), waits for the connections to end or ctx to
// be done, and then closes the Server. New connections get 503 meanwhile.
func (s *Server) Shutdown(ctx context.Context) error {
	all, pending := s.reg.stop()
	for _, c := range pending {
		c.finish()
	}
	for _, c := range all {
		c.closeWith(reasonShutdown, "Server is shutting down.", true)
	}
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range all {
			c.abort(reasonShutdown)
		}
		<-done
	}
	s.Close()
	return err
}

// Close ends every connection at once and stops the Server; it returns once
// every goroutine and timer the Server started has returned, and a second
// call, concurrent or later, does the same. Prefer Shutdown, which lets
// clients know they should reconnect. With a backplane, Close publishes what
// is still queued for the other instances, waiting at most 5 s per batch,
// and stops the subscription.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.hardClose.Store(true)
		attached, pending := s.reg.stop()
		for _, c := range append(attached, pending...) {
			c.abort(reasonShutdown)
		}
		s.conns.Wait()
		s.cancel()
		s.workers.Wait()
		s.catchUps.Wait()
		s.heartbeat.Wait()
		if s.saver != nil {
			s.saver.close()
		}
		if s.relay != nil {
			s.relay.close()
		}
	})
	return nil
}

// Disconnect closes one connection, after what is already queued for it,
// with a Close message that lets the client reconnect, for instance when its
// user's access was revoked (the reconnect authenticates again). It reports whether the
// connection was open.
func (s *Server) Disconnect(connectionID string) bool {
	c := s.reg.liveConn(connectionID)
	if c == nil {
		return false
	}
	c.closeWith(reasonServer, "Connection closed by the server.", true)
	return true
}

// ConnectionCount returns the number of connections that completed the
// handshake and are open.
func (s *Server) ConnectionCount() int {
	return s.reg.count()
}

// AddToGroup adds a connection to a group of the application's own, for
// instance from WithOnConnected by role; such groups do not count against
// WithMaxLeadGroups. Unknown connections are ignored.
func (s *Server) AddToGroup(group, connectionID string) { s.reg.addToGroup(group, connectionID) }

// InGroup reports whether a connection is in a group, as a test awaiting a
// join needs to know.
func (s *Server) InGroup(group, connectionID string) bool { return s.reg.inGroup(group, connectionID) }

// RemoveFromGroup removes a connection from a group; a group left empty is
// freed.
func (s *Server) RemoveFromGroup(group, connectionID string) {
	s.reg.removeFromGroup(group, connectionID)
}

// hook runs an application hook; a panic ends only this connection.
func (s *Server) hook(c *conn, name string, f func()) {
	defer func() {
		if v := recover(); v != nil {
			level.Error(s.cfg.logger).Log("msg", "panic in "+name, "connection_id", c.id, "err", fmt.Sprint(v))
			c.closeWith(reasonServer, "Connection closed with an error.", false)
		}
	}()
	f()
}
