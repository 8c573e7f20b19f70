package hub

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
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
	attached, transport := s.binding(c)
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
			rec, err = readTextRecord(br, limit)
			if err == nil {
				c.postProto = sniffProtocol(rec)
			}
		} else {
			rec, err = c.postProto.readRecord(br, limit)
		}
		switch {
		case errors.Is(err, io.EOF):
			w.WriteHeader(http.StatusOK)
			return
		case errors.Is(err, errTooLarge):
			s.logf(c, "message too large", err)
			c.closeWith(reasonProtocol, tooLargeText(limit), false)
			http.Error(w, tooLargeText(limit)+" The connection is closed.", http.StatusRequestEntityTooLarge)
			return
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errMalformed):
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

// sniffProtocol picks the framing of what follows a handshake. The engine's
// reader validates the handshake itself; an invalid one ends the connection.
func sniffProtocol(handshake []byte) protocol {
	var hs struct {
		Protocol string `json:"protocol"`
	}
	_ = json.Unmarshal(handshake, &hs)
	if p := protocolByName(hs.Protocol); p != nil {
		return p
	}
	return jsonProtocol{}
}

func tooLargeText(limit int) string {
	return fmt.Sprintf("The maximum message size of %dB was exceeded.", limit)
}
