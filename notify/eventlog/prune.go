package eventlog

import (
	"context"
	"database/sql"
	"time"
)

// pruneBatch is how many rows one prune transaction deletes at most (on
// PostgreSQL a row holds the events of one Append, on SQLite one event):
// small, so that every transaction is short and the table's writers, which
// never touch the rows being deleted, are not held up.
const pruneBatch = 1000

// pruneLoop is the pruner's goroutine: at every prune interval it deletes
// the events older than the retention.
func (l *Log) pruneLoop() {
	t := time.NewTicker(l.cfg.pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		if _, err := l.prune(l.ctx, time.Now().Add(-l.cfg.retention)); err != nil && !l.closed() {
			l.warn.Log("msg", "pruning events failed; retrying at the next interval", "table", l.cfg.table, "err", err)
		}
	}
}

// prune deletes the events appended before cutoff, in batches by position,
// and returns how many it deleted.
func (l *Log) prune(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		n, err := l.pruneOnce(ctx, cutoff)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// pruneOnce deletes the next batch and returns how many events it held:
// the rows from the floor up to the highest position among the next
// pruneBatch rows whose time is before cutoff
// (appending times follow positions closely but not exactly, so an event a
// moment younger than cutoff may go with its neighbours; none is kept
// below the floor). The floor is raised in the same transaction, so Floor
// is exact: every event above it is there.
func (l *Log) pruneOnce(ctx context.Context, cutoff time.Time) (int64, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if !l.pg {
		// Take SQLite's write lock first (waiting as the busy timeout
		// says): a read transaction that writes later cannot wait for it.
		if _, err := tx.ExecContext(ctx, `UPDATE `+l.n.meta+` SET floor = floor WHERE id = 1`); err != nil {
			return 0, err
		}
	}
	var floor, upto int64
	if err := tx.QueryRowContext(ctx, l.sql.pruneFloor).Scan(&floor); err != nil {
		return 0, err
	}
	var c any = cutoff
	if !l.pg {
		c = cutoff.UnixMicro()
	}
	if err := tx.QueryRowContext(ctx, l.sql.pruneUpto, floor, pruneBatch, c).Scan(&upto); err != nil {
		return 0, err
	}
	if upto <= floor {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, l.sql.pruneMeta, upto); err != nil {
		return 0, err
	}
	var n int64
	if l.pg {
		err = tx.QueryRowContext(ctx, l.sql.pruneDelete, floor, upto).Scan(&n)
	} else {
		var res sql.Result
		if res, err = tx.ExecContext(ctx, l.sql.pruneDelete, floor, upto); err == nil {
			n, err = res.RowsAffected()
		}
	}
	if err != nil {
		return 0, err
	}
	if l.testPruneHook != nil {
		l.testPruneHook()
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	l.tel.pruned.Add(float64(n))
	return n, nil
}

var _ Execer = (*sql.Tx)(nil)
