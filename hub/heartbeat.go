package hub

import (
	"time"
)

// beat pings connections that have been quiet and closes those whose client
// has been silent too long, once a second.
func (s *Server) beat() {
	defer s.heartbeat.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var cs []*conn
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			var stale []*conn
			cs, stale = s.reg.scan(cs[:0], now, s.cfg.negotiateTTL)
			for _, c := range stale {
				c.finish()
			}
			for _, c := range cs {
				s.check(c, now)
			}
			clear(cs)
		}
	}
}

func (s *Server) check(c *conn, now time.Time) {
	if c.ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	closing, since := c.closing, c.closingSince
	detachedAt, stateful := c.detachedAt, c.rb != nil
	if !c.gateUntil.IsZero() && now.After(c.gateUntil) {
		c.ungate() // the client said nothing after its handshake
	}
	c.mu.Unlock()
	if closing {
		// A Close nobody takes (a long polling client that stopped
		// polling, a stuck stream) must not keep the connection.
		if now.Sub(since) > s.cfg.writeTimeout {
			c.abort(reasonTimeout)
		}
		return
	}
	if !detachedAt.IsZero() {
		// A stateful connection without its WebSocket: nothing to ping,
		// no client to time out; it waits for a re-attach, so long.
		if now.Sub(detachedAt) > s.cfg.reattachWindow {
			s.logf(c, "no re-attach within the window", nil)
			c.abort(reasonDetached)
		}
		return
	}
	p := c.protocol()
	if p == nil || !c.ready.Load() {
		if now.Sub(c.created) > s.cfg.handshakeTimeout+s.cfg.negotiateTTL {
			c.closeWith(reasonHandshake, "", false)
		}
		return
	}
	if stateful {
		c.sendAck(p)
	}
	if c.transport == LongPolling {
		// The client does not ping over long polling; a waiting poll is its
		// sign of life, and a poll answers at once when anything is queued.
		if c.polling.Load() {
			c.lastRecv.Store(now.UnixNano())
		}
	} else if now.Sub(time.Unix(0, c.lastWrite.Load())) >= s.cfg.keepAlive {
		c.lastWrite.Store(now.UnixNano())
		c.push(p.Ping(), frameControl)
	}
	if now.Sub(time.Unix(0, c.lastRecv.Load())) > s.cfg.clientTimeout {
		if c.transport == LongPolling {
			c.abort(reasonTimeout) // it stopped polling: nobody would take a Close
			return
		}
		c.closeWith(reasonTimeout, "Server timeout elapsed without receiving a message from the client.", true)
	}
}
