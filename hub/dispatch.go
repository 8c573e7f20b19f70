package hub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub/internal/protocol"
)

// The dispatcher, each connection's protocol state machine between its
// client and the engine: what the client sends is parsed, limited and
// validated here (handshake first, then messages), and only well-formed
// invocations reach the engine, one at a time; what the engine answers is
// translated back into the client's protocol.

// errEnded is what Read returns once the connection is over. Never io.EOF:
// the engine's readers treat EOF as "no data yet" and would call Read again
// forever.
var errEnded = errors.New("hub: connection ended")

// Read gives the engine its next frame: the handshake, then one validated
// invocation at a time. It never returns more than one frame per call.
func (c *conn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		f, err := c.next()
		if err != nil {
			return 0, fmt.Errorf("%w: %v", errEnded, err) // %v: keep io.EOF out of the chain
		}
		c.pending = f
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *conn) next() ([]byte, error) {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		// Nothing more for the engine, which reads on after an error.
		return nil, errEnded
	}
	if c.synthetic {
		c.synthetic = false
		return engineHandshake, nil
	}
	p := c.protocol()
	if p == nil {
		return c.handshake()
	}
	rec, err := c.record(p)
	if err != nil {
		return nil, c.readFailed(err)
	}
	c.lastRecv.Store(time.Now().UnixNano())
	if c.rb != nil && !c.heard {
		c.heard = true
		c.mu.Lock()
		c.ungate()
		c.mu.Unlock()
	}
	m, err := p.Decode(rec)
	if err != nil {
		c.srv.logf(c, "invalid message", err)
		c.closeWith(reasonProtocol, "Invalid message received: "+strings.TrimPrefix(err.Error(), protocol.ErrMalformed.Error()+": ")+".", false)
		return nil, err
	}
	if c.rb != nil {
		dup, err := c.received(m)
		if err != nil {
			c.srv.logf(c, "invalid sequence", err)
			c.closeWith(reasonProtocol, "Sequence ID greater than amount of messages we've received.", false)
			return nil, err
		}
		if dup {
			return nil, nil // resent after a re-attach; handled the first time
		}
	}
	switch m.Type {
	case protocol.TypeInvocation, protocol.TypeStreamInvocation:
		// One invocation at a time, as ASP.NET Core does by default:
		// completions arrive in call order, and what a hub method sends
		// precedes its completion. Pings, acks and a Close are read
		// meanwhile, so that a long call (a CatchUp) neither times the
		// client out nor stalls stateful reconnect's acknowledgements.
		if err := c.awaitCall(); err != nil {
			return nil, err
		}
	}
	switch m.Type {
	case protocol.TypeInvocation:
		return c.invoke(m)
	case protocol.TypeStreamInvocation:
		c.reject(m, fmt.Sprintf("Failed to invoke '%s' due to an error on the server. HubException: Streaming is not supported.", m.Target))
	case protocol.TypeClose:
		c.closeWith(reasonClient, "", false)
		return nil, io.EOF
	}
	// Pings only prove the client is alive. Acks and sequences belong to
	// stateful reconnect (received), ignored on other connections; stream items,
	// completions and cancels have nothing to match on this hub; unknown
	// types are ignored, as the JavaScript client ignores them.
	return nil, nil
}

// awaitCall waits for the invocation the engine is running, if any.
func (c *conn) awaitCall() error {
	c.mu.Lock()
	inflight := c.call
	c.mu.Unlock()
	if inflight == nil {
		return nil
	}
	select {
	case <-inflight.done:
		return nil
	case <-c.engineCtx.Done():
		return c.engineCtx.Err()
	}
}

// record returns the client's next message: the handshake when p is nil.
func (c *conn) record(p protocol.Protocol) ([]byte, error) {
	if c.inbox != nil {
		select {
		case rec := <-c.inbox:
			return rec, nil
		case <-c.closed:
			return nil, errEnded
		}
	}
	for {
		var (
			rec []byte
			err error
		)
		if p == nil {
			rec, err = protocol.ReadTextRecord(c.br, c.srv.cfg.maxMessageSize)
		} else {
			rec, err = p.ReadRecord(c.br, c.srv.cfg.maxMessageSize)
		}
		if err == nil || c.rb == nil || !transportLost(err) || c.ctx.Err() != nil {
			return rec, err
		}
		// A stateful connection outlives its WebSocket: read on from the
		// one its client re-attaches, from the start of a message. What
		// the client had sent and was cut off, it resends.
		if !c.awaitLink() {
			return nil, errEnded
		}
	}
}

// transportLost reports whether a read failed because the WebSocket
// failed, as a network failure makes it, rather than because of what the
// client sent or a close it asked for (a close frame).
func transportLost(err error) bool {
	return !errors.Is(err, protocol.ErrTooLarge) && !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, errInvalidUTF8) &&
		websocket.CloseStatus(err) == -1
}

func (c *conn) readFailed(err error) error {
	switch {
	case errors.Is(err, errEnded):
		// Closing already: let the Close message go out.
	case errors.Is(err, protocol.ErrTooLarge):
		c.srv.logf(c, "message too large", err)
		c.closeWith(reasonProtocol, protocol.TooLarge(c.srv.cfg.maxMessageSize), false)
	case errors.Is(err, protocol.ErrMalformed):
		c.srv.logf(c, "invalid message", err)
		c.closeWith(reasonProtocol, "Invalid message received: bad framing.", false)
	case errors.Is(err, errInvalidUTF8):
		c.srv.logf(c, "invalid message", err) // the WebSocket is closed with 1007
		c.abort(reasonProtocol)
	default:
		c.abort(reasonClient)
	}
	return err
}

func (c *conn) handshake() ([]byte, error) {
	rec, err := c.record(nil)
	if err != nil {
		if errors.Is(err, protocol.ErrTooLarge) {
			return nil, c.handshakeFailed("Handshake request exceeds the maximum message size.")
		}
		return nil, c.readFailed(err)
	}
	hs, err := protocol.ParseHandshake(rec)
	p := hs.Protocol
	switch {
	case err != nil:
		return nil, c.handshakeFailed(err.Error())
	case c.transport == ServerSentEvents && p.Binary():
		return nil, c.handshakeFailed("Cannot use the 'messagepack' protocol over Server-Sent Events.")
	}
	c.lastRecv.Store(time.Now().UnixNano())
	c.proto.Store(&p)
	if hs.Version >= 2 && c.stateful && c.transport == WebSockets {
		c.takeUp()
	}
	return engineHandshake, nil
}

func (c *conn) handshakeFailed(msg string) error {
	c.push(protocol.HandshakeResponse(msg), frameControl)
	c.closeWith(reasonHandshake, "", false)
	return errors.New(msg)
}

// invoke validates an invocation and returns the frame that hands it to the
// engine, or nil after answering the client itself.
func (c *conn) invoke(m protocol.Message) ([]byte, error) {
	if c.calls != nil && !c.calls.Allow() {
		// The connection stays: a caller with an id learns why; a send()
		// is dropped, and counted.
		c.srv.tel.limited.WithLabelValues("invocation").Inc()
		c.reject(m, fmt.Sprintf("Failed to invoke '%s' due to an error on the server. HubException: Too many calls; slow down and try again.", m.Target))
		return nil, nil
	}
	meth, ok := c.srv.methods[strings.ToLower(m.Target)]
	if !ok {
		c.reject(m, fmt.Sprintf("Failed to invoke '%s' due to an error on the server. HubException: Method does not exist.", m.Target))
		return nil, nil
	}
	if len(m.Args) != len(meth.params) {
		c.reject(m, fmt.Sprintf("Failed to invoke '%s' due to an error on the server. InvalidDataException: Invocation provides %d argument(s) but target expects %d.", m.Target, len(m.Args), len(meth.params)))
		return nil, nil
	}
	p := c.protocol()
	args := make([]any, len(meth.params))
	for i, t := range meth.params {
		v := reflect.New(t)
		if err := p.DecodeArg(m.Args[i], v.Interface()); err != nil {
			c.reject(m, fmt.Sprintf("Failed to invoke '%s' due to an error on the server. InvalidDataException: Error binding arguments. Argument %d must be %s.", m.Target, i+1, kindName(t)))
			return nil, nil
		}
		args[i] = v.Elem().Interface()
	}
	c.nextID++
	id := strconv.FormatUint(c.nextID, 10)
	frame, err := engineInvocation(id, meth.name, args)
	if err != nil {
		c.reject(m, fmt.Sprintf("Failed to invoke '%s' due to an error on the server. InvalidDataException: Arguments are too large.", m.Target))
		return nil, nil
	}
	c.mu.Lock()
	c.call = &call{engineID: id, clientID: m.InvocationID, hasID: m.HasID, target: meth.name, errorOnly: meth.errorOnly, withError: meth.withError, done: make(chan struct{})}
	c.mu.Unlock()
	return frame, nil
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return "a " + t.String()
}

// reject answers an invocation with an error completion; a send() without an
// invocation id gets nothing back, and the connection stays open either way.
func (c *conn) reject(m protocol.Message, text string) {
	c.srv.logf(c, "invocation rejected", errors.New(text))
	if !m.HasID {
		return
	}
	if f, err := c.protocol().Completion(m.InvocationID, nil, false, text); err == nil {
		c.push(f, frameReply)
	}
}

// Write receives what the engine writes: its handshake answer, completions,
// pings and a close. The engine writes from several goroutines.
func (c *conn) Write(p []byte) (int, error) {
	if !c.engineReady.Load() {
		// "{}\x1e": the engine accepts only handshakes the dispatcher forwarded.
		// It goes out once the connection is registered (accept), so that
		// when the client's start() resolves, sends reach it.
		c.mu.Lock()
		c.reply = bytes.Clone(p)
		c.mu.Unlock()
		c.engineReady.Store(true)
		return len(p), nil
	}
	m, err := decodeEngine(p)
	if err != nil {
		c.srv.logf(c, "engine frame", err)
		return len(p), nil
	}
	switch m.Type {
	case protocol.TypeCompletion:
		c.complete(m)
	case protocol.TypeClose:
		text := ""
		if m.Error != "" {
			c.srv.logf(c, "engine closed connection", errors.New(m.Error))
			text = "Connection closed with an error."
		}
		c.closeWith(reasonServer, text, m.AllowReconnect)
	}
	// The engine's pings are dropped: the heartbeat pings only connections
	// that have been quiet, counting every frame the hub writes.
	return len(p), nil
}

func (c *conn) complete(m engineMessage) {
	c.mu.Lock()
	cl := c.call
	if cl == nil || cl.engineID != m.InvocationID || cl.completing {
		c.mu.Unlock()
		return // e.g. the engine's second, empty completion after a panic
	}
	cl.completing = true
	c.mu.Unlock()
	// The call ends only once its Completion is queued: the reader hands
	// the engine the next invocation after that, so completions are
	// queued in call order.
	defer func() {
		c.mu.Lock()
		c.call = nil
		c.mu.Unlock()
		close(cl.done)
	}()

	var (
		result    any
		hasResult bool
		errText   string
	)
	switch m.ResultKind {
	case 1:
		// Binding errors, panics: the engine's text may hold internals.
		c.srv.logf(c, "hub method failed", fmt.Errorf("%s: %s", cl.target, m.Error))
		errText = fmt.Sprintf("An unexpected error occurred invoking '%s' on the server.", cl.target)
	case 3:
		if cl.errorOnly {
			// The method returned a non-nil error; a hubError encodes as its
			// message, anything else stays private.
			errText = fmt.Sprintf("An unexpected error occurred invoking '%s' on the server.", cl.target)
			if v, err := decodeResult(m.Result); err == nil {
				if s, ok := v.(string); ok {
					errText += " HubException: " + s
				}
			}
			break
		}
		v, err := decodeResult(m.Result)
		if err != nil {
			errText = fmt.Sprintf("An unexpected error occurred invoking '%s' on the server.", cl.target)
			break
		}
		if cl.withError {
			// The engine answers a (result, error) method with both: the
			// error, if not nil, as an errorOnly method's.
			pair, _ := v.([]any)
			if len(pair) != 2 || pair[1] != nil {
				errText = fmt.Sprintf("An unexpected error occurred invoking '%s' on the server.", cl.target)
				if len(pair) == 2 {
					if s, ok := pair[1].(string); ok {
						errText += " HubException: " + s
					}
				}
				break
			}
			v = pair[0]
		}
		result, hasResult = v, true
	}
	if !cl.hasID {
		return
	}
	f, err := c.protocol().Completion(cl.clientID, result, hasResult, errText)
	if err != nil {
		f, _ = c.protocol().Completion(cl.clientID, nil, false, fmt.Sprintf("An unexpected error occurred invoking '%s' on the server.", cl.target))
	}
	c.push(f, frameReply)
}
