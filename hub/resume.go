package hub

import (
	"errors"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub/internal/protocol"
)

// Stateful reconnect, ASP.NET Core's protocol as @microsoft/signalr speaks
// it (withStatefulReconnect, WebSockets only): negotiate offers it to a
// client that asks, the client's handshake takes it up with version 2, and
// from then on each side numbers the invocation-type messages it sends
// (types 1 to 5, from 1), acknowledges what it received (Ack) and keeps
// what the other side has not acknowledged. When the WebSocket drops, the
// connection stays, with its id, principal and groups, and keeps buffering
// what is sent to it; the client opens a new WebSocket with the same
// connection token, each side sends Sequence (the id of the oldest message
// it still holds) and resends what it holds, and each drops what it has
// already received.

// replay is a stateful connection's side of the protocol.
type replay struct {
	// Outbound, under conn.mu: what the client has not acknowledged, in
	// chunks from a pool, so that keeping a frame allocates nothing once
	// the pool is warm and an idle connection holds no chunk. It is also
	// the connection's queue of counted frames: the writer takes them from
	// here (sent marks how far), and conn.queue holds only control frames,
	// so that a frame sent to a stateful connection costs one store, as it
	// does on any other.
	chunks []*chunk
	head   int   // the index of the oldest frame in chunks[0]
	tail   int   // how many frames the last chunk holds
	n      int   // frames held
	sent   int   // of those, how many (the oldest) the writer has taken
	first  int64 // the id of the oldest frame; with none held, the next id
	bytes  int
	// resend: the WebSocket is a re-attached one; the writer sends
	// Sequence first, then every frame held.
	resend bool

	// Inbound, the reader's: the id the next counted message from the
	// client takes, and the highest one received.
	nextIn   int64
	latestIn int64
	// ackedIn is the highest id acknowledged to the client, under conn.mu.
	ackedIn int64

	// Hand-off (handoff.go): pad padding messages, padFrame each, precede
	// the frames held (ids first to first+pad-1), counting no bytes; and
	// lenient takes the client's first Sequence beyond latestIn (the
	// instance it came from received what precedes it).
	pad      int64
	padFrame []byte
	lenient  bool
}

// takeUp makes c stateful after a version 2 handshake, if negotiate offered
// it. Until the client's first message after the handshake (the JavaScript
// client's first Ping, sent once its buffer exists) or a second, nothing
// follows the handshake answer: the client does not count messages it
// handles with the answer, which would shift every id after them.
func (c *conn) takeUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rb = &replay{first: 1, nextIn: 1}
	if c.srv.saver != nil {
		c.ho = &handoff{}
	}
	c.rejoin = make(chan *wsLink, 1)
	c.gateUntil = time.Now().Add(gateTimeout)
}

// gateTimeout is how long what follows the handshake answer of a stateful
// connection waits for the client's first message.
const gateTimeout = time.Second

// ungate lets what is queued after the handshake answer go; c.mu is held.
func (c *conn) ungate() {
	if c.gateUntil.IsZero() {
		return
	}
	c.gateUntil = time.Time{}
	if c.queued() {
		c.kick()
	}
}

// holding reports whether the writer must wait: the handshake answer is
// out and the client may not count what follows yet; c.mu is held.
func (c *conn) holding() bool { return c.greeted && !c.gateUntil.IsZero() }

// detached reports whether a stateful connection waits for its client to
// re-attach; c.mu is held.
func (c *conn) detached() bool { return c.rb != nil && c.link == nil }

// pushStateful numbers a frame and keeps it until the client acknowledges
// it, which also queues it: the writer takes it from the replay buffer.
// While the connection is detached, the frame goes out on re-attach;
// control frames are dropped. Unacknowledged bytes beyond the replay
// buffer close the connection. c.mu is held.
func (c *conn) pushStateful(frame []byte, k frameKind) bool {
	if k == frameControl {
		if c.link == nil {
			return false
		}
		c.queue = append(c.queue, frame)
		c.kick()
		return true
	}
	rb := c.rb
	if rb.bytes+len(frame) > c.srv.cfg.replayBuffer {
		c.replayOverflow()
		return false
	}
	rb.add(frame)
	if k == frameMessage {
		c.srv.tel.sent.Inc()
	}
	if c.link != nil {
		c.kick()
	}
	return true
}

// replayOverflow closes a connection whose client does not acknowledge
// what it is sent, with allowReconnect: it reconnects as a new connection
// and reloads. The replay buffer is freed at once. c.mu is held.
func (c *conn) replayOverflow() {
	rb := c.rb
	unsent := len(c.queue) + 1
	if c.link != nil {
		unsent += rb.n - rb.sent
	}
	c.srv.tel.dropped.WithLabelValues("unacked").Add(float64(unsent))
	c.srv.tel.unackedClosed.Inc()
	level.Warn(c.srv.cfg.logger).Log("msg", "stateful connection closed: unacknowledged messages exceed the replay buffer",
		"connection_id", c.id, "unacked_bytes", rb.bytes, "unacked", rb.n, "detached", c.link == nil)
	rb.drop(rb.n)
	clear(c.queue)
	c.queue = c.queue[:0]
	c.startClosing(reasonUnacked, "The client did not acknowledge its messages in time.", true)
}

// ack drops what the client acknowledged: every message up to id. An id
// below what was acknowledged before changes nothing; one beyond what was
// sent acknowledges everything. c.mu is held.
func (r *replay) ack(id int64) {
	if id < r.first {
		return
	}
	k := min(id-r.first+1, r.pad+int64(r.n))
	p := min(k, r.pad)
	r.pad -= p
	r.drop(int(k - p))
	r.first += k
}

// unsent reports whether the writer has frames to take; c.mu is held.
func (r *replay) unsent() bool { return r.resend || r.sent < r.n }

const chunkLen = 32

type chunk [chunkLen][]byte

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// add keeps a frame; c.mu is held.
func (r *replay) add(f []byte) {
	if len(r.chunks) == 0 || r.tail == chunkLen {
		r.chunks = append(r.chunks, chunkPool.Get().(*chunk))
		r.tail = 0
	}
	r.chunks[len(r.chunks)-1][r.tail] = f
	r.tail++
	r.n++
	r.bytes += len(f)
}

// drop forgets the k oldest frames; c.mu is held. A client acknowledges
// only what it received, but one that acknowledges more loses it unsent.
func (r *replay) drop(k int) {
	r.sent -= min(k, r.sent)
	for k > 0 && len(r.chunks) > 0 {
		ch := r.chunks[0]
		end := chunkLen
		if len(r.chunks) == 1 {
			end = r.tail
		}
		m := min(k, end-r.head)
		for i := r.head; i < r.head+m; i++ {
			r.bytes -= len(ch[i])
			ch[i] = nil
		}
		r.head += m
		r.n -= m
		k -= m
		if r.head == end {
			chunkPool.Put(ch)
			r.chunks[0] = nil
			r.chunks = r.chunks[1:]
			r.head = 0
			if len(r.chunks) == 0 {
				r.chunks, r.tail = nil, 0 // an idle connection holds no buffer
			}
		}
	}
}

// takeUnsent appends the frames the writer has not taken, oldest first,
// and marks them taken; c.mu is held.
func (r *replay) takeUnsent(q [][]byte) [][]byte {
	skip := r.sent
	for i, ch := range r.chunks {
		from, to := 0, chunkLen
		if i == 0 {
			from = r.head
		}
		if i == len(r.chunks)-1 {
			to = r.tail
		}
		if skip >= to-from {
			skip -= to - from
			continue
		}
		q = append(q, ch[from+skip:to]...)
		skip = 0
	}
	r.sent = r.n
	return q
}

var errSequence = errors.New("sequence id greater than the number of messages received")

// received applies the stateful protocol to a message from the client, in
// the reader: it reports a duplicate the client resent after a re-attach,
// which must be ignored, and an invalid Sequence.
func (c *conn) received(m protocol.Message) (dup bool, err error) {
	rb := c.rb
	switch {
	case protocol.Counted(m.Type):
		id := rb.nextIn
		rb.nextIn++
		if id <= rb.latestIn {
			return true, nil
		}
		c.mu.Lock()
		rb.latestIn = id
		c.mu.Unlock()
	case m.Type == protocol.TypeAck:
		c.mu.Lock()
		if c.ho != nil {
			c.gotAck(m.SequenceID) // applied once saved
		} else {
			rb.ack(m.SequenceID)
			c.madeRoom()
		}
		c.mu.Unlock()
	case m.Type == protocol.TypeSequence:
		// The next message is m.SequenceID: at most one past the latest
		// received, or the client resends nothing it must.
		if rb.lenient && m.SequenceID > rb.latestIn+1 {
			c.mu.Lock()
			rb.latestIn = m.SequenceID - 1
			c.mu.Unlock()
		}
		rb.lenient = false
		if m.SequenceID < 1 || m.SequenceID > rb.latestIn+1 {
			return false, errSequence
		}
		rb.nextIn = m.SequenceID
	}
	return false, nil
}

// sendAck acknowledges what the client sent, if that grew since the last
// Ack and the connection is attached; the heartbeat calls it each second,
// as ASP.NET Core's timer does.
func (c *conn) sendAck(p protocol.Protocol) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rb := c.rb
	if c.closing || c.link == nil || rb.latestIn <= rb.ackedIn {
		return
	}
	rb.ackedIn = rb.latestIn
	c.queue = append(c.queue, p.Ack(rb.latestIn))
	c.kick()
}

// resumable reports whether a new WebSocket may take over the connection.
func (c *conn) resumable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rb != nil && !c.closing
}

// resume makes l the connection's WebSocket: the writer sends Sequence
// first, then every message the client has not acknowledged, in order, then
// what comes next (takeStateful); the reader continues on l. An old
// WebSocket that still looked alive is closed.
func (c *conn) resume(l *wsLink) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		_ = l.ws.CloseNow()
		return false
	}
	old := c.link
	c.link = l
	c.detachedAt = time.Time{}
	c.gateUntil = time.Time{}
	rb := c.rb
	clear(c.queue)
	c.queue = c.queue[:0]
	rb.sent, rb.resend = 0, true
	rb.ackedIn = 0 // the Ack may have been lost with the old WebSocket
	select {
	case <-c.rejoin:
	default:
	}
	c.rejoin <- l
	c.lastRecv.Store(time.Now().UnixNano())
	resent := rb.n
	c.kick()
	c.mu.Unlock()
	if old != nil {
		_ = old.ws.CloseNow()
	}
	c.srv.tel.reattached.Inc()
	level.Debug(c.srv.cfg.logger).Log("msg", "re-attached", "connection_id", c.id, "resent", resent)
	return true
}

// lost handles the end of the WebSocket l, seen by the writer (flusher) or
// the reader. If l is no longer the connection's (a re-attach replaced
// it), nothing is lost. A stateful connection then waits to be re-attached;
// any other ends. It reports whether l was the connection's.
func (c *conn) lost(l *wsLink, flusher bool, reason string) bool {
	c.mu.Lock()
	if c.link != l {
		c.mu.Unlock()
		return false
	}
	if flusher {
		c.flushing = false
	}
	if c.rb == nil || c.closing {
		c.mu.Unlock()
		c.abort(reason)
		return true
	}
	c.link = nil
	c.detachedAt = time.Now()
	clear(c.queue) // pings and acks; what counts is in the replay
	c.queue = c.queue[:0]
	c.mu.Unlock()
	_ = l.ws.CloseNow()
	level.Debug(c.srv.cfg.logger).Log("msg", "transport lost; waiting for a re-attach", "connection_id", c.id)
	return true
}

// awaitLink waits, in the reader, for a re-attached WebSocket after the
// one it read failed; false means the connection ended instead.
func (c *conn) awaitLink() bool {
	c.lost(c.brLink, false, reasonClient)
	select {
	case l := <-c.rejoin:
		c.readFrom(l)
		return true
	case <-c.closed:
		return false
	}
}
