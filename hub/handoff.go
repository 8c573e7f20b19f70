package hub

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub/internal/protocol"
)

// Hand-off: a stateful connection resumes on another instance.
//
// Each instance saves its stateful connections' sessions (session.go) to
// the SessionStore: on connect, on a group change, on each Ack from the
// client, and every window while attached, batched (saver.go). A WebSocket
// re-attaching with a connection token this instance does not know claims
// the session, becomes its owner, and recreates the connection: same id,
// token, protocol and groups, without OnConnected (it is the same logical
// connection; its hooks ran where it began).
//
// What the client does not know is how much of what the old instance sent
// it received: it acknowledged Acked, and may hold up to K more. The new
// instance says Sequence Acked+1, so the client counts what follows from
// Acked+1 and silently drops the first K messages, those it has; so the
// new instance first sends P harmless messages, Completions for an
// invocation id the JavaScript client never generates (its ids are decimal
// integers; it ignores a Completion it has no callback for), with P >= K:
//
//   - an instance applies an Ack to its replay buffer only once it saved it,
//     so everything sent beyond the saved Acked is in its replay buffer, or
//     is padding it was still owed (rb.pad);
//   - the replay buffer holds at most WithStatefulReconnect's bufferBytes
//     (beyond, the connection is closed), and every counted message the
//     hub sends is at least minFrame bytes (a Completion with a one-character
//     id: 30 bytes in JSON, 7 in MessagePack);
//   - so K <= pad + bufferBytes/minFrame, which is what Session.Unacked
//     holds. With the defaults that is 3,333 padding messages for JSON and
//     14,285 for MessagePack: about bufferBytes (100 KB) of bytes, written
//     as one WebSocket message, per hand-off.
//
// Then it replays the Log from Session.Position through the CatchUp
// machinery, then live. The client may receive an entry twice (those it
// had beyond Acked): it drops duplicates by position, as with CatchUp.
//
// Messages from the client: it says Sequence S, its oldest unacknowledged
// message, and resends from there. The new instance takes S even beyond
// what it saved (the old instance received everything before S) and ignores
// what it resends up to Session.Received; a message the old instance
// received after its last save runs again.
//
// The old instance: a copy it still holds never sends again, because a
// re-attach to it claims the session too, and resumes locally only if
// nobody claimed it in between (the epoch is unchanged); otherwise it drops
// its copy and resumes from the store like any other instance. When its
// copy ends, it deletes the session only if it still owns it, and runs
// OnDisconnected only then.

// handoff is a stateful connection's part in hand-off; under conn.mu.
type handoff struct {
	epoch int64 // of the session this copy holds
	// ackRecv is the highest Ack from the client, applied to the replay
	// buffer once saved.
	ackRecv int64
	// marks are the log positions of the replayed frames not yet
	// acknowledged, by id, in push order.
	marks []posMark
	// ackedPos: every positioned entry at or below it that the
	// connection may see was acknowledged (see resumePosition).
	ackedPos uint64
	// capped: a catch-up from capAt runs; entries above capAt may still
	// come.
	capped bool
	capAt  uint64
	saved  bool      // a save succeeded
	last   time.Time // of the last save
	// away: another instance claimed the session; this copy ends quietly.
	away bool
	// resumed: this copy was resumed from the store, not negotiated here.
	resumed bool
	// replayFrom: where the resume's replay starts (resumed only).
	replayFrom uint64
}

type posMark struct {
	id  int64
	pos uint64
}

// claimTimeout bounds the store's Claim on a re-attach.
const claimTimeout = 5 * time.Second

// padID is the invocation id of the padding Completions: not a decimal
// integer, so never one of the JavaScript client's.
const padID = "_"

// minFrame is the size of the smallest counted message the hub sends in
// protocol p: a Completion without a result for a one-character id (an
// invocation id is never empty), or an Invocation with an empty target and
// no arguments if smaller.
func minFrame(p protocol.Protocol) int {
	c, _ := p.Completion("0", nil, false, "")
	i, _ := p.Invocation("", nil)
	return min(len(c), len(i))
}

// unackedBound is Session.Unacked for c when acked is saved: how many
// counted messages c may have sent beyond acked. Those are padding it
// still owes beyond acked, and frames of its replay buffer. c.mu is held.
func (c *conn) unackedBound(acked int64) int64 {
	rb := c.rb
	pad := min(rb.pad, max(0, rb.first+rb.pad-1-acked))
	per := c.srv.saver.minJSON
	if c.protocol().Binary() {
		per = c.srv.saver.minMsgpack
	}
	return pad + int64(c.srv.cfg.replayBuffer/per)
}

// marked records that the frame just pushed carried log position pos.
// c.mu is held.
func (c *conn) marked(pos uint64) {
	if c.ho == nil || pos == 0 {
		return
	}
	rb := c.rb
	c.ho.marks = append(c.ho.marks, posMark{id: rb.first + rb.pad + int64(rb.n) - 1, pos: pos})
}

// resumePosition is Session.Position for an acknowledged id: the highest
// position acknowledged, but below any positioned frame not acknowledged
// (a catch-up sends older entries after newer ones), and not above a
// catch-up still running. c.mu is held.
func (h *handoff) resumePosition(acked int64) uint64 {
	p := h.ackedPos
	lowest := uint64(0)
	for _, m := range h.marks {
		if m.id <= acked {
			p = max(p, m.pos)
		} else if lowest == 0 || m.pos < lowest {
			lowest = m.pos
		}
	}
	if lowest > 0 {
		p = min(p, lowest-1)
	}
	if h.capped {
		p = min(p, h.capAt)
	}
	return p
}

// gotAck takes an Ack from the client: saved first, applied once saved
// (applyAck). c.mu is held.
func (c *conn) gotAck(id int64) {
	rb := c.rb
	id = min(id, rb.first+rb.pad+int64(rb.n)-1) // what was sent, at most
	if id <= c.ho.ackRecv {
		return
	}
	c.ho.ackRecv = id
	c.srv.saver.mark(c)
}

// applyAck applies a saved Ack to the replay buffer. c.mu is held.
func (c *conn) applyAck(s *Session) {
	h := c.ho
	if h.away || h.epoch != s.Epoch {
		return
	}
	h.saved = true
	i := 0
	for ; i < len(h.marks) && h.marks[i].id <= s.Acked; i++ {
		h.ackedPos = max(h.ackedPos, h.marks[i].pos)
	}
	h.marks = append(h.marks[:0], h.marks[i:]...)
	c.rb.ack(s.Acked)
	c.madeRoom()
}

// capResume and uncapResume bracket a catch-up from after on c: entries
// above it may come after newer ones.
func (c *conn) capResume(after uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ho != nil {
		c.ho.capped, c.ho.capAt = true, after
	}
}

func (c *conn) uncapResume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ho != nil {
		c.ho.capped = false
	}
}

// session returns c's session as it is to be saved; false if there is
// nothing to save (it ended, or was claimed elsewhere). The registry is
// read-locked, not c.mu.
func (c *conn) session(now time.Time) (Session, bool) {
	groups := make([]string, 0, len(c.srv.reg.member[c]))
	for g := range c.srv.reg.member[c] {
		groups = append(groups, g)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.ho
	if h.away || c.closing || !c.opened {
		return Session{}, false
	}
	acked := max(h.ackRecv, c.rb.first-1)
	h.last = now
	return Session{
		TokenHash: HashToken(c.token), ConnectionID: c.id, UserID: c.principal.ID, Protocol: c.protocol().Name(),
		Groups: groups, Acked: acked, Unacked: c.unackedBound(acked), Position: h.resumePosition(acked),
		Received: c.rb.latestIn, Owner: c.srv.instance, Epoch: h.epoch, Expires: now.Add(2 * c.srv.cfg.reattachWindow),
	}, true
}

// sessionChanged saves c's session soon, if it has one: its groups
// changed.
func (c *conn) sessionChanged() {
	if c.srv.saver == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ho != nil {
		c.srv.saver.mark(c)
	}
}

// refreshSession saves an attached connection's session again when its
// last save is a window old, so that it outlives its expiry while the
// connection lives.
func (c *conn) refreshSession(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ho != nil && c.link != nil && now.Sub(c.ho.last) >= c.srv.cfg.reattachWindow {
		c.srv.saver.mark(c)
	}
}

// reclaim decides, with the store, whether a WebSocket re-attaching to a
// connection this instance holds may resume it here: only if no other
// instance claimed the session meanwhile. If one did, this copy ends
// quietly and the connection resumes from the store (now claimed for this
// instance). It reports whether the caller resumes c; if not, it answered.
func (s *Server) reclaim(w http.ResponseWriter, r *http.Request, c *conn) bool {
	c.mu.Lock()
	h := c.ho
	var epoch int64
	var saved bool
	if h != nil {
		epoch, saved = h.epoch, h.saved
	}
	c.mu.Unlock()
	if h == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), claimTimeout)
	sess, err := s.cfg.sessions.Claim(ctx, HashToken(c.token), c.principal.ID, s.instance, time.Now().Add(2*s.cfg.reattachWindow))
	cancel()
	switch {
	case err == nil && sess.Epoch == epoch:
		return true
	case errors.Is(err, ErrNoSession) && !saved:
		return true // not saved yet: nobody else can hold it
	case err == nil:
		c.handAway()
		s.resumeSession(w, r, c.principal, &sess)
	case errors.Is(err, ErrNoSession):
		c.handAway()
		http.Error(w, "No Connection with that ID", http.StatusNotFound)
	default:
		s.tel.handoffs.WithLabelValues("error").Inc()
		level.Error(s.cfg.logger).Log("msg", "cannot claim a session on re-attach", "connection_id", c.id, "err", err)
		http.Error(w, "Cannot resume the connection now.", http.StatusServiceUnavailable)
	}
	return false
}

// handAway ends this instance's copy of a connection another instance
// claimed: without a word to the client, a Delete or OnDisconnected.
func (c *conn) handAway() {
	c.mu.Lock()
	c.ho.away = true
	c.mu.Unlock()
	c.abort(reasonHandedOff)
}

// serveHandoff answers a WebSocket request whose connection token this
// instance does not know: with a SessionStore, the connection may be
// another instance's, to resume here.
func (s *Server) serveHandoff(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	token := r.URL.Query().Get("id")
	ctx, cancel := context.WithTimeout(r.Context(), claimTimeout)
	sess, err := s.cfg.sessions.Claim(ctx, HashToken(token), p.ID, s.instance, time.Now().Add(2*s.cfg.reattachWindow))
	cancel()
	switch {
	case errors.Is(err, ErrSessionUser):
		s.tel.authFailures.Inc()
		s.tel.handoffs.WithLabelValues("forbidden").Inc()
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	case errors.Is(err, ErrNoSession):
		http.Error(w, "No Connection with that ID", http.StatusNotFound)
		return
	case err != nil:
		s.tel.handoffs.WithLabelValues("error").Inc()
		level.Error(s.cfg.logger).Log("msg", "cannot claim a session", "err", err)
		http.Error(w, "Cannot resume the connection now.", http.StatusServiceUnavailable)
		return
	}
	sess.TokenHash = HashToken(token)
	s.resumeSession(w, r, p, &sess)
}

// resumeSession recreates a claimed connection on this instance with the
// WebSocket of r, and serves it.
func (s *Server) resumeSession(w http.ResponseWriter, r *http.Request, p *Principal, sess *Session) {
	token := r.URL.Query().Get("id")
	proto := protocol.ByName(sess.Protocol)
	if proto == nil || sess.Acked < 0 || sess.Unacked < 0 || sess.Received < 0 {
		s.tel.handoffs.WithLabelValues("error").Inc()
		level.Error(s.cfg.logger).Log("msg", "session not understood", "connection_id", sess.ConnectionID, "protocol", sess.Protocol)
		http.Error(w, "No Connection with that ID", http.StatusNotFound)
		return
	}
	c := newConn(s, sess.ConnectionID, token, p)
	c.stateful = true
	c.pendingKey = pendingKey(r, p)
	if err := s.reg.addResumed(c); err != nil {
		if err == errShuttingDown {
			http.Error(w, "Server is shutting down.", http.StatusServiceUnavailable)
		} else {
			http.Error(w, "Connection ID is already in use.", http.StatusConflict)
		}
		return
	}
	if _, ok := s.bind(w, c, WebSockets); !ok {
		c.abort(reasonHandshake)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  s.origins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.logf(c, "websocket upgrade failed", err)
		c.abort(reasonClient)
		s.workers.Done()
		return
	}
	ws.SetReadLimit(-1)
	l := c.newLink(ws)

	pad := sess.Unacked
	c.proto.Store(&proto)
	c.mu.Lock()
	// The writer sends Sequence Acked+1 and the padding first (resend).
	c.rb = &replay{first: sess.Acked + 1, pad: pad, padFrame: padFrame(proto), resend: true,
		nextIn: sess.Received + 1, latestIn: sess.Received, lenient: true}
	c.rejoin = make(chan *wsLink, 1)
	c.ho = &handoff{epoch: sess.Epoch, ackRecv: sess.Acked, ackedPos: sess.Position, saved: true, resumed: true, replayFrom: sess.Position, last: time.Now()}
	c.greeted = true   // no handshake answer: the client has had it
	c.synthetic = true // the engine gets its handshake from the dispatcher
	c.link = l
	c.kick()
	c.mu.Unlock()
	c.pos.catching = s.cfg.log != nil // Publish leaves it to the replay (resumed)
	c.resumeGroups = sess.Groups
	c.readFrom(l)
	s.tel.handoffs.WithLabelValues("resumed").Inc()
	level.Debug(s.cfg.logger).Log("msg", "resumed from another instance", "connection_id", c.id, "acked", sess.Acked, "padding", pad, "position", sess.Position)
	s.spawn(func() { s.serveWebSocketConn(c) })
}

// resumed completes a resumed connection once the engine has it live: it
// rejoins its groups, saves the session as this instance's, and replays
// the Log from the session's position, then goes live. It runs in place of
// OnConnected.
func (s *Server) resumed(c *conn) {
	s.reg.mu.Lock()
	for _, g := range c.resumeGroups {
		s.reg.join(c, g)
	}
	s.reg.mu.Unlock()
	s.saver.mark(c)
	if s.cfg.log == nil || !s.reg.track(&s.catchUps) {
		return
	}
	ps := &c.pos
	s.reg.mu.RLock()
	ps.mu.Lock()
	r := &catchUpRun{s: s, c: c, p: c.protocol(), lo: ps.lo, top: ps.last, joins: ps.joins}
	ps.mu.Unlock()
	s.reg.mu.RUnlock()
	c.mu.Lock()
	from := c.ho.replayFrom
	c.mu.Unlock()
	go func() {
		defer s.catchUps.Done()
		c.capResume(from)
		defer c.uncapResume()
		res, err := r.run(c.ctx, from)
		if err != nil {
			level.Warn(s.cfg.logger).Log("msg", "resumed connection: replay failed; live from now", "connection_id", c.id, "err", err)
			return
		}
		level.Debug(s.cfg.logger).Log("msg", "resumed connection replayed", "connection_id", c.id, "from", from, "to", res.Position, "reload", res.Reload)
	}()
}

// padFrame is one padding message of protocol p.
func padFrame(p protocol.Protocol) []byte {
	b, _ := p.Completion(padID, nil, false, "")
	return b
}

// padding returns n padding messages as one frame.
func (r *replay) padding() []byte { return bytes.Repeat(r.padFrame, int(r.pad)) }

// sessionEnded runs when c ends, with a SessionStore: it reports whether
// OnDisconnected may run now. A copy claimed by another instance never
// runs it; one this instance may still own deletes its session first, and
// runs it then, from the saver, if it was still its own.
func (s *Server) sessionEnded(c *conn) (hookNow bool) {
	c.mu.Lock()
	h := c.ho
	away := h != nil && h.away
	c.mu.Unlock()
	switch {
	case h == nil:
		return true
	case away:
		return false
	case s.hardClose.Load():
		// Close, not Shutdown: the session stays, for the client to
		// resume on another instance.
		return true
	}
	s.saver.remove(c)
	return false
}
