package eventlog

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// stampBatch is how many rows (Appends) one stamping transaction positions
// at most, so that a backlog becomes readable in steps rather than in one
// long transaction.
const stampBatch = 1000

// stampEvery paces the sequencer: after stamping some rows it waits this
// long before the next transaction, so that under load one transaction (one
// WAL flush, one pg_notify) positions the commits of several writers, at
// the price of at most this much latency. A stamping costs about 1 ms of
// the database's time whatever its size; against 5 ms, 10 ms raised the
// write-cost ratios of BenchmarkEventLog* in ./interceptor by 0.03–0.06.
const stampEvery = 10 * time.Millisecond

// sequence is the sequencer's goroutine (PostgreSQL): woken by Committed,
// by a pg_notify of another instance and by the poll interval, it stamps
// committed rows until none is left.
func (l *Log) sequence() {
	poll := time.NewTicker(l.cfg.pollInterval)
	defer poll.Stop()
	fails := 0
	var last time.Time // when rows were last stamped
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
		case <-poll.C:
		}
		if wait := stampEvery - time.Since(last); wait > 0 && !l.sleep(l.ctx, wait) {
			return
		}
		for {
			n, more, err := l.stamp(l.ctx)
			if n > 0 {
				last = time.Now()
			}
			if err != nil {
				if l.closed() {
					return
				}
				fails++
				l.warn.Log("msg", "stamping events failed; retrying", "table", l.cfg.table, "err", err)
				if !l.sleep(l.ctx, backoff(fails, 5*time.Second)) {
					return
				}
				continue
			}
			fails = 0
			if !more {
				break
			}
		}
	}
}

// stamp positions committed unstamped rows in one transaction, returning
// how many events they hold, and reports whether more may be waiting. Positions are given under a global advisory
// lock, by one sequencer at a time across all instances, only to rows
// whose transactions have committed; a reader reading "position > last"
// therefore never skips an event: a transaction that commits late gets a
// later position. The pg_notify is sent in the same transaction, so it is
// delivered with the stamps' COMMIT; writers never notify (NOTIFY takes a
// cluster-wide lock at commit).
func (l *Log) stamp(ctx context.Context) (n int64, more bool, err error) {
	var r stampResult
	if l.pipeline.Load() {
		r, err = l.stampPipelined(ctx)
		if errors.Is(err, errNotPgx) {
			l.pipeline.Store(false)
			r, err = l.stampTx(ctx)
		}
	} else {
		r, err = l.stampTx(ctx)
	}
	if err != nil {
		return 0, false, err
	}
	l.bound.observe(r.v, r.xmin, r.x, r.rows < stampBatch)
	if r.n == 0 {
		return 0, false, nil
	}
	l.head.Store(r.head)
	l.tel.lag.Observe(r.lag)
	l.tel.stamped.Add(float64(r.n))
	l.stamped.fire()
	return r.n, r.rows == stampBatch, nil
}

type stampResult struct {
	rows, n, head int64 // rows and events stamped, the new head
	lag           float64
	v, xmin, x    int64 // the id sequence's value before the snapshot, its xmin, the transaction's id (bound)
}

// stampPipelined runs the lock and the stamping statement in one round
// trip: a pgx batch is one implicit transaction (up to its Sync), and each
// statement in it takes its own snapshot.
func (l *Log) stampPipelined(ctx context.Context) (r stampResult, err error) {
	c, err := l.db.Conn(ctx)
	if err != nil {
		return r, err
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		var b pgx.Batch
		b.Queue(l.sql.lock, l.n.seqLock, l.bound.arg())
		b.Queue(l.sql.stamp, stampBatch, l.n.channel, l.bound.scan(), l.bound.arg())
		br := sc.Conn().SendBatch(ctx, &b)
		err := br.QueryRow().Scan(nil, nil, nil, &r.v)
		if err == nil {
			var notified int64
			err = br.QueryRow().Scan(&r.rows, &r.n, &r.head, &r.lag, &notified, &r.xmin, &r.x)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil && sc.Conn().PgConn().TxStatus() != 'I' {
			// Not back to idle: do not hand the connection to anyone else.
			return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
		}
		return err
	})
	return r, err
}

// stampTx is stampPipelined through database/sql, for drivers other than
// pgx: BEGIN, lock, stamp, COMMIT.
func (l *Log) stampTx(ctx context.Context) (r stampResult, err error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return r, err
	}
	defer tx.Rollback()
	var a, b, c any
	if err := tx.QueryRowContext(ctx, l.sql.lock, l.n.seqLock, l.bound.arg()).Scan(&a, &b, &c, &r.v); err != nil {
		return r, err
	}
	var notified int64
	if err := tx.QueryRowContext(ctx, l.sql.stamp, stampBatch, l.n.channel, l.bound.scan(), l.bound.arg()).Scan(&r.rows, &r.n, &r.head, &r.lag, &notified, &r.xmin, &r.x); err != nil {
		return r, err
	}
	return r, tx.Commit()
}
