package hub

import (
	"io"
	"net/http"
	"time"
)

// serveSSE holds the Server-Sent Events stream of a connection open and
// writes its queue to it; the client sends with POSTs (servePost).
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request) {
	if !s.enabled(ServerSentEvents) {
		http.Error(w, "The ServerSentEvents transport is disabled.", http.StatusNotFound)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "Streaming is not supported by this server.", http.StatusInternalServerError)
		return
	}
	c, ok := s.lookup(w, r)
	if !ok || !s.attach(w, c, ServerSentEvents) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ":\r\n\r\n")
	flusher.Flush()
	// A client that stops reading must not hold a write forever.
	rc := http.NewResponseController(w)

	s.spawn(func() { s.serve(c) })
	defer c.finish()
	for {
		select {
		case <-c.wake:
		case <-c.drained: // closed with nothing left to write
		case <-r.Context().Done():
			c.abort(reasonClient)
			return
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		batch := c.take()
		c.mu.Unlock()
		if len(batch) > 0 {
			if err := s.writeEvent(w, rc, batch); err != nil {
				c.abort(reasonError)
				return
			}
			c.lastWrite.Store(time.Now().UnixNano())
		}
		c.mu.Lock()
		c.recycle(batch)
		if len(c.queue) > 0 {
			c.kick() // take left some for another event
		}
		done := c.closing && len(c.queue) == 0
		if done {
			c.markDrained()
		}
		c.mu.Unlock()
		if done {
			return
		}
	}
}

// writeEvent writes a batch as one event: the client splits it at the record
// separators. JSON never holds a raw newline.
func (s *Server) writeEvent(w http.ResponseWriter, rc *http.ResponseController, batch [][]byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout))
	if _, err := io.WriteString(w, "data: "); err != nil {
		return err
	}
	for _, f := range batch {
		if _, err := w.Write(f); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, "\n\n"); err != nil {
		return err
	}
	return rc.Flush()
}
