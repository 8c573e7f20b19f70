package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"
)

// The sequencer finds unstamped rows through the partial index on id of
// rows whose last is NULL. Stamping a row leaves its old version's entry
// in that index until vacuum removes it, and a scan from the smallest id
// walks every such entry: with autovacuum's default thresholds (a fifth of
// the table) a large log gathers millions between vacuums, and each
// stamping transaction would read them all. The sequencer therefore scans
// from a bound below which every row is known to be stamped.
//
// A row whose transaction has not committed is invisible to the
// sequencer, so the bound must never pass it. It is derived from the
// transactions themselves:
//   - a writer's INSERT gives its transaction an id (pg_current_xact_id)
//     before its row takes an id from the sequence;
//   - a stamping transaction reads the sequence's last value v, then, in
//     its next statement, takes its own transaction id x. A row with id
//     <= v took it before v was read, so its transaction's id is below x;
//   - a later stamping transaction whose snapshot's xmin (the oldest
//     transaction then in progress) is at least x sees every transaction
//     below x ended: its rows, if it committed, are visible. If it stamped
//     every unstamped row it saw (its batch was not full), every row with
//     id <= v is stamped: the bound becomes v+1.
//
// (A snapshot's list of in-progress transactions would not do: it leaves
// out those whose ids are above its xmax, which PostgreSQL sets from the
// latest transaction to end, not from the latest id handed out.)
//
// The bound also trails by boundLag: a writer that took its row's id and
// its transaction's id in the other order (a version of this package
// before the bound, or an INSERT written by hand) took both in the same
// statement, microseconds apart, and is covered by then.
//
// A long transaction anywhere in the cluster holds the bound back (it
// keeps xmin low), as it holds back vacuum. The bound lives in the
// sequencer's memory: a sequencer that starts, on any instance, scans
// from the beginning once.
type bound struct {
	on      bool         // the log's sequence hands out ids one by one (CACHE 1)
	seq     string       // the sequence, as a regclass literal
	from    atomic.Int64 // every row with a smaller id is stamped
	pending *mark        // the sequence value and transaction of an earlier stamping
	off     atomic.Bool  // tests and benchmarks: scan from the first id
}

type mark struct {
	v, x int64
	at   time.Time
}

// boundLag is how long a mark waits before the bound may pass it.
const boundLag = time.Second

// init finds the log's id sequence; the bound is on when it hands out ids
// one at a time (a sequence with a CACHE hands out, from a session's
// cache, ids below its last value after the snapshot).
func (b *bound) init(ctx context.Context, db *sql.DB, n names) error {
	var cache int64
	err := db.QueryRowContext(ctx, `SELECT s.seqrelid::regclass::text, s.seqcache FROM pg_sequence AS s
		WHERE s.seqrelid = pg_get_serial_sequence($1, 'id')::regclass`, n.table).Scan(&b.seq, &cache)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // no sequence of its own: no bound
	}
	b.on = err == nil && cache == 1
	return err
}

// arg is the lock statement's sequence argument: NULL without a bound.
func (b *bound) arg() any {
	if !b.on || b.off.Load() {
		return nil
	}
	return b.seq
}

// scan is the id the stamping statement scans from.
func (b *bound) scan() int64 {
	if b.off.Load() {
		return 0
	}
	return b.from.Load()
}

// observe takes what a stamping transaction saw: the sequence value v
// read before its snapshot, the snapshot's xmin, its own transaction id x
// (0 when it took none: no id was handed out from the bound on, v is
// below it), and whether it stamped every unstamped row it saw
// (complete).
func (b *bound) observe(v, xmin, x int64, complete bool) {
	if !b.on || b.off.Load() {
		return
	}
	if v < b.from.Load()-1 {
		// The sequence went back (ALTER SEQUENCE ... RESTART, a restored
		// table): ids below the bound are being handed out again.
		b.from.Store(0)
		b.pending = nil
	}
	now := time.Now()
	if b.pending == nil {
		if x != 0 {
			b.pending = &mark{v, x, now}
		}
		return // its own xmin is below its x
	}
	if complete && xmin >= b.pending.x && now.Sub(b.pending.at) >= boundLag {
		b.from.Store(max(b.from.Load(), b.pending.v+1))
		b.pending = nil
		if x != 0 && v > b.from.Load()-1 {
			b.pending = &mark{v, x, now}
		}
	}
}
