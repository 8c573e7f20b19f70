package hub

// The glue to github.com/philippseith/signalr, the hub protocol engine, all
// in this file: creating and serving the engine, the frames it reads and
// writes, the methods clients may call, the HubLifetimeManager that routes
// the engine's sends and group changes to the Server, and the hub itself.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub/internal/protocol"
	"github.com/philippseith/signalr"
	"github.com/vmihailenco/msgpack/v5"
)

// The engine never sees a client's bytes. Every connection talks
// MessagePack to it, whatever the client speaks: the dispatcher
// (dispatch.go) validates each client message and hands the engine a small,
// well-formed invocation, and translates what the engine writes back. That
// keeps the engine's per-connection read buffers small (its JSON reader holds
// 32 KB per connection), lets the hub answer malformed or unauthorized input
// itself, and bypasses the engine's mis-encoded MessagePack Close.

// engineHandshake is the handshake the dispatcher sends the engine.
var engineHandshake = []byte("{\"protocol\":\"messagepack\",\"version\":1}\x1e")

// engineFrameLimit bounds every frame handed to the engine; it is the
// engine's MaximumReceiveMessageSize and so the size of its read buffer.
const engineFrameLimit = 512

// engineInvocation encodes an invocation for the engine. The dispatcher always
// gives one an id, even for a client's send(), so that it can tell when the
// engine is done with it.
func engineInvocation(id, target string, args []any) ([]byte, error) {
	b, err := protocol.Frame(protocol.TypeInvocation, protocol.NoHeaders, id, target, args)
	if err != nil {
		return nil, err
	}
	if len(b) > engineFrameLimit {
		return nil, protocol.ErrTooLarge
	}
	return b, nil
}

// engineMessage is one message the engine wrote: a completion, a ping or a
// close.
type engineMessage struct {
	Type           int
	InvocationID   string
	ResultKind     int8 // 1 error, 2 void, 3 result
	Error          string
	Result         msgpack.RawMessage
	AllowReconnect bool
}

// decodeEngine decodes one frame the engine wrote. The engine writes each
// message with one Write call.
func decodeEngine(p []byte) (engineMessage, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || uint64(len(p)-k) < n {
		return engineMessage{}, errors.New("engine frame: bad length")
	}
	d := msgpack.NewDecoder(bytes.NewReader(p[k : k+int(n)]))
	if _, err := d.DecodeArrayLen(); err != nil {
		return engineMessage{}, fmt.Errorf("engine frame: %w", err)
	}
	typ, err := d.DecodeInt()
	if err != nil {
		return engineMessage{}, fmt.Errorf("engine frame: %w", err)
	}
	m := engineMessage{Type: typ}
	if typ == protocol.TypePing {
		return m, nil
	}
	if err := d.Skip(); err != nil { // headers, on every other message
		return m, fmt.Errorf("engine frame: %w", err)
	}
	switch typ {
	case protocol.TypeCompletion:
		if m.InvocationID, err = d.DecodeString(); err != nil {
			return m, fmt.Errorf("engine completion: %w", err)
		}
		if m.ResultKind, err = d.DecodeInt8(); err != nil {
			return m, fmt.Errorf("engine completion: %w", err)
		}
		switch m.ResultKind {
		case 1:
			m.Error, err = d.DecodeString()
		case 3:
			m.Result, err = d.DecodeRaw()
		}
		if err != nil {
			return m, fmt.Errorf("engine completion: %w", err)
		}
	case protocol.TypeClose:
		// The engine writes [7, {}, error, allowReconnect] under an array
		// header of 3; read the fields in order and ignore the count.
		m.Error, _ = d.DecodeString()
		m.AllowReconnect, _ = d.DecodeBool()
	}
	return m, nil
}

// decodeResult turns a result the engine encoded into a plain value that
// either client protocol can encode again: maps must have string keys.
func decodeResult(raw msgpack.RawMessage) (any, error) {
	if err := protocol.CheckMsgpack(raw); err != nil {
		return nil, err
	}
	return msgpack.NewDecoder(bytes.NewReader(raw)).DecodeInterface()
}

// engineQuiet is the engine's own keep-alive and timeout, set out of the way:
// the hub's heartbeat pings and times out connections itself, counting every
// frame it writes, which the engine cannot see.
const engineQuiet = 24 * time.Hour

// startEngine creates the engine, with the Server as its
// HubLifetimeManager, its logger, and its own keep-alive and size limit out
// of the way; it runs until s.ctx is canceled.
func (s *Server) startEngine() error {
	s.methods = wireMethods()
	var err error
	s.engine, err = signalr.NewServer(s.ctx,
		signalr.HubFactory(func() signalr.HubInterface { return &leadUpdatesHub{srv: s} }),
		signalr.WithHubLifetimeManager(func(signalr.Server) (signalr.HubLifetimeManager, error) { return lifetime{s}, nil }),
		signalr.Logger(log.With(s.cfg.logger, "component", "signalr"), false),
		signalr.HandshakeTimeout(s.cfg.handshakeTimeout),
		signalr.TimeoutInterval(engineQuiet),
		signalr.KeepAliveInterval(engineQuiet),
		signalr.MaximumReceiveMessageSize(engineFrameLimit),
		signalr.EnableDetailedErrors(false),
	)
	if err != nil {
		return fmt.Errorf("hub: engine: %w", err)
	}
	return nil
}

// serve runs the engine on c until the connection ends.
func (s *Server) serve(c *conn) {
	if err := s.engine.Serve(c); err != nil && c.ctx.Err() == nil {
		s.logf(c, "connection ended", err)
	}
	// The engine is done; whatever is still queued (its Close, say) goes out.
	c.closeWith(reasonServer, "", true)
}

// method is one client-callable hub method.
type method struct {
	name      string
	params    []reflect.Type
	errorOnly bool // returns just an error
	withError bool // returns a result and an error
}

// wireMethods lists the methods clients may call: those leadUpdatesHub
// declares itself. Everything promoted from signalr.Hub (OnConnected, Abort,
// Close, ...) stays out of reach.
func wireMethods() map[string]method {
	base := map[string]bool{}
	bt := reflect.TypeOf(&signalr.Hub{})
	for i := range bt.NumMethod() {
		base[bt.Method(i).Name] = true
	}
	errType := reflect.TypeOf((*error)(nil)).Elem()
	ms := map[string]method{}
	ht := reflect.TypeOf(&leadUpdatesHub{})
	for i := range ht.NumMethod() {
		m := ht.Method(i)
		if base[m.Name] {
			continue
		}
		mt := m.Type
		params := make([]reflect.Type, 0, mt.NumIn()-1)
		for j := 1; j < mt.NumIn(); j++ {
			params = append(params, mt.In(j))
		}
		ms[strings.ToLower(m.Name)] = method{
			name:      m.Name,
			params:    params,
			errorOnly: mt.NumOut() == 1 && mt.Out(0) == errType,
			withError: mt.NumOut() == 2 && mt.Out(1) == errType,
		}
	}
	return ms
}

// lifetime is the engine's HubLifetimeManager. It keeps no state of its own:
// connections, groups and users live in the Server, and every send the engine
// or a hub method makes goes through the Server's ordered delivery instead of
// the engine's goroutine per message.
type lifetime struct{ s *Server }

var _ signalr.HubLifetimeManager = lifetime{}

func (l lifetime) OnConnected(hc signalr.HubConnection) {
	s := l.s
	c, ok := s.reg.open(hc.ConnectionID())
	if !ok {
		return
	}
	if c.ho != nil {
		// The same logical connection as on the instance it came from:
		// its OnConnected ran there.
		if c.ho.resumed {
			s.tel.connections.WithLabelValues(string(c.transport)).Inc()
			s.resumed(c)
			return
		}
		c.mu.Lock()
		c.ho.ackedPos = s.reg.published.Load() // nothing before is owed
		c.mu.Unlock()
		s.saver.mark(c)
	}
	s.tel.connections.WithLabelValues(string(c.transport)).Inc()
	s.tel.opened.WithLabelValues(string(c.transport)).Inc()
	level.Debug(s.cfg.logger).Log("msg", "connected", "connection_id", c.id, "transport", c.transport, "user", c.principal.ID)
	if f := s.cfg.onConnected; f != nil {
		s.hook(c, "OnConnected", func() { f(c.engineCtx, c.info()) })
	}
}

func (l lifetime) OnDisconnected(hc signalr.HubConnection) {
	c, _ := hc.Context().Value(connKey{}).(*conn)
	if c == nil {
		return
	}
	if l.s.reg.closeConn(c) {
		l.s.tel.connectionClosed(c)
	}
}

// connKey is the context key under which a conn's engine context holds it.
type connKey struct{}

func (l lifetime) InvokeAll(target string, args []any) { l.s.All().Send(target, args...) }
func (l lifetime) InvokeClient(id, target string, args []any) {
	l.s.Client(id).Send(target, args...)
}
func (l lifetime) InvokeGroup(group, target string, args []any) {
	l.s.Group(group).Send(target, args...)
}
func (l lifetime) AddToGroup(group, id string)      { l.s.AddToGroup(group, id) }
func (l lifetime) RemoveFromGroup(group, id string) { l.s.RemoveFromGroup(group, id) }

// leadUpdatesHub is the hub clients talk to. Its exported methods, apart
// from those promoted from signalr.Hub (which clients cannot call), are the
// wire API: JoinLeadGroup and LeaveLeadGroup. The engine builds one per
// invocation (signalr.HubFactory).
type leadUpdatesHub struct {
	signalr.Hub
	srv *Server
}

// JoinLeadGroup adds the caller to Lead_{leadId}, so that it receives that
// lead's updates, if the GroupAuthorizer allows it and the caller is in fewer
// groups than the cap.
func (h *leadUpdatesHub) JoinLeadGroup(leadID int64) error {
	s := h.srv
	if leadID <= 0 {
		return hubError("leadId must be a positive integer")
	}
	ctx := h.Context()
	p, _ := principalFrom(ctx)
	if a := s.cfg.groupAuth; a != nil {
		denied := hubError(fmt.Sprintf("not authorized to receive updates of lead %d", leadID))
		if s.refusals.refused(p.ID, leadID, time.Now()) {
			s.tel.refusals.Inc()
			return denied
		}
		ok, err := a.AuthorizeLeadGroup(ctx, p, leadID)
		if err != nil {
			level.Error(s.cfg.logger).Log("msg", "group authorization failed", "connection_id", h.ConnectionID(), "lead_id", leadID, "err", err)
			return hubError(fmt.Sprintf("could not check access to lead %d; try again later", leadID))
		}
		if !ok {
			s.refusals.remember(p.ID, leadID, time.Now())
			return denied
		}
	}
	return s.reg.joinLead(h.ConnectionID(), LeadGroup(leadID), s.cfg.maxLeadGroups)
}

// LeaveLeadGroup removes the caller from Lead_{leadId}; leaving a group it is
// not in is not an error.
func (h *leadUpdatesHub) LeaveLeadGroup(leadID int64) error {
	if leadID <= 0 {
		return hubError("leadId must be a positive integer")
	}
	h.srv.RemoveFromGroup(LeadGroup(leadID), h.ConnectionID())
	return nil
}

// CatchUp sends the caller, in order, every entry of the Log after
// position that it may see (its groups, its filter), then leaves it to live
// delivery, with nothing missed or sent twice in between, and answers the
// last position covered; a position older than the Log retains gets the
// Log's Reload message instead (see WithLog, Server.Publish).
func (h *leadUpdatesHub) CatchUp(position int64) (CatchUpResult, error) {
	return h.srv.catchUp(h.Context(), h.ConnectionID(), position)
}

// hubError is an error whose text the client may see, like ASP.NET Core's
// HubException. The engine encodes a method's error result as MessagePack;
// hubError encodes as its text, which the dispatcher turns into the completion's
// error. Any other error reaches the client as a generic message.
type hubError string

func (e hubError) Error() string { return string(e) }

func (e hubError) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeString(string(e)) }

var _ msgpack.CustomEncoder = hubError("")
