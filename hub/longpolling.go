package hub

import (
	"net/http"
	"time"
)

// servePoll answers a long poll: 200 with whatever is queued, 200 empty when
// nothing came within the poll timeout, 204 once the connection has ended.
// The first poll returns at once and starts the connection.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request) {
	if !s.enabled(LongPolling) {
		http.Error(w, "The LongPolling transport is disabled.", http.StatusNotFound)
		return
	}
	c, ok := s.lookup(w, r)
	if !ok {
		return
	}
	attached, transport := s.reg.binding(c)
	if !attached {
		if !s.attach(w, c, LongPolling) {
			return
		}
		s.spawn(func() { s.serve(c) })
		w.WriteHeader(http.StatusOK)
		return
	}
	if transport != LongPolling {
		http.Error(w, "This connection does not use long polling.", http.StatusBadRequest)
		return
	}
	if c.ctx.Err() != nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.poll(w, r, c)
}

// poll waits, at most the poll timeout, for something to answer the poll
// with. A new poll replaces a waiting one, which returns empty.
func (s *Server) poll(w http.ResponseWriter, r *http.Request, c *conn) {
	c.lastRecv.Store(time.Now().UnixNano())
	mine := make(chan struct{})
	c.mu.Lock()
	if c.poll != nil {
		close(c.poll)
	}
	c.poll = mine
	c.mu.Unlock()
	c.polling.Store(true)
	defer func() {
		c.mu.Lock()
		if c.poll == mine {
			c.poll = nil
			c.polling.Store(false)
		}
		c.mu.Unlock()
		c.lastRecv.Store(time.Now().UnixNano())
	}()

	timer := time.NewTimer(s.cfg.pollTimeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 || c.closing {
			batch := c.take()
			done := c.closing && len(c.queue) == 0
			c.mu.Unlock()
			s.answerPoll(w, c, batch, done)
			return
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.closed:
		case <-mine:
			w.WriteHeader(http.StatusOK)
			return
		case <-timer.C:
			w.WriteHeader(http.StatusOK)
			return
		case <-r.Context().Done():
			return
		case <-c.ctx.Done():
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}

func (s *Server) answerPoll(w http.ResponseWriter, c *conn, batch [][]byte, done bool) {
	if len(batch) == 0 {
		w.WriteHeader(http.StatusNoContent)
	} else {
		ct := "text/plain; charset=utf-8"
		if p := c.protocol(); p != nil && p.Binary() {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout))
		w.WriteHeader(http.StatusOK)
		for _, f := range batch {
			_, _ = w.Write(f)
		}
		c.lastWrite.Store(time.Now().UnixNano())
	}
	c.mu.Lock()
	c.recycle(batch)
	if done {
		c.markDrained()
	}
	c.mu.Unlock()
	if done {
		c.finish()
	}
}

// serveDelete ends a long polling connection, as the client's stop() does.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	c, ok := s.lookup(w, r)
	if !ok {
		return
	}
	_, transport := s.reg.binding(c)
	if transport != LongPolling {
		http.Error(w, "Cannot terminate this connection using the DELETE endpoint.", http.StatusBadRequest)
		return
	}
	if c.ctx.Err() != nil {
		// Ended already (a second DELETE, say): as ASP.NET Core, 404.
		http.Error(w, "No Connection with that ID", http.StatusNotFound)
		return
	}
	c.abort(reasonClient)
	w.WriteHeader(http.StatusAccepted)
}
