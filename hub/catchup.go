package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub/internal/protocol"
)

// A Log is the ordered store of published entries that the hub method
// CatchUp replays from. Its implementations (a database table, say) are the
// application's; the hub only reads. An entry at a position never changes:
// the hub keeps the frames of recently replayed ones.
type Log interface {
	// Read returns up to limit entries with Position > after, ascending.
	// It returns an error wrapping ErrPruned when entries after after are
	// no longer all retained.
	Read(ctx context.Context, after uint64, limit int) ([]Entry, error)
	// Reload is the message sent instead of a catch-up that cannot be
	// complete (after was pruned): the client should reload its state.
	Reload(after uint64) (target string, args []any)
}

// ErrPruned is what a [Log]'s Read wraps when the position asked for is
// older than what the log retains.
var ErrPruned = errors.New("hub: position pruned from the log")

// WithLog enables the hub method CatchUp(position), which replays l to the
// calling connection; entries must be published to the Server
// ([Server.Publish]) once l can read them. A catch-up goes at its client's
// pace: it reads l 256 entries at a time and fills at most half of the
// connection's send queue ([WithSendQueue]; for a stateful connection, its
// replay buffer) before it waits for room, so it neither drops messages
// nor closes a client for being slow, and other sends keep their room. A
// connection's calls run one at a time, so it has one catch-up at most.
// Defaults to none: CatchUp answers an error.
func WithLog(l Log) Option { return func(c *config) { c.log = l } }

// WithCatchUpReads bounds how many reads of the [Log] CatchUp calls make at
// once, across connections; the others wait their turn, so that many
// clients catching up together (after a restart, say) take no more than n
// of the application's database connections. Defaults to 4.
func WithCatchUpReads(n int) Option { return func(c *config) { c.logReads = n } }

// CatchUpResult is what CatchUp answers: the last position the catch-up
// covered, from which the connection receives entries live, and whether
// the client was sent the Log's Reload message instead of what it missed.
type CatchUpResult struct {
	Position uint64 `json:"position"`
	Reload   bool   `json:"reload"`
}

// catchUpBatch is how many entries a catch-up reads from the Log at once:
// what one catch-up holds in memory, besides the connection's queue.
const catchUpBatch = 256

// logStallTries bounds how long a catch-up waits for a Log that has not
// caught up with what was published (a lagging replica, say): about 6 s
// in all, from 1 ms doubling up to 250 ms.
const logStallTries = 30

var (
	errCatchUpOff     = hubError("catch-up is not enabled")
	errCatchUpRunning = hubError("a catch-up is already running on this connection")
	errNegativePos    = hubError("position must be an integer of 0 or more")
	errConnClosing    = hubError("connection is closing")
	errLogUnavailable = hubError("could not read the missed messages; call CatchUp again")
)

// catchUp runs the hub method CatchUp(after) for connection id: it sends
// every entry of the Log after after that the connection may see, through
// its queue and in order, then lets Publish take over.
//
// The seam: Publish records the published position before it visits any
// connection, and visits each under the connection's positions.mu, skipping
// one that is catching up. The replay reads the Log after its cursor, and
// whenever a read comes back short it compares, under the same lock, the
// published position with its cursor: if the cursor is there, it clears
// catching (from then on Publish sends what is above it); if not, what lies
// between was published, so can be read, and it reads on. An entry is thus
// either read by the replay (published before the last check) or sent by
// Publish (published after), never both, never neither. What Publish sent
// the connection before the catch-up started, the replay leaves out (see
// positions).
func (s *Server) catchUp(ctx context.Context, id string, after int64) (CatchUpResult, error) {
	switch {
	case s.cfg.log == nil:
		return CatchUpResult{}, errCatchUpOff
	case after < 0:
		return CatchUpResult{}, errNegativePos
	}
	c := s.reg.liveConn(id)
	if c == nil || !s.reg.track(&s.catchUps) {
		return CatchUpResult{}, errConnClosing
	}
	defer s.catchUps.Done()
	ps := &c.pos
	s.reg.mu.RLock()
	ps.mu.Lock()
	running := ps.catching
	ps.catching = true
	r := &catchUpRun{s: s, c: c, p: c.protocol(), lo: ps.lo, top: ps.last, joins: ps.joins}
	ps.mu.Unlock()
	s.reg.mu.RUnlock()
	if running {
		return CatchUpResult{}, errCatchUpRunning
	}
	c.capResume(uint64(after))
	defer c.uncapResume()

	res, err := r.run(ctx, uint64(after))
	switch {
	case err != nil:
		s.tel.catchUps.WithLabelValues("failed").Inc()
	case res.Reload:
		s.tel.catchUps.WithLabelValues("reload").Inc()
	default:
		s.tel.catchUps.WithLabelValues("complete").Inc()
	}
	return res, err
}

// run replays the Log after after and goes live.
func (r *catchUpRun) run(ctx context.Context, after uint64) (CatchUpResult, error) {
	s, c, ps, lg := r.s, r.c, &r.c.pos, r.s.cfg.log
	cursor := after
	for stalls := 0; ; {
		batch, err := r.read(ctx, lg, cursor)
		switch {
		case errors.Is(err, ErrPruned):
			return r.reload(ctx, cursor)
		case err != nil:
			if ctx.Err() == nil {
				level.Error(s.cfg.logger).Log("msg", "catch-up: cannot read the log", "connection_id", c.id, "after", cursor, "err", err)
			}
			r.abandon()
			return CatchUpResult{}, errLogUnavailable
		}
		n := len(batch)
		batch = ascending(batch, cursor)
		empty := len(batch) == 0
		if !empty {
			end := batch[len(batch)-1].Position
			ps.mu.Lock()
			ps.last = max(ps.last, end) // before the batch is judged: see stamp
			ps.mu.Unlock()
			frames := r.frames(batch)
			batch = nil // while waiting for room, hold the frames only
			if !c.pushWait(ctx, frames, r.pos) {
				r.abandon()
				return CatchUpResult{}, errConnClosing
			}
			s.tel.caughtUp.Add(float64(len(frames)))
			cursor, stalls = end, 0
		}
		if n == catchUpBatch {
			continue
		}
		if res, done := r.finish(after, cursor); done {
			return res, nil
		}
		if empty {
			// The Log does not hold what was published yet.
			if stalls++; stalls > logStallTries || !sleepCtx(ctx, min(time.Millisecond<<stalls, 250*time.Millisecond)) {
				if ctx.Err() == nil {
					level.Error(s.cfg.logger).Log("msg", "catch-up: the log lags behind what was published", "connection_id", c.id, "after", cursor)
				}
				r.abandon()
				return CatchUpResult{}, errLogUnavailable
			}
		}
	}
}

// read reads the batch after cursor, waiting for its turn
// (WithCatchUpReads).
func (r *catchUpRun) read(ctx context.Context, lg Log, cursor uint64) ([]Entry, error) {
	select {
	case r.s.logReads <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.s.logReads }()
	return lg.Read(ctx, cursor, catchUpBatch)
}

// catchUpRun is one catch-up of one connection.
type catchUpRun struct {
	s *Server
	c *conn
	p protocol.Protocol
	// lo and top are the connection's positions.lo and last when the
	// catch-up started: what it was sent live, see positions.
	lo, top uint64
	joins   uint64   // positions.joins at the start
	keep    []int    // scratch: the indexes of a batch's entries to send
	pos     []uint64 // the positions of the frames last returned by frames
}

// frames returns the connection's frames of the entries of batch it may
// see and was not sent live.
func (r *catchUpRun) frames(batch []Entry) [][]byte {
	s, c := r.s, r.c
	r.keep = r.keep[:0]
	s.reg.mu.RLock()
	member := s.reg.member[c]
	for i := range batch {
		e := &batch[i]
		in, sent := false, false
		for _, g := range e.Groups {
			if _, ok := member[g]; !ok {
				continue
			}
			in = true
			if e.Position > r.lo && e.Position <= r.top && c.pos.joined[g] < e.Position {
				sent = true // Publish sent it through g
				break
			}
		}
		if !in || sent {
			continue
		}
		if e.Filter != "" {
			if f := s.cfg.filters[e.Filter]; f == nil || !f(e.Arg, c.principal) {
				continue
			}
		}
		r.keep = append(r.keep, i)
	}
	s.reg.mu.RUnlock()
	frames := make([][]byte, 0, len(r.keep))
	binary := r.p.Binary()
	r.pos = r.pos[:0]
	for _, i := range r.keep {
		e := &batch[i]
		b := s.frames.get(binary, e.Position)
		if b == nil {
			var err error
			if b, err = r.p.Invocation(e.Target, e.Args); err != nil {
				s.tel.dropped.WithLabelValues("encode").Inc()
				level.Error(s.cfg.logger).Log("msg", "cannot encode message", "target", e.Target, "position", e.Position, "err", err)
				continue
			}
			s.frames.put(binary, e.Position, b)
		}
		frames = append(frames, b)
		r.pos = append(r.pos, e.Position)
	}
	return frames
}

// finish ends the catch-up if cursor has reached the published position:
// from then on Publish sends the connection what comes after cursor.
func (r *catchUpRun) finish(after, cursor uint64) (CatchUpResult, bool) {
	reg, ps := r.s.reg, &r.c.pos
	if cursor < reg.published.Load() {
		return CatchUpResult{}, false
	}
	reg.mu.Lock() // for joined
	defer reg.mu.Unlock()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if cursor < reg.published.Load() {
		return CatchUpResult{}, false
	}
	ps.catching = false
	ps.last = max(ps.last, cursor)
	// Sent: (lo, top] live, (after, cursor] now; one interval unless
	// after is above top.
	if after > r.top {
		ps.lo = after
	} else {
		ps.lo = min(ps.lo, after)
	}
	if ps.joins == r.joins {
		// The same groups throughout: what the connection may see
		// through each after after was sent, live or now.
		for g, at := range ps.joined {
			ps.joined[g] = min(at, after)
		}
	}
	return CatchUpResult{Position: cursor}, true
}

// abandon ends a catch-up that failed: the connection is sent what is
// published from now on, and a next catch-up counts nothing before as sent.
// It returns the position live delivery starts after.
func (r *catchUpRun) abandon() uint64 {
	ps := &r.c.pos
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.catching = false
	ps.last = max(ps.last, r.s.reg.published.Load())
	ps.lo = ps.last
	return ps.last
}

// reload sends the Log's Reload message in place of entries that were
// pruned, and goes live.
func (r *catchUpRun) reload(ctx context.Context, after uint64) (CatchUpResult, error) {
	target, args := r.s.cfg.log.Reload(after)
	b, err := r.p.Invocation(target, args)
	if err != nil {
		level.Error(r.s.cfg.logger).Log("msg", "cannot encode the reload message", "target", target, "err", err)
		r.abandon()
		return CatchUpResult{}, errLogUnavailable
	}
	if !r.c.pushWait(ctx, [][]byte{b}, nil) {
		r.abandon()
		return CatchUpResult{}, errConnClosing
	}
	return CatchUpResult{Position: r.abandon(), Reload: true}, nil
}

// ascending drops what a Log returned out of order: entries at or below
// the cursor or below their predecessor.
func ascending(batch []Entry, cursor uint64) []Entry {
	out := batch[:0]
	for _, e := range batch {
		if e.Position > cursor {
			out = append(out, e)
			cursor = e.Position
		}
	}
	return out
}

// pushWait queues frames in order like push, but waits for room instead of
// closing the connection when its queue (or stateful replay buffer) is
// half full: a catch-up goes at the client's pace and leaves the other
// half for other sends. It reports false if the connection ends first.
func (c *conn) pushWait(ctx context.Context, frames [][]byte, pos []uint64) bool {
	for {
		c.mu.Lock()
		for len(frames) > 0 && !c.closing && c.roomFor(len(frames[0])) {
			if c.pushLocked(frames[0], frameMessage) && len(pos) > 0 {
				c.marked(pos[0])
			}
			frames[0] = nil
			frames = frames[1:]
			if len(pos) > 0 {
				pos = pos[1:]
			}
		}
		if closing := c.closing; closing || len(frames) == 0 {
			c.mu.Unlock()
			return !closing
		}
		if c.pos.room == nil {
			c.pos.room = make(chan struct{}, 1)
		}
		room := c.pos.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-c.closed:
		case <-ctx.Done():
			return false
		}
	}
}

// roomFor reports whether a catch-up may queue n more bytes: up to half of
// the queue's or replay buffer's bound, and always into an empty one. c.mu
// is held.
func (c *conn) roomFor(n int) bool {
	switch {
	case c.rb != nil:
		return c.rb.n == 0 || c.rb.bytes+n <= c.srv.cfg.replayBuffer/2
	case c.transport == LongPolling:
		return c.lpBytes == 0 || c.lpBytes+n <= c.srv.cfg.sendQueue*lpBytesPerMessage/2
	}
	return len(c.queue) == 0 || len(c.queue) < (c.srv.cfg.sendQueue+1)/2
}

// madeRoom wakes a catch-up waiting for room in the queue; c.mu is held.
func (c *conn) madeRoom() {
	if c.pos.room != nil {
		select {
		case c.pos.room <- struct{}{}:
		default:
		}
	}
}

// track counts a catch-up in wg unless the Server is shutting down, so
// that Close, which waits for wg, never sees it grow.
func (r *registry) track(wg *sync.WaitGroup) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shutdown {
		return false
	}
	wg.Add(1)
	return true
}

// sleepCtx waits d, or less if ctx ends first; it reports whether ctx is
// still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
