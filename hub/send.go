package hub

import (
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub/internal/protocol"
	"github.com/philippseith/signalr"
)

// The Server's audiences are signalr.ClientProxy values, so code written
// against the engine's HubClients works unchanged.
var _ signalr.ClientProxy = audience{}

// All returns the audience of every connected client.
func (s *Server) All() signalr.ClientProxy { return audience{s: s, kind: toAll} }

// Group returns the audience of one group's members.
func (s *Server) Group(name string) signalr.ClientProxy {
	return audience{s: s, kind: toGroups, names: []string{name}}
}

// Groups returns the audience of several groups: a connection in more than
// one of them receives each message once.
func (s *Server) Groups(names ...string) signalr.ClientProxy {
	return audience{s: s, kind: toGroups, names: names}
}

// GroupsFiltered returns the audience of several groups narrowed, connection
// by connection, by the filter registered under that name with [WithFilter],
// asked with arg (what the sender knows about the message, such as the owner
// of a lead): per-user filtering, e.g. a salesperson sees only their own
// leads. The filter travels as its name and arg, never as a function, so it
// crosses a [Backplane]: every instance evaluates it for its own
// connections. A filter name an instance does not know delivers to none of
// its connections (failing closed) and is logged.
func (s *Server) GroupsFiltered(filter, arg string, names ...string) signalr.ClientProxy {
	return audience{s: s, kind: toGroups, names: names, filter: filter, arg: arg, filtered: true}
}

// Client returns the audience of one connection.
func (s *Server) Client(connectionID string) signalr.ClientProxy {
	return audience{s: s, kind: toClient, names: []string{connectionID}}
}

// User returns the audience of every connection of one user (Principal.ID).
func (s *Server) User(userID string) signalr.ClientProxy {
	return audience{s: s, kind: toUser, names: []string{userID}}
}

const (
	toAll = iota
	toGroups
	toClient
	toUser
)

type audience struct {
	s        *Server
	kind     int
	names    []string
	filter   string // a WithFilter name, if filtered
	arg      string
	filtered bool
}

// Send queues an invocation of target for every connection of the audience,
// in the order Send is called, and returns without waiting for any client.
// The message is encoded once per protocol, not once per connection; with a
// [Backplane] it is also queued, encoded once, for the other instances.
func (a audience) Send(target string, args ...any) {
	s := a.s
	m := outMessage{target: target, args: args}
	if a.filtered {
		m.keep = s.filterFunc(a.filter, a.arg)
	}
	if s.relay == nil {
		s.deliverLocal(a.kind, a.names, &m)
	} else {
		s.relayed(a, &m)
	}
	if m.failed != nil {
		level.Error(s.cfg.logger).Log("msg", "cannot encode message", "target", target, "err", m.failed)
	}
}

// relayed delivers m to this instance's connections and queues it for the
// others, unless it is for one connection of this instance.
func (s *Server) relayed(a audience, m *outMessage) {
	if a.kind == toClient && s.reg.liveConn(a.names[0]) != nil {
		s.deliverLocal(a.kind, a.names, m)
		return
	}
	m.encode()
	if m.json == nil && m.msgpack == nil {
		s.tel.dropped.WithLabelValues("encode").Inc()
		return
	}
	s.deliverLocal(a.kind, a.names, m)
	s.relay.enqueue(a, m)
}

// deliverRecord delivers a send another instance published.
func (s *Server) deliverRecord(rec *record) {
	m := outMessage{json: rec.json, msgpack: rec.msgpack, encoded: true}
	if rec.filtered {
		m.keep = s.filterFunc(rec.filter, rec.arg)
	}
	s.deliverLocal(rec.kind, rec.names, &m)
}

// filterFunc returns the keep function of a named filter; an unknown name
// keeps nobody.
func (s *Server) filterFunc(name, arg string) func(*Principal) bool {
	f := s.cfg.filters[name]
	if f == nil {
		s.tel.dropped.WithLabelValues("filter").Inc()
		level.Error(s.cfg.logger).Log("msg", "unknown filter; message delivered to nobody", "filter", name)
		return func(*Principal) bool { return false }
	}
	return func(p *Principal) bool { return f(arg, p) }
}

// deliverLocal queues m for this instance's connections of an audience.
func (s *Server) deliverLocal(kind int, names []string, m *outMessage) {
	s.reg.each(kind, names, func(c *conn) { m.deliver(s, c) })
}

// outMessage is one invocation on its way to many connections, encoded at
// most once per protocol.
type outMessage struct {
	target  string
	args    []any
	keep    func(*Principal) bool
	json    []byte
	msgpack []byte
	encoded bool   // json and msgpack are final: nil means it cannot be encoded
	pos     uint64 // a positioned entry's (Publish); 0 otherwise
	failed  error
}

func (m *outMessage) deliver(s *Server, c *conn) {
	if m.keep != nil && !m.keep(c.principal) {
		return
	}
	p := c.protocol()
	var f *[]byte
	if p.Binary() {
		f = &m.msgpack
	} else {
		f = &m.json
	}
	if *f == nil {
		if m.encoded {
			s.tel.dropped.WithLabelValues("encode").Inc()
			return
		}
		b, err := p.Invocation(m.target, m.args)
		if err != nil {
			m.failed = err
			s.tel.dropped.WithLabelValues("encode").Inc()
			return
		}
		*f = b
	}
	c.pushAt(*f, m.pos)
}

// pushAt pushes a message that carries log position pos (0: none), which
// hand-off remembers until the client acknowledges it.
func (c *conn) pushAt(frame []byte, pos uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := c.pushLocked(frame, frameMessage)
	if ok && pos > 0 && c.ho != nil {
		c.marked(pos)
	}
	return ok
}

// encode encodes m for both protocols at once, for a message that leaves
// this instance.
func (m *outMessage) encode() {
	var err error
	if m.json, err = protocol.JSON.Invocation(m.target, m.args); err != nil {
		m.failed = err
	}
	if m.msgpack, err = protocol.MessagePack.Invocation(m.target, m.args); err != nil {
		m.failed = err
	}
	m.encoded = true
}
