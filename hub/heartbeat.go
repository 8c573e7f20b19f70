package hub

import (
	"time"

	"github.com/go-kit/log/level"
)

// beat pings connections that have been quiet and closes those whose client
// has been silent too long, once a second.
func (s *Server) beat() {
	defer s.heartbeat.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var (
		cs           []*conn
		revalidated  = time.Now()
		revalidating bool
		roundDone    = make(chan struct{}, 1)
	)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-roundDone:
			revalidating = false
		case now := <-t.C:
			var stale []*conn
			cs, stale = s.reg.scan(cs[:0], now, s.cfg.negotiateTTL)
			for _, c := range stale {
				c.finish()
			}
			for _, c := range cs {
				s.check(c, now)
			}
			if s.cfg.revalidate > 0 && !revalidating && now.Sub(revalidated) >= s.cfg.revalidate {
				revalidated, revalidating = now, true
				round := append([]*conn(nil), cs...)
				s.heartbeat.Go(func() {
					s.revalidate(round)
					roundDone <- struct{}{}
				})
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
	if exp := c.principal.Expires; s.cfg.closeOnExpiry && !exp.IsZero() && now.After(exp) {
		// Its client reconnects with a fresh token. A stateful connection
		// ends too (closing, it cannot be re-attached); one waiting for
		// its WebSocket has nobody to tell.
		s.logf(c, "credential expired", nil)
		if !detachedAt.IsZero() {
			c.abort(reasonExpired)
			return
		}
		c.closeWith(reasonExpired, "The access token expired; reconnect with a fresh one.", true)
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
		if s.saver != nil {
			c.refreshSession(now)
		}
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

// revalidate asks the Revalidator about each connection's principal, once
// per principal, and closes the connections of those it refuses.
func (s *Server) revalidate(cs []*conn) {
	rv := s.cfg.auth.(Revalidator)
	verdict := map[*Principal]error{}
	for _, c := range cs {
		if s.ctx.Err() != nil {
			return
		}
		if c.ctx.Err() != nil {
			continue
		}
		err, seen := verdict[c.principal]
		if !seen {
			err = rv.Revalidate(s.ctx, c.principal)
			verdict[c.principal] = err
		}
		if err != nil {
			level.Info(s.cfg.logger).Log("msg", "principal no longer valid", "connection_id", c.id, "user", c.principal.ID, "err", err)
			c.closeWith(reasonRevoked, "The credential is no longer valid; reconnect.", true)
		}
	}
}
