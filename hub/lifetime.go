package hub

import (
	"fmt"

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
	c, ok := s.reg.open(hc.ConnectionID())
	if !ok {
		return
	}
	s.tel.connections.WithLabelValues(string(c.transport)).Inc()
	s.tel.opened.WithLabelValues(string(c.transport)).Inc()
	level.Debug(s.cfg.logger).Log("msg", "connected", "connection_id", c.id, "transport", c.transport, "user", c.principal.ID)
	if f := s.cfg.onConnected; f != nil {
		s.hook(c, "OnConnected", func() { f(c.engineCtx, c.info()) })
	}
}

func (l lifetime) OnDisconnected(hc signalr.HubConnection) {
	if c, live := l.s.reg.closeConn(hc.ConnectionID()); live {
		l.s.tel.connectionClosed(c)
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
func (s *Server) AddToGroup(group, connectionID string) { s.reg.addToGroup(group, connectionID) }

// RemoveFromGroup removes a connection from a group; a group left empty is
// freed.
func (s *Server) RemoveFromGroup(group, connectionID string) {
	s.reg.removeFromGroup(group, connectionID)
}

// InGroup reports whether a connection is in a group.
func (s *Server) InGroup(group, connectionID string) bool { return s.reg.inGroup(group, connectionID) }

// GroupCount returns the number of non-empty groups.
func (s *Server) GroupCount() int { return s.reg.groupCount() }

func (c *conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == "" {
		return reasonServer
	}
	return c.reason
}
