package hub

// Test-only hooks for the black-box tests in package hub_test. Keep this
// minimal: each one exposes a state that a test must await and that no
// public API or wire behaviour reveals.

// PollWaiting reports whether a long poll is waiting on the connection whose
// transport requests carry ?id=token. A test that wants to end a connection
// "while a poll waits" awaits this instead of sleeping.
func (s *Server) PollWaiting(token string) bool {
	c := s.reg.byToken(token)
	return c != nil && c.polling.Load()
}

// PrincipalFrom returns the principal the context of hub methods and hooks
// carries.
var PrincipalFrom = principalFrom

// LeadUpdatesHub is the hub type whose method set is the wire API.
type LeadUpdatesHub = leadUpdatesHub

// GroupCount returns the number of non-empty groups.
func (s *Server) GroupCount() int { return s.reg.groupCount() }

// Detached reports whether the stateful connection with this id has lost
// its WebSocket and waits for its client to re-attach.
func (s *Server) Detached(connectionID string) bool {
	c := s.reg.liveConn(connectionID)
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.detached()
}

// CatchingUpConnection returns the id of a connection whose CatchUp is
// running, or "".
func (s *Server) CatchingUpConnection() string {
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	for id, c := range s.reg.live {
		c.pos.mu.Lock()
		catching := c.pos.catching
		c.pos.mu.Unlock()
		if catching {
			return id
		}
	}
	return ""
}

// InstanceID returns the id this Server saves as the owner of its
// sessions (WithSessionStore).
func (s *Server) InstanceID() string { return s.instance }
