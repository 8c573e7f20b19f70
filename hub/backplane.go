package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
)

// A Backplane carries sends between the instances of one hub, so that a
// client connected to any instance receives what is sent on any instance.
// github.com/leadupdates/leadupdates/hub/redisbackplane implements it with
// Redis pub/sub.
//
// The Server delivers to its own connections at once and publishes, for
// the others, every send that may concern them: All, Group, Groups,
// GroupsFiltered, User, and Client when the connection is not its own. Each
// instance ignores its own messages when they come back, so a client gets a
// message once; group membership stays with the instance that holds the
// connection.
type Backplane interface {
	// Publish sends msg to every subscribed instance, this one included.
	// The Server calls it from one goroutine; messages must reach each
	// subscriber in the order they were published. An error loses msg
	// (the Server counts it); Publish need not retry.
	Publish(ctx context.Context, msg []byte) error
	// Subscribe calls deliver with every message published by any instance,
	// one at a time, until ctx is done, and then returns ctx.Err(). It
	// reconnects by itself after a failure; messages published meanwhile are
	// lost, and the Server counts them from the gap in each instance's
	// sequence numbers. deliver owns msg.
	Subscribe(ctx context.Context, deliver func(msg []byte)) error
}

// A Backplane may also report whether it is connected, for [Server.Ready]:
//
//	Ready(ctx context.Context) error
type readier interface {
	Ready(ctx context.Context) error
}

// ErrShuttingDown is what Ready returns once Shutdown or Close has started.
var ErrShuttingDown = errors.New("hub: shutting down")

// Ready reports whether the Server can take new clients as one instance of
// the hub: nil, unless it is shutting down or its backplane reports that it
// is not connected (an instance that cannot hear the others would serve
// partial updates). It suits a readiness probe such as /readyz.
func (s *Server) Ready(ctx context.Context) error {
	if s.reg.shuttingDown() {
		return ErrShuttingDown
	}
	if s.relay != nil {
		if r, ok := s.relay.bp.(readier); ok {
			if err := r.Ready(ctx); err != nil {
				return fmt.Errorf("hub: backplane: %w", err)
			}
		}
	}
	return nil
}

// relay is a Server's side of its backplane: a bounded queue of encoded
// sends, one goroutine publishing it in order, batched, and one receiving.
type relay struct {
	bp     Backplane
	origin [originSize]byte // this instance, random per Server
	limit  int

	mu      sync.Mutex
	seq     uint64   // of the last record queued
	queue   [][]byte // encoded records, oldest first
	wake    chan struct{}
	stop    chan struct{}
	stopped sync.WaitGroup

	// Owned by the receiving goroutine.
	last map[[originSize]byte]*peer

	lastLog atomic.Int64
}

// peer is what an instance knows of another: the sequence number of its
// last record seen.
type peer struct {
	seq  uint64
	seen time.Time
}

const (
	originSize     = 16
	wireVersion    = 1
	maxBatchBytes  = 256 << 10
	publishTimeout = 5 * time.Second
	forgetPeer     = time.Hour // an instance silent this long is forgotten
	maxPeers       = 1024      // above this many, forgotten instances are pruned
)

func newRelay(bp Backplane, limit int) *relay {
	r := &relay{
		bp:    bp,
		limit: limit,
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		last:  map[[originSize]byte]*peer{},
	}
	_, _ = rand.Read(r.origin[:])
	return r
}

// startRelay runs the publishing and receiving goroutines until stopRelay.
func (s *Server) startRelay(ctx context.Context) {
	r := s.relay
	r.stopped.Add(2)
	go func() {
		defer r.stopped.Done()
		s.publishLoop()
	}()
	go func() {
		defer r.stopped.Done()
		for {
			err := r.bp.Subscribe(ctx, s.receive)
			if ctx.Err() != nil {
				return
			}
			level.Error(s.cfg.logger).Log("msg", "backplane subscription ended; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

// stopRelay publishes what is still queued, within publishTimeout, and stops
// both goroutines; cancel ends the subscription.
func (s *Server) stopRelay(cancel context.CancelFunc) {
	close(s.relay.stop)
	cancel()
	s.relay.stopped.Wait()
}

// relayed delivers m to this instance's connections and queues it for the
// others.
func (s *Server) relayed(a audience, m *outMessage) {
	publish := true
	if a.kind == toClient {
		publish = s.reg.liveConn(a.names[0]) == nil
	}
	if !publish {
		s.deliverLocal(a.kind, a.names, m)
		return
	}
	m.encode()
	if m.json == nil && m.msgpack == nil {
		s.tel.dropped.WithLabelValues("encode").Inc()
		return
	}
	s.deliverLocal(a.kind, a.names, m)
	s.relay.enqueue(s, a, m)
}

// enqueue appends a record; when the queue is full the record is dropped
// and counted, and its sequence number is spent, so that the others see
// the gap.
func (r *relay) enqueue(s *Server, a audience, m *outMessage) {
	r.mu.Lock()
	r.seq++
	if len(r.queue) >= r.limit {
		r.mu.Unlock()
		s.tel.bpDropped.WithLabelValues("overflow").Inc()
		r.logRare(s, "backplane queue full; send not published", nil)
		return
	}
	r.queue = append(r.queue, appendRecord(nil, r.seq, a, m))
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take removes queued records up to maxBatchBytes (at least one).
func (r *relay) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, size := 0, 0
	for n < len(r.queue) && (n == 0 || size+len(r.queue[n]) <= maxBatchBytes) {
		size += len(r.queue[n])
		n++
	}
	batch := make([][]byte, n)
	copy(batch, r.queue)
	clear(r.queue[:n])
	r.queue = r.queue[n:]
	if len(r.queue) == 0 {
		r.queue = nil // let a burst's storage go
	}
	return batch
}

// publishLoop publishes the queue in order, each batch of records as one
// message, until stop; then it publishes what is left and returns.
func (s *Server) publishLoop() {
	r := s.relay
	for {
		stopping := false
		select {
		case <-r.wake:
		case <-r.stop:
			stopping = true
		}
		for {
			batch := r.take()
			if len(batch) == 0 {
				break
			}
			s.publish(batch)
		}
		if stopping {
			return
		}
	}
}

func (s *Server) publish(batch [][]byte) {
	r := s.relay
	size := 1 + originSize + binary.MaxVarintLen64
	for _, rec := range batch {
		size += len(rec)
	}
	msg := make([]byte, 0, size)
	msg = append(msg, wireVersion)
	msg = append(msg, r.origin[:]...)
	msg = binary.AppendUvarint(msg, uint64(len(batch)))
	for _, rec := range batch {
		msg = append(msg, rec...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	err := r.bp.Publish(ctx, msg)
	cancel()
	if err != nil {
		s.tel.bpDropped.WithLabelValues("error").Add(float64(len(batch)))
		r.logRare(s, "backplane publish failed; sends lost for other instances", err, "sends", len(batch))
		return
	}
	s.tel.bpPublished.Add(float64(len(batch)))
}

// logRare logs a warning at most once a second.
func (r *relay) logRare(s *Server, msg string, err error, kv ...any) {
	now := time.Now().UnixNano()
	last := r.lastLog.Load()
	if now-last < int64(time.Second) || !r.lastLog.CompareAndSwap(last, now) {
		return
	}
	level.Warn(s.cfg.logger).Log(append([]any{"msg", msg, "err", err}, kv...)...)
}

// receive delivers the records of one backplane message to this
// instance's connections, skipping its own.
func (s *Server) receive(msg []byte) {
	r := s.relay
	if len(msg) < 1+originSize || msg[0] != wireVersion {
		s.tel.bpLost.WithLabelValues("invalid").Inc()
		r.logRare(s, "backplane message not understood", nil, "bytes", len(msg))
		return
	}
	var origin [originSize]byte
	copy(origin[:], msg[1:])
	if origin == r.origin {
		return
	}
	d := decoder{b: msg[1+originSize:]}
	n := d.uvarint()
	p := r.peer(origin)
	for i := uint64(0); i < n && d.err == nil; i++ {
		rec := d.record()
		if d.err != nil {
			break
		}
		switch {
		case p.seq == 0 || rec.seq == p.seq+1:
		case rec.seq <= p.seq:
			continue // seen already: a client gets each send once
		default:
			lost := rec.seq - p.seq - 1
			s.tel.bpLost.WithLabelValues("gap").Add(float64(lost))
			r.logRare(s, "backplane sends lost", nil, "sends", lost)
		}
		p.seq = rec.seq
		m := outMessage{json: rec.json, msgpack: rec.msgpack, encoded: true}
		if rec.filtered {
			m.keep = s.filterFunc(rec.filter, rec.arg)
		}
		s.deliverLocal(rec.kind, rec.names, &m)
		s.tel.bpReceived.Inc()
	}
	if d.err != nil {
		s.tel.bpLost.WithLabelValues("invalid").Inc()
		r.logRare(s, "backplane message not understood", d.err, "bytes", len(msg))
	}
}

func (r *relay) peer(origin [originSize]byte) *peer {
	now := time.Now()
	p := r.last[origin]
	if p == nil {
		if len(r.last) >= maxPeers {
			for o, q := range r.last {
				if now.Sub(q.seen) > forgetPeer {
					delete(r.last, o)
				}
			}
			if len(r.last) >= maxPeers {
				// Bounded whatever appears on the channel; each instance's
				// next send starts counting again.
				clear(r.last)
			}
		}
		p = &peer{}
		r.last[origin] = p
	}
	p.seen = now
	return p
}

// A record is one send on the wire:
//
//	seq uvarint | kind byte | flags byte | names count uvarint, each name |
//	filter | arg | JSON frame | MessagePack frame
//
// where strings and frames are a uvarint length and the bytes.
const flagFiltered = 1

func appendRecord(b []byte, seq uint64, a audience, m *outMessage) []byte {
	b = binary.AppendUvarint(b, seq)
	var flags byte
	if a.filtered {
		flags |= flagFiltered
	}
	b = append(b, byte(a.kind), flags)
	b = binary.AppendUvarint(b, uint64(len(a.names)))
	for _, n := range a.names {
		b = appendBytes(b, n)
	}
	b = appendBytes(b, a.filter)
	b = appendBytes(b, a.arg)
	b = appendBytes(b, m.json)
	return appendBytes(b, m.msgpack)
}

func appendBytes[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type record struct {
	seq           uint64
	kind          int
	filtered      bool
	names         []string
	filter, arg   string
	json, msgpack []byte
}

var errShort = errors.New("truncated record")

// decoder reads records; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) record() record {
	var r record
	r.seq = d.uvarint()
	if d.err != nil {
		return r
	}
	if len(d.b) < 2 {
		d.err = errShort
		return r
	}
	r.kind, r.filtered = int(d.b[0]), d.b[1]&flagFiltered != 0
	d.b = d.b[2:]
	if r.kind < toAll || r.kind > toUser {
		d.err = fmt.Errorf("unknown audience %d", r.kind)
		return r
	}
	count := d.uvarint()
	if count > uint64(len(d.b)) {
		d.err = errShort
		return r
	}
	r.names = make([]string, 0, count)
	for range count {
		r.names = append(r.names, string(d.bytes()))
	}
	if (r.kind == toClient || r.kind == toUser) && len(r.names) != 1 {
		d.err = fmt.Errorf("audience %d needs one name, got %d", r.kind, len(r.names))
		return r
	}
	r.filter = string(d.bytes())
	r.arg = string(d.bytes())
	r.json = nilIfEmpty(d.bytes())
	r.msgpack = nilIfEmpty(d.bytes())
	return r
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
