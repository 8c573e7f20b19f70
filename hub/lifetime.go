package hub

import (
	"fmt"
	"strings"

	"github.com/go-kit/log/level"
	"github.com/philippseith/signalr"
)

// lifetime is the engine's HubLifetimeManager. It keeps no state of its own:
// connections, groups and users live in the Server, and every send the engine
// or a hub method makes goes through the Server's ordered delivery instead of
// the engine's goroutine per message.
type lifetime struct{ s *Server }

var _ signalr.HubLifetimeManager = lifetime{}

func (l lifetime) OnConnected(hc signalr.HubConnection) {
	s := l.s
	s.mu.Lock()
	c := s.ids[hc.ConnectionID()]
	if c == nil || c.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.live[c.id] = c
	c.opened = true
	s.join(c, DefaultGroup)
	c.accept()
	if uid := c.principal.ID; uid != "" {
		set := s.users[uid]
		if set == nil {
			set = map[*conn]struct{}{}
			s.users[uid] = set
		}
		set[c] = struct{}{}
	}
	s.mu.Unlock()
	s.tel.connections.WithLabelValues(string(c.transport)).Inc()
	s.tel.opened.WithLabelValues(string(c.transport)).Inc()
	level.Debug(s.cfg.logger).Log("msg", "connected", "connection_id", c.id, "transport", c.transport, "user", c.principal.ID)
	if f := s.cfg.onConnected; f != nil {
		s.hook(c, "OnConnected", func() { f(c.engineCtx, c.info()) })
	}
}

func (l lifetime) OnDisconnected(hc signalr.HubConnection) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.ids[hc.ConnectionID()]; c != nil {
		s.leaveAll(c)
	}
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

func (c *conn) info() ConnInfo {
	i := ConnInfo{ConnectionID: c.id, Transport: c.transport, Principal: c.principal}
	if p := c.protocol(); p != nil {
		i.Protocol = p.Name()
	}
	return i
}

func (l lifetime) InvokeAll(target string, args []any) { l.s.All().Send(target, args...) }
func (l lifetime) InvokeClient(id, target string, args []any) {
	l.s.Client(id).Send(target, args...)
}
func (l lifetime) InvokeGroup(group, target string, args []any) {
	l.s.Group(group).Send(target, args...)
}
func (l lifetime) AddToGroup(group, id string)      { l.s.AddToGroup(group, id) }
func (l lifetime) RemoveFromGroup(group, id string) { l.s.RemoveFromGroup(group, id) }

// AddToGroup adds a connection to a group. Unknown connections are ignored.
func (s *Server) AddToGroup(group, connectionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.live[connectionID]; c != nil {
		s.join(c, group)
	}
}

// RemoveFromGroup removes a connection from a group; a group left empty is
// freed.
func (s *Server) RemoveFromGroup(group, connectionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.live[connectionID]; c != nil {
		s.leave(c, group)
	}
}

// InGroup reports whether a connection is in a group.
func (s *Server) InGroup(group, connectionID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.live[connectionID]
	_, ok := s.groups[group][c]
	return c != nil && ok
}

// GroupCount returns the number of non-empty groups.
func (s *Server) GroupCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.groups)
}

// join, leave and leaveAll run with s.mu held.
func (s *Server) join(c *conn, group string) {
	g := s.groups[group]
	if g == nil {
		g = map[*conn]struct{}{}
		s.groups[group] = g
	}
	g[c] = struct{}{}
	m := s.member[c]
	if m == nil {
		m = map[string]struct{}{}
		s.member[c] = m
	}
	m[group] = struct{}{}
}

func (s *Server) leave(c *conn, group string) {
	if g := s.groups[group]; g != nil {
		delete(g, c)
		if len(g) == 0 {
			delete(s.groups, group)
		}
	}
	if m := s.member[c]; m != nil {
		delete(m, group)
	}
}

func (s *Server) leaveAll(c *conn) {
	for g := range s.member[c] {
		s.leave(c, g)
	}
	delete(s.member, c)
	if s.live[c.id] == c {
		delete(s.live, c.id)
		s.tel.connections.WithLabelValues(string(c.transport)).Dec()
		s.tel.closed.WithLabelValues(string(c.transport), c.closeReason()).Inc()
	}
	if uid := c.principal.ID; uid != "" {
		if set := s.users[uid]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(s.users, uid)
			}
		}
	}
}

// leadGroups counts the Lead_ groups c is in; s.mu is held. Groups the
// application adds a connection to do not count against the cap.
func (s *Server) leadGroups(c *conn) int {
	n := 0
	for g := range s.member[c] {
		if strings.HasPrefix(g, "Lead_") {
			n++
		}
	}
	return n
}

func (c *conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == "" {
		return reasonServer
	}
	return c.reason
}
