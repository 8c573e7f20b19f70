package hub

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

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
		if c := s.reg.byToken(r.URL.Query().Get("id")); s.cfg.sessions != nil && (c == nil || c.ctx.Err() != nil) {
			s.serveHandoff(w, r) // another instance's connection, maybe
			return
		}
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
		if c = s.register(w, r, id, id, p, false); c == nil {
			return
		}
	}
	resume, ok := s.bind(w, c, WebSockets)
	if !ok || resume && s.cfg.sessions != nil && !s.reclaim(w, r, c) {
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  s.origins, // same-origin always passes
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.logf(c, "websocket upgrade failed", err)
		if resume {
			return // the connection still waits for its client
		}
		c.abort(reasonClient)
		s.workers.Done() // nothing to spawn
		return
	}
	// Hub messages are limited one by one as they are parsed, not per
	// WebSocket message: clients batch several messages into one.
	ws.SetReadLimit(-1)
	l := c.newLink(ws)
	if resume {
		// A stateful connection's client is back: the connection's
		// goroutines carry on with this WebSocket.
		c.resume(l)
		return
	}
	c.mu.Lock()
	c.link = l
	c.mu.Unlock()
	c.readFrom(l)

	// Return from the handler: the hijacked connection needs none of it, and
	// the request and the handler's grown stack would otherwise stay for the
	// connection's life.
	s.spawn(func() { s.serveWebSocketConn(c) })
}

// serveWebSocketConn serves an attached WebSocket connection until it
// ends, then closes its WebSocket.
func (s *Server) serveWebSocketConn(c *conn) {
	s.serve(c)
	// Let the queue, ending with the Close message, drain; then close.
	t := time.NewTimer(s.cfg.writeTimeout)
	select {
	case <-c.drained:
	case <-t.C:
	}
	t.Stop()
	c.mu.Lock()
	l := c.link // closing: no re-attach replaces it any more
	c.mu.Unlock()
	if l != nil {
		_ = l.ws.Close(websocket.StatusNormalClosure, "")
	}
	c.finish()
	// Closing now, nothing starts another flush: wait for the last
	// one, and for the write timer if it fired.
	c.wsWriters.Wait()
}

// readBufferSize is the inbound buffer of a WebSocket connection, on top of
// the WebSocket library's own; hub messages bigger than it are assembled
// piecewise.
const readBufferSize = 512

// wsLink is one WebSocket of a connection: a stateful connection may have
// several, one after the other.
type wsLink struct {
	ws    *websocket.Conn
	timer *time.Timer // closes ws when a write takes longer than the write timeout
}

func (c *conn) newLink(ws *websocket.Conn) *wsLink {
	t := time.AfterFunc(time.Hour, func() {
		defer c.wsWriters.Done() // armed by writeWS
		_ = ws.CloseNow()
	})
	t.Stop()
	return &wsLink{ws: ws, timer: t}
}

// readFrom makes the reader read l; the reader itself calls it, but for
// the first WebSocket, before the reader starts.
func (c *conn) readFrom(l *wsLink) {
	c.brLink = l
	c.br = bufio.NewReaderSize(&wsStream{ws: l.ws, ctx: c.ctx}, readBufferSize)
}

// flushWS writes the queue to the WebSocket. It runs only while something is
// queued, so an idle connection has no writer goroutine.
func (c *conn) flushWS() {
	for {
		c.mu.Lock()
		l := c.link
		if !c.queued() || l == nil || c.holding() {
			c.flushing = false
			if c.closing && (!c.queued() || l == nil) {
				c.markDrained()
			}
			c.mu.Unlock()
			return
		}
		batch := c.take()
		c.mu.Unlock()
		err := c.writeWS(l, batch)
		c.mu.Lock()
		c.recycle(batch)
		c.mu.Unlock()
		if err != nil {
			c.srv.logf(c, "write failed", err)
			if c.lost(l, true, reasonError) {
				return
			}
		}
	}
}

// wsMessageSize is where a batch is split into another WebSocket message, so
// that a client starts parsing before a long backlog is written.
const wsMessageSize = 32 << 10

var wsBuffers = sync.Pool{New: func() any { b := make([]byte, 0, wsMessageSize); return &b }}

// writeWS writes a batch as few WebSocket messages, each one frame: every
// frame costs the WebSocket library a lock, a deadline and a write.
func (c *conn) writeWS(l *wsLink, batch [][]byte) error {
	typ := websocket.MessageText
	if p := c.protocol(); p != nil && p.Binary() {
		typ = websocket.MessageBinary
	}
	bp := wsBuffers.Get().(*[]byte)
	defer wsBuffers.Put(bp)
	c.wsWriters.Add(1) // done by the timer's function, or here if it never runs
	l.timer.Reset(c.srv.cfg.writeTimeout)
	defer func() {
		if l.timer.Stop() {
			c.wsWriters.Done()
		}
	}()
	for len(batch) > 0 {
		msg := batch[0]
		batch = batch[1:]
		if len(msg) < wsMessageSize {
			buf := append((*bp)[:0], msg...)
			for len(batch) > 0 && len(buf)+len(batch[0]) <= wsMessageSize {
				buf = append(buf, batch[0]...)
				batch = batch[1:]
			}
			*bp = buf
			msg = buf
		}
		if err := l.ws.Write(context.Background(), typ, msg); err != nil {
			return err
		}
	}
	c.lastWrite.Store(time.Now().UnixNano())
	return nil
}

// wsStream reads the WebSocket as one byte stream, message after message.
// Text messages must be UTF-8 (RFC 6455 §8.1): one that is not closes the
// WebSocket with 1007, as ASP.NET Core does.
type wsStream struct {
	ws   *websocket.Conn
	ctx  context.Context
	r    io.Reader
	text bool
	tail []byte // the start of a character cut off at the end of the last read
}

// errInvalidUTF8 ends a connection whose client sent a text message that
// is not UTF-8.
var errInvalidUTF8 = errors.New("hub: text message is not valid UTF-8")

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			typ, r, err := s.ws.Reader(s.ctx)
			if err != nil {
				return 0, err
			}
			s.r, s.text, s.tail = r, typ == websocket.MessageText, s.tail[:0]
		}
		n, err := s.r.Read(p)
		eom := errors.Is(err, io.EOF)
		if s.text && !s.valid(p[:n], eom) {
			_ = s.ws.Close(websocket.StatusInvalidFramePayloadData, "Invalid UTF-8 in a text message.")
			return 0, errInvalidUTF8
		}
		if eom {
			s.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// valid checks the next bytes of a text message, carrying a character that
// spans two reads over to the next; eom: the message ends with b.
func (s *wsStream) valid(b []byte, eom bool) bool {
	if len(s.tail) > 0 {
		// Complete the cut-off character first.
		for len(b) > 0 && len(s.tail) < utf8.UTFMax && !utf8.FullRune(s.tail) {
			s.tail, b = append(s.tail, b[0]), b[1:]
		}
		if !utf8.FullRune(s.tail) {
			return !eom
		}
		if r, size := utf8.DecodeRune(s.tail); r == utf8.RuneError && size <= 1 {
			return false
		}
		s.tail = s.tail[:0]
	}
	// A character cut off at the end waits for the next read.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		return false
	}
	s.tail = append(s.tail, b[cut:]...)
	return !eom || len(s.tail) == 0
}
