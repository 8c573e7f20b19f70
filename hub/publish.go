package hub

import (
	"sync"

	"github.com/go-kit/log/level"
)

// Positioned delivery: entries of an ordered log, each with a position that
// every instance agrees on, delivered to this instance's connections in
// position order, and replayed from the log on request (CatchUp, catchup.go)
// with no gap and no duplicate where the replay meets live delivery.

// An Entry is one positioned message: Target(Args...) for the connections
// in any of Groups, narrowed, if Filter is not "", by the filter registered
// under that name with [WithFilter], asked with Arg, as
// [Server.GroupsFiltered] does.
type Entry struct {
	// Position orders entries: increasing in delivery order, never 0.
	Position    uint64
	Groups      []string
	Filter, Arg string
	Target      string
	Args        []any
}

// Publish delivers e to this instance's connections that may see it (never
// through the [Backplane]: every instance publishes the log itself), through
// each connection's ordered queue, encoded once per protocol. Entries must
// be published in increasing Position order, and only once they can be read
// from the [Log] given to [WithLog]: a connection catching up reads what was
// published meanwhile from the log. An entry at or below a position a
// connection was already sent is not sent again, so publishing an entry
// twice is harmless; a connection that is catching up is sent e by its
// replay, not by Publish. Like Send, Publish never waits for a client.
func (s *Server) Publish(e Entry) {
	m := outMessage{target: e.Target, args: e.Args, pos: e.Position}
	if e.Filter != "" {
		m.keep = s.filterFunc(e.Filter, e.Arg)
	}
	s.reg.publish(e.Position, e.Groups, func(c *conn) {
		ps := &c.pos
		ps.mu.Lock()
		if !ps.catching && e.Position > ps.last {
			ps.last = e.Position
			m.deliver(s, c)
		}
		ps.mu.Unlock()
	})
	if m.failed != nil {
		level.Error(s.cfg.logger).Log("msg", "cannot encode message", "target", e.Target, "position", e.Position, "err", m.failed)
	}
}

// positions is a connection's part in positioned delivery.
//
// Lock order: registry, then positions.mu, then conn.mu.
type positions struct {
	mu sync.Mutex
	// last is the highest position sent to the connection, or passed over
	// (filtered away, or read by its replay); Publish sends only above it.
	last uint64
	// catching: a replay runs; Publish leaves the connection to it.
	catching bool
	// lo: every entry in (lo, last] that the connection may see through a
	// group it joined before that entry (joined) has been sent to it. A
	// replay skips those, to send nothing twice.
	lo uint64
	// joined is, per group the connection is in, the published position
	// (or last, if higher) when it joined: entries above it reached the
	// connection through that group. Under registry.mu.
	joined map[string]uint64
	// joins counts changes to joined, so that a catch-up can tell whether
	// the connection's groups changed while it ran. Under registry.mu.
	joins uint64
	// room wakes a catch-up waiting for room in the queue. Under conn.mu.
	room chan struct{}
}

// stamp records when c joins a group; r.mu is held.
func (r *registry) stamp(c *conn, group string) {
	ps := &c.pos
	if _, in := ps.joined[group]; in {
		return
	}
	ps.mu.Lock()
	at := max(r.published.Load(), ps.last)
	ps.mu.Unlock()
	if ps.joined == nil {
		ps.joined = map[string]uint64{}
	}
	ps.joined[group] = at
	ps.joins++
}

// unstamp forgets a group c left; r.mu is held.
func (r *registry) unstamp(c *conn, group string) {
	if _, in := c.pos.joined[group]; in {
		delete(c.pos.joined, group)
		c.pos.joins++
	}
}

// publish records pos as published and calls f for every live connection
// in any of the groups, once per group it is in (f ignores the repeats by
// position), with the registry read-locked, so that a join sees each
// publish either wholly before it or wholly after.
func (r *registry) publish(pos uint64, groups []string, f func(*conn)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for cur := r.published.Load(); pos > cur && !r.published.CompareAndSwap(cur, pos); cur = r.published.Load() {
	}
	for _, g := range groups {
		for c := range r.groups[g] {
			f(c)
		}
	}
}
