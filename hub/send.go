package hub

import (
	"github.com/go-kit/log/level"
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

// GroupsWhere returns the audience of several groups narrowed, connection by
// connection, to those whose user keep accepts; keep nil accepts everyone.
// This is per-user filtering (a salesperson sees only their own leads): keep
// is asked at delivery, once per connection. It runs under the Server's read
// lock, so it must be fast and must not call the Server.
func (s *Server) GroupsWhere(keep func(userID string, roles []string) bool, names ...string) signalr.ClientProxy {
	return audience{s: s, kind: toGroups, names: names, keep: keep}
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
	s     *Server
	kind  int
	names []string
	keep  func(userID string, roles []string) bool
}

// Send queues an invocation of target for every connection of the audience,
// in the order Send is called, and returns without waiting for any client.
// The message is encoded once per protocol, not once per connection.
func (a audience) Send(target string, args ...any) {
	s := a.s
	m := outMessage{target: target, args: args, keep: a.keep}
	s.mu.RLock()
	switch a.kind {
	case toAll:
		for _, c := range s.live {
			m.deliver(s, c)
		}
	case toClient:
		if c := s.live[a.names[0]]; c != nil {
			m.deliver(s, c)
		}
	case toUser:
		for c := range s.users[a.names[0]] {
			m.deliver(s, c)
		}
	case toGroups:
		if len(a.names) == 1 {
			for c := range s.groups[a.names[0]] {
				m.deliver(s, c)
			}
			break
		}
		seen := map[*conn]struct{}{}
		for _, g := range a.names {
			for c := range s.groups[g] {
				if _, dup := seen[c]; !dup {
					seen[c] = struct{}{}
					m.deliver(s, c)
				}
			}
		}
	}
	s.mu.RUnlock()
	if m.failed != nil {
		level.Error(s.cfg.logger).Log("msg", "cannot encode message", "target", target, "err", m.failed)
	}
}

// outMessage is one invocation on its way to many connections, encoded at
// most once per protocol.
type outMessage struct {
	target  string
	args    []any
	keep    func(userID string, roles []string) bool
	json    []byte
	msgpack []byte
	failed  error
}

func (m *outMessage) deliver(s *Server, c *conn) {
	if m.keep != nil && !m.keep(c.principal.ID, c.principal.Roles) {
		return
	}
	p := c.protocol()
	var f *[]byte
	if p.binary() {
		f = &m.msgpack
	} else {
		f = &m.json
	}
	if *f == nil {
		b, err := p.invocation(m.target, m.args)
		if err != nil {
			m.failed = err
			s.tel.dropped.WithLabelValues("encode").Inc()
			return
		}
		*f = b
	}
	c.push(*f, true)
}
