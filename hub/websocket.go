package hub

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// serveWebSocket upgrades a transport request. Every check that can fail
// (token, id, conflict) answers with an HTTP status before the upgrade, so
// that the client can fall back to another transport.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !s.enabled(WebSockets) {
		http.Error(w, "The WebSockets transport is disabled.", http.StatusNotFound)
		return
	}
	var c *conn
	if r.URL.Query().Has("id") {
		var ok bool
		if c, ok = s.lookup(w, r); !ok {
			return
		}
	} else {
		// skipNegotiation: the client connects without negotiating.
		p, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		id := newID()
		c = newConn(s, id, id, p)
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			http.Error(w, "Server is shutting down.", http.StatusServiceUnavailable)
			return
		}
		s.tokens[id] = c
		s.mu.Unlock()
	}
	if !s.attach(w, c, WebSockets) {
		return
	}
	mode := websocket.CompressionDisabled
	if s.cfg.compression {
		mode = websocket.CompressionNoContextTakeover
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  s.origins, // same-origin always passes
		CompressionMode: mode,
	})
	if err != nil {
		s.logf(c, "websocket upgrade failed", err)
		c.abort(reasonClient)
		return
	}
	// Hub messages are limited one by one as they are parsed, not per
	// WebSocket message: clients batch several messages into one.
	ws.SetReadLimit(-1)
	c.mu.Lock()
	c.ws = ws
	c.mu.Unlock()
	c.br = bufio.NewReaderSize(&wsStream{ws: ws, ctx: c.ctx}, 2048)

	s.serve(c)

	// Let the queue, ending with the Close message, drain; then close.
	t := time.NewTimer(s.cfg.writeTimeout)
	select {
	case <-c.drained:
	case <-t.C:
	}
	t.Stop()
	_ = ws.Close(websocket.StatusNormalClosure, "")
	c.finish()
}

// wsStream reads the WebSocket as one byte stream, message after message.
type wsStream struct {
	ws  *websocket.Conn
	ctx context.Context
	r   io.Reader
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			_, r, err := s.ws.Reader(s.ctx)
			if err != nil {
				return 0, err
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if errors.Is(err, io.EOF) {
			s.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}
