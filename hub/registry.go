package hub

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// registry tracks a Server's connections and their groups, as centrifuge's
// Hub does: by token from negotiate until a moment after the end, by id once
// a transport attaches, live once the handshake is done, by group and by
// user. One lock guards it all, so that a send sees each connection's groups
// as one consistent state and a connection is never half registered.
//
// Lock order: registry, then conn.
type registry struct {
	mu       sync.RWMutex
	tokens   map[string]*conn // by connection token, negotiated or attached
	ids      map[string]*conn // by connection id, attached to a transport
	live     map[string]*conn // by connection id, handshake done
	groups   map[string]map[*conn]struct{}
	users    map[string]map[*conn]struct{}
	member   map[*conn]map[string]struct{}
	pending  int            // negotiated, not yet attached
	pendBy   map[string]int // the same, by conn.pendingKey
	shutdown bool
	// published is the highest position Server.Publish was given; it
	// changes under mu read-locked (publish.go).
	published atomic.Uint64
}

// keepToken is how long the token of an ended connection stays known, so
// that a long poll arriving after the end gets 204 (closed) rather than 404.
const keepToken = 5 * time.Second

var (
	errShuttingDown   = errors.New("shutting down")
	errTooManyPending = errors.New("too many connections negotiated")
	// errTooManyPendingKey: by one user, or one address before authentication.
	errTooManyPendingKey = errors.New("too many connections negotiated by one user")
	errGone              = errors.New("no connection with that id")
	errInUse             = errors.New("connection id already in use")
	errResumable         = errors.New("a stateful connection: re-attach")
)

func newRegistry() *registry {
	return &registry{
		tokens: map[string]*conn{},
		ids:    map[string]*conn{},
		live:   map[string]*conn{},
		groups: map[string]map[*conn]struct{}{},
		users:  map[string]map[*conn]struct{}{},
		member: map[*conn]map[string]struct{}{},
		pendBy: map[string]int{},
	}
}

// add registers a negotiated connection under its token; maxPending caps
// those not yet attached, perKey those of one user or address
// (c.pendingKey) (0: no cap).
func (r *registry) add(c *conn, maxPending, perKey int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.shutdown:
		return errShuttingDown
	case perKey > 0 && r.pendBy[c.pendingKey] >= perKey:
		return errTooManyPendingKey
	case maxPending > 0 && r.pending >= maxPending:
		return errTooManyPending
	}
	r.tokens[c.token] = c
	r.pending++
	r.pendBy[c.pendingKey]++
	return nil
}

// addResumed registers a connection resumed from another instance, as
// negotiated and about to attach; errInUse if its token or id is known.
func (r *registry) addResumed(c *conn) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.shutdown:
		return errShuttingDown
	case r.ids[c.id] != nil:
		return errInUse
	case r.tokens[c.token] != nil && r.tokens[c.token].ended == 0:
		return errInUse
	}
	r.tokens[c.token] = c
	r.pending++
	r.pendBy[c.pendingKey]++
	return nil
}

// unpend counts c out of the pending ones; r.mu is held.
func (r *registry) unpend(c *conn) {
	r.pending--
	if n := r.pendBy[c.pendingKey] - 1; n > 0 {
		r.pendBy[c.pendingKey] = n
	} else {
		delete(r.pendBy, c.pendingKey)
	}
}

// attach binds a transport to a negotiated connection, once, or reports
// errResumable for a WebSocket that may take over a stateful connection's
// (conn.resume); attached runs
// under the lock, so that Close, which sets shutdown under it, never misses
// a connection it must wait for.
func (r *registry) attach(c *conn, t Transport, attached func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.shutdown:
		return errShuttingDown
	case c.ctx.Err() != nil:
		return errGone
	case c.attached && t == WebSockets && c.transport == WebSockets && c.resumable():
		return errResumable
	case c.attached:
		return errInUse
	}
	c.attached, c.transport = true, t
	r.unpend(c)
	if t != WebSockets {
		c.inbox = make(chan []byte, inboxSize)
	}
	r.ids[c.id] = c
	attached()
	return nil
}

// binding reports whether a transport is attached to c, and which.
func (r *registry) binding(c *conn) (bool, Transport) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return c.attached, c.transport
}

// open makes an attached connection live once the engine has taken its
// handshake: it joins DefaultGroup, and its handshake answer is queued
// before anything sent to it can be. It reports false for a connection
// that has ended meanwhile.
func (r *registry) open(id string) (*conn, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.ids[id]
	if c == nil || c.ctx.Err() != nil {
		return nil, false
	}
	r.live[c.id] = c
	c.opened = true
	r.join(c, DefaultGroup)
	c.accept()
	if uid := c.principal.ID; uid != "" {
		set := r.users[uid]
		if set == nil {
			set = map[*conn]struct{}{}
			r.users[uid] = set
		}
		set[c] = struct{}{}
	}
	return c, true
}

// closeConn takes an attached connection out of every group and out of the
// live ones; it reports whether it was live.
func (r *registry) closeConn(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leaveAll(c)
}

// remove forgets an ended connection but for its token (see sweep). It
// reports whether it was live until now and whether it had a transport.
func (r *registry) remove(c *conn, now time.Time) (wasLive, attached bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wasLive = r.leaveAll(c)
	if c.attached {
		delete(r.ids, c.id)
	} else {
		r.unpend(c) // negotiated, never attached
	}
	c.ended = now.UnixNano()
	return wasLive, c.attached
}

// byToken returns the connection a transport request names with ?id=.
func (r *registry) byToken(token string) *conn {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tokens[token]
}

// liveConn returns an open connection by id.
func (r *registry) liveConn(id string) *conn {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.live[id]
}

func (r *registry) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.live)
}

func (r *registry) shuttingDown() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.shutdown
}

// stop refuses new connections from now on and returns every connection
// that has a transport and every one that has none yet.
func (r *registry) stop() (attached, pending []*conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shutdown = true
	for _, c := range r.tokens {
		if c.attached {
			attached = append(attached, c)
		} else {
			pending = append(pending, c)
		}
	}
	return attached, pending
}

// scan returns, for the heartbeat, the attached connections (appended to
// cs), those negotiated longer than ttl ago and never attached, and forgets
// the tokens of connections that ended more than keepToken ago.
func (r *registry) scan(cs []*conn, now time.Time, ttl time.Duration) (attached, stale []*conn) {
	var expired bool
	r.mu.RLock()
	for _, c := range r.tokens {
		switch {
		case c.ended != 0:
			expired = expired || now.UnixNano()-c.ended > int64(keepToken)
		case c.attached:
			cs = append(cs, c)
		case now.Sub(c.created) > ttl:
			stale = append(stale, c)
		}
	}
	r.mu.RUnlock()
	if expired {
		r.mu.Lock()
		for t, c := range r.tokens {
			if c.ended != 0 && now.UnixNano()-c.ended > int64(keepToken) {
				delete(r.tokens, t)
			}
		}
		r.mu.Unlock()
	}
	return cs, stale
}

// addToGroup, removeFromGroup and inGroup act on live connections only.
func (r *registry) addToGroup(group, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.live[id]; c != nil {
		r.join(c, group)
	}
}

func (r *registry) removeFromGroup(group, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.live[id]; c != nil {
		r.leave(c, group)
	}
}

func (r *registry) inGroup(group, id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.live[id]
	_, ok := r.groups[group][c]
	return c != nil && ok
}

func (r *registry) groupCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.groups)
}

// joinLead adds a live connection to a Lead_ group unless it is in max of
// them already (0: no cap).
func (r *registry) joinLead(id, group string, max int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.live[id]
	if c == nil {
		return hubError("connection is closing")
	}
	if _, in := r.member[c][group]; in {
		return nil
	}
	if max > 0 && r.leadGroups(c) >= max {
		return hubError(fmt.Sprintf("cannot follow more than %d leads at once; leave one first", max))
	}
	r.join(c, group)
	return nil
}

// each calls f for every live connection of an audience, once per
// connection, with the registry read-locked: f must not call it.
func (r *registry) each(kind int, names []string, f func(*conn)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	switch kind {
	case toAll:
		for _, c := range r.live {
			f(c)
		}
	case toClient:
		if c := r.live[names[0]]; c != nil {
			f(c)
		}
	case toUser:
		for c := range r.users[names[0]] {
			f(c)
		}
	case toGroups:
		if len(names) == 1 {
			for c := range r.groups[names[0]] {
				f(c)
			}
			return
		}
		seen := map[*conn]struct{}{}
		for _, g := range names {
			for c := range r.groups[g] {
				if _, dup := seen[c]; !dup {
					seen[c] = struct{}{}
					f(c)
				}
			}
		}
	}
}

// join, leave, leaveAll and leadGroups run with r.mu held.
func (r *registry) join(c *conn, group string) {
	g := r.groups[group]
	if g == nil {
		g = map[*conn]struct{}{}
		r.groups[group] = g
	}
	g[c] = struct{}{}
	m := r.member[c]
	if m == nil {
		m = map[string]struct{}{}
		r.member[c] = m
	}
	m[group] = struct{}{}
	r.stamp(c, group)
	c.sessionChanged()
}

func (r *registry) leave(c *conn, group string) {
	if g := r.groups[group]; g != nil {
		delete(g, c)
		if len(g) == 0 {
			delete(r.groups, group)
		}
	}
	if m := r.member[c]; m != nil {
		delete(m, group)
	}
	r.unstamp(c, group)
	c.sessionChanged()
}

// leaveAll reports whether c was live.
func (r *registry) leaveAll(c *conn) bool {
	for g := range r.member[c] {
		r.leave(c, g)
	}
	delete(r.member, c)
	if uid := c.principal.ID; uid != "" {
		if set := r.users[uid]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(r.users, uid)
			}
		}
	}
	if r.live[c.id] != c {
		return false
	}
	delete(r.live, c.id)
	return true
}

// leadGroups counts the Lead_ groups c is in. Groups the application adds
// a connection to do not count against the cap.
func (r *registry) leadGroups(c *conn) int {
	n := 0
	for g := range r.member[c] {
		if strings.HasPrefix(g, "Lead_") {
			n++
		}
	}
	return n
}
