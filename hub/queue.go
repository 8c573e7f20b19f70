package hub

import "github.com/go-kit/log/level"

// Each connection's outbound queue: every byte to the client goes through it,
// in order, and the transport's writer drains it. It is what lets a send
// return at once whatever the client's speed (the engine would start a
// goroutine per message per connection instead, and lose the order), and
// bounds what a slow client can hold (WithSendQueue).

// frameKind says what a queued frame is to the connection.
type frameKind uint8

const (
	// frameControl: the handshake answer, Ping, Close, Ack, Sequence;
	// never replayed.
	frameControl frameKind = iota
	// frameReply: a Completion; numbered and replayed with stateful
	// reconnect.
	frameReply
	// frameMessage: an invocation the application sent; numbered and
	// replayed, and counted as sent.
	frameMessage
)

// push queues a frame for the client, in order. It never blocks: when the
// queue is full the client is too slow, and it is closed with
// allowReconnect so that it comes back and reloads. A stateful connection
// is bounded by its replay buffer instead (pushStateful).
func (c *conn) push(frame []byte, k frameKind) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pushLocked(frame, k)
}

// pushLocked is push with c.mu held.
func (c *conn) pushLocked(frame []byte, k frameKind) bool {
	counted := k == frameMessage
	if c.closing {
		if counted {
			c.srv.tel.dropped.WithLabelValues("closing").Inc()
		}
		return false
	}
	if c.rb != nil {
		return c.pushStateful(frame, k)
	}
	if c.overflows(len(frame)) {
		c.srv.tel.dropped.WithLabelValues("overflow").Add(float64(len(c.queue) + 1))
		c.srv.tel.slowClosed.Inc()
		level.Warn(c.srv.cfg.logger).Log("msg", "slow consumer closed", "connection_id", c.id, "queued", len(c.queue))
		clear(c.queue)
		c.queue = c.queue[:0]
		c.lpBytes = 0
		c.startClosing(reasonSlow, "The client did not keep up with its messages.", true)
		return false
	}
	c.queue = append(c.queue, frame)
	if c.transport == LongPolling {
		c.lpBytes += len(frame)
	}
	if counted {
		c.srv.tel.sent.Inc()
	}
	c.kick()
	return true
}

// lpBytesPerMessage is what a Long Polling connection may hold per message
// of WithSendQueue, in bytes.
const lpBytesPerMessage = 4 << 10

// overflows reports whether a frame of n bytes would overflow the queue:
// WithSendQueue messages, but for Long Polling, whose client takes what is
// queued a poll at a time, and so holds a burst the other transports write
// out meanwhile, WithSendQueue times 4 KB (4 MB by default). c.mu is held.
func (c *conn) overflows(n int) bool {
	if c.transport == LongPolling {
		return c.lpBytes > 0 && c.lpBytes+n > c.srv.cfg.sendQueue*lpBytesPerMessage
	}
	return len(c.queue) >= c.srv.cfg.sendQueue
}

// accept queues the handshake answer, once the connection is registered
// and before anything sent to it; the registry is locked.
func (c *conn) accept() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.reply == nil {
		return
	}
	if c.ho == nil || !c.ho.resumed { // a resumed client had its answer
		c.queue = append(c.queue, c.reply)
	}
	c.reply = nil
	c.ready.Store(true)
	c.kick()
}

// kick starts delivery of what is queued; c.mu is held.
func (c *conn) kick() {
	if c.link != nil {
		if !c.flushing {
			c.flushing = true
			c.wsWriters.Go(c.flushWS)
		}
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take removes and returns everything queued; c.mu is held. The first
// frame, the handshake answer, is taken alone, so that every transport
// writes it in a message of its own: a client that processes the answer
// must not find other messages with it (the JavaScript client would not
// count them for stateful reconnect; philippseith/signalr's Go client
// drops them).
func (c *conn) take() [][]byte {
	if c.rb != nil && (c.greeted || len(c.queue) == 0) {
		return c.takeStateful()
	}
	if !c.greeted && len(c.queue) > 0 {
		c.greeted = true
		if len(c.queue) > 1 {
			b := [][]byte{c.queue[0]}
			c.lpBytes = max(0, c.lpBytes-len(b[0]))
			n := copy(c.queue, c.queue[1:])
			c.queue[n] = nil
			c.queue = c.queue[:n]
			return b
		}
	}
	b := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.lpBytes = 0
	c.madeRoom()
	return b
}

// takeStateful removes and returns what a stateful connection's writer
// has to send: Sequence first after a re-attach, then the counted frames
// it has not taken from the replay buffer, then the control frames (an
// Ack, a Ping, or the Close, which must come last). c.mu is held.
func (c *conn) takeStateful() [][]byte {
	rb := c.rb
	n := len(c.queue) + rb.n - rb.sent + 1
	b := c.spare[:0]
	if cap(b) < n {
		b = make([][]byte, 0, n)
	}
	c.spare = nil
	if rb.resend {
		rb.resend = false
		b = append(b, c.protocol().Sequence(rb.first))
		if rb.pad > 0 { // hand-off's padding precedes the frames held
			b = append(b, rb.padding())
		}
	}
	b = rb.takeUnsent(b)
	b = append(b, c.queue...)
	clear(c.queue)
	c.queue = c.queue[:0]
	c.madeRoom()
	return b
}

// queued reports whether the writer has anything to send; c.mu is held.
// A detached stateful connection has nothing to send until it is
// re-attached.
func (c *conn) queued() bool {
	return len(c.queue) > 0 || c.rb != nil && c.link != nil && c.rb.unsent()
}

// discard drops everything waiting to be written; c.mu is held. A stateful
// connection keeps its replay buffer (what a re-attach resends) but has
// nothing left to write on this WebSocket.
func (c *conn) discard() {
	clear(c.queue)
	c.queue = c.queue[:0]
	if rb := c.rb; rb != nil {
		rb.sent, rb.resend = rb.n, false
	}
}

// recycle keeps a written batch's storage for the next one, unless a burst
// made it large: an idle connection should not hold a burst's queue. c.mu
// is held.
func (c *conn) recycle(b [][]byte) {
	clear(b)
	if c.spare == nil && cap(b) <= maxSpare {
		c.spare = b[:0]
	}
}

const maxSpare = 64
