package eventlog

import (
	"context"
	"strconv"
	"time"
)

// stampBatch is how many rows one stamping statement positions;
// stampBatches how many such statements one transaction runs at most, so
// that a backlog becomes readable in steps rather than in one long
// transaction.
const (
	stampBatch   = 1000
	stampBatches = 10
)

// sequence is the sequencer's goroutine (PostgreSQL): woken by Committed,
// by a pg_notify of another instance and by the poll interval, it stamps
// committed rows until none is left.
func (l *Log) sequence() {
	poll := time.NewTicker(l.cfg.pollInterval)
	defer poll.Stop()
	fails := 0
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
		case <-poll.C:
		}
		for {
			more, err := l.stamp(l.ctx)
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

// stamp positions committed unstamped rows in one transaction and reports
// whether more may be waiting. Positions are given under a global advisory
// lock, by one sequencer at a time across all instances, only to rows
// whose transactions have committed; a reader reading "position > last"
// therefore never skips an event: a transaction that commits late gets a
// later position. The pg_notify is sent in the same transaction, so it is
// delivered with the stamps' COMMIT; writers never notify (NOTIFY takes a
// cluster-wide lock at commit).
func (l *Log) stamp(ctx context.Context) (more bool, err error) {
	var pending bool
	if err := l.db.QueryRowContext(ctx, l.sql.pending).Scan(&pending); err != nil || !pending {
		return false, err
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, l.sql.lock, l.n.seqLock); err != nil {
		return false, err
	}
	var (
		total, head int64
		lag         float64
	)
	for range stampBatches {
		var n int64
		if err := tx.QueryRowContext(ctx, l.sql.stamp, stampBatch).Scan(&n, &head, &lag); err != nil {
			return false, err
		}
		if n > 0 {
			l.tel.lag.Observe(lag)
		}
		total += n
		if more = n == stampBatch; !more {
			break
		}
	}
	if total == 0 {
		return false, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, l.sql.notify, l.n.channel, strconv.FormatInt(head, 10)); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	l.tel.stamped.Add(float64(total))
	l.stamped.fire()
	return more, nil
}
