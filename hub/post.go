package hub

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/leadupdates/leadupdates/hub/internal/protocol"
)

// inboxSize is how many parsed messages from POSTs may wait for the engine
// before a POST waits too.
const inboxSize = 16

// servePost takes what a Server-Sent Events or Long Polling client sends. It
// frames the body into hub messages itself, so that a message over the size
// limit is answered here, with 413, and closes the connection with a clear
// Close message; nothing is left half-read for a later POST to trip on.
func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	c, ok := s.lookup(w, r)
	if !ok {
		return
	}
	attached, transport := s.reg.binding(c)
	switch {
	case !attached:
		http.Error(w, "The connection has no transport yet.", http.StatusBadRequest)
		return
	case transport == WebSockets:
		http.Error(w, "POST requests are not allowed for WebSocket connections.", http.StatusMethodNotAllowed)
		return
	case c.ctx.Err() != nil:
		http.Error(w, "No Connection with that ID", http.StatusNotFound)
		return
	}
	if !c.postMu.TryLock() {
		http.Error(w, "Another POST is in progress for this connection.", http.StatusConflict)
		return
	}
	defer c.postMu.Unlock()
	c.lastRecv.Store(time.Now().UnixNano())

	limit := s.cfg.maxMessageSize
	br := bufio.NewReader(r.Body)
	for {
		var (
			rec []byte
			err error
		)
		if c.postProto == nil {
			rec, err = protocol.ReadTextRecord(br, limit)
			if err == nil {
				c.postProto = postFraming(rec)
			}
		} else {
			rec, err = c.postProto.ReadRecord(br, limit)
		}
		switch {
		case errors.Is(err, io.EOF):
			w.WriteHeader(http.StatusOK)
			return
		case errors.Is(err, protocol.ErrTooLarge):
			s.logf(c, "message too large", err)
			c.closeWith(reasonProtocol, protocol.TooLarge(limit), false)
			http.Error(w, protocol.TooLarge(limit)+" The connection is closed.", http.StatusRequestEntityTooLarge)
			return
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, protocol.ErrMalformed):
			s.logf(c, "invalid message", err)
			c.closeWith(reasonProtocol, "Invalid message received: incomplete or badly framed message.", false)
			http.Error(w, "Incomplete or badly framed message; the connection is closed.", http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, "Could not read the request body.", http.StatusBadRequest)
			return
		}
		select {
		case c.inbox <- rec:
		case <-c.closed:
			http.Error(w, "The connection is closed.", http.StatusNotFound)
			return
		}
	}
}

// postFraming picks the framing of what follows a handshake in POST
// bodies: the protocol it names, else JSON. The connection's dispatcher
// answers the handshake itself, and ends the connection if it is invalid.
func postFraming(handshake []byte) protocol.Protocol {
	if hs, _ := protocol.ParseHandshake(handshake); hs.Protocol != nil {
		return hs.Protocol
	}
	return protocol.JSON
}
