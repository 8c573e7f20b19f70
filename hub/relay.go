package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/internal/promreg"
	"github.com/leadupdates/leadupdates/internal/ratelog"
	"github.com/prometheus/client_golang/prometheus"
)

// relay is a Server's side of its backplane: a bounded queue of encoded
// sends with one goroutine publishing it in order, batched, and one
// receiving what the other instances publish. The queue is what keeps Send
// from ever waiting for the backplane (a slow or unreachable Redis); what
// overflows it is counted and lost for the other instances only.
type relay struct {
	bp      Backplane
	origin  [originSize]byte // this instance, random per Server
	limit   int
	deliver func(*record) // to this instance's connections
	tel     relayTelemetry
	log     log.Logger
	warn    *ratelog.Logger // for what can repeat at the rate of sends

	mu    sync.Mutex
	seq   uint64   // of the last record queued
	queue [][]byte // encoded records, oldest first
	wake  chan struct{}

	stop   chan struct{}      // closed by close: publish what is left and return
	cancel context.CancelFunc // ends the subscription
	done   sync.WaitGroup

	// Owned by the receiving goroutine.
	last map[[originSize]byte]*peer
}

// relayTelemetry is the relay's part of the hub's collectors.
type relayTelemetry struct {
	published prometheus.Counter
	dropped   *prometheus.CounterVec
	received  prometheus.Counter
	lost      *prometheus.CounterVec
}

func newRelayTelemetry(f *promreg.Factory) relayTelemetry {
	return relayTelemetry{
		published: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_published_total",
			Help: "Sends published to the other instances through the backplane.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_dropped_total",
			Help: "Sends not published to the other instances, by reason (overflow: queue full; error: publish failed).",
		}, []string{"reason"}),
		received: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_received_total",
			Help: "Sends received from other instances and delivered to this instance's connections.",
		}),
		lost: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_lost_total",
			Help: "Sends of other instances this instance missed, by reason (gap: seen from a gap in their sequence numbers; invalid: a message not understood).",
		}, []string{"reason"}),
	}
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
	resubscribe    = time.Second // wait before calling Subscribe again
	forgetPeer     = time.Hour   // an instance silent this long is forgotten
	maxPeers       = 1024        // above this many, forgotten instances are pruned
)

// newRelay returns a relay that start runs; its collectors come from f.
func newRelay(bp Backplane, limit int, f *promreg.Factory, logger log.Logger, deliver func(*record)) *relay {
	r := &relay{
		bp:      bp,
		limit:   limit,
		deliver: deliver,
		tel:     newRelayTelemetry(f),
		log:     logger,
		warn:    ratelog.New(level.Warn(logger), time.Second),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		last:    map[[originSize]byte]*peer{},
	}
	_, _ = rand.Read(r.origin[:])
	return r
}

// start runs the publishing and the receiving goroutine until close.
func (r *relay) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done.Add(2)
	go func() {
		defer r.done.Done()
		r.publishLoop()
	}()
	go func() {
		defer r.done.Done()
		r.subscribe(ctx)
	}()
}

// close publishes what is still queued, each batch within publishTimeout,
// ends the subscription and waits for both goroutines.
func (r *relay) close() {
	close(r.stop)
	r.cancel()
	r.done.Wait()
}

// subscribe calls Subscribe until ctx is done, again a second after each
// failure.
func (r *relay) subscribe(ctx context.Context) {
	t := time.NewTimer(resubscribe)
	defer t.Stop()
	for {
		err := r.bp.Subscribe(ctx, r.receive)
		if ctx.Err() != nil {
			return
		}
		level.Error(r.log).Log("msg", "backplane subscription ended; retrying", "err", err)
		t.Reset(resubscribe)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// enqueue appends a record; when the queue is full the record is dropped
// and counted, and its sequence number is spent, so that the others see
// the gap.
func (r *relay) enqueue(a audience, m *outMessage) {
	r.mu.Lock()
	r.seq++
	if len(r.queue) >= r.limit {
		r.mu.Unlock()
		r.tel.dropped.WithLabelValues("overflow").Inc()
		r.warn.Log("msg", "backplane queue full; send not published")
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
func (r *relay) publishLoop() {
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
			r.publish(batch)
		}
		if stopping {
			return
		}
	}
}

func (r *relay) publish(batch [][]byte) {
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
		r.tel.dropped.WithLabelValues("error").Add(float64(len(batch)))
		r.warn.Log("msg", "backplane publish failed; sends lost for other instances", "err", err, "sends", len(batch))
		return
	}
	r.tel.published.Add(float64(len(batch)))
}

// receive delivers the records of one backplane message to this
// instance's connections, skipping its own.
func (r *relay) receive(msg []byte) {
	if len(msg) < 1+originSize || msg[0] != wireVersion {
		r.tel.lost.WithLabelValues("invalid").Inc()
		r.warn.Log("msg", "backplane message not understood", "bytes", len(msg))
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
			r.tel.lost.WithLabelValues("gap").Add(float64(lost))
			r.warn.Log("msg", "backplane sends lost", "sends", lost)
		}
		p.seq = rec.seq
		r.deliver(&rec)
		r.tel.received.Inc()
	}
	if d.err != nil {
		r.tel.lost.WithLabelValues("invalid").Inc()
		r.warn.Log("msg", "backplane message not understood", "err", d.err, "bytes", len(msg))
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
