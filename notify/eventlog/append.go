package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// maxRows is how many events one INSERT carries; a larger Append runs
// several statements in the same transaction.
const maxRows = 1000

// Append stores evs inside the caller's transaction x, so that they exist
// if and only if x commits; after COMMIT call Committed, so that they get
// positions at once rather than at the next poll. With a nil x, Append
// runs in its own transaction on the log's database and calls Committed
// itself.
//
// Every event must have a positive LeadID, a Type and a valid JSON Payload;
// otherwise Append returns an error wrapping ErrInvalid and stores nothing
// (the transaction stays usable). Position and Time are assigned by the log.
//
// On PostgreSQL one lead's events are positioned in the order their
// transactions commit, because a transaction appending for a lead first
// waits for every other transaction that appended for it or wrote its row
// to end. Append takes, in the statement that inserts the events, a
// transaction-scoped advisory lock per lead, held until x ends; with
// WithLeadTable it first locks the leads' rows FOR SHARE, so that it also
// waits for a writer of the row. Events of leads whose rows x wrote
// (Batch.Wrote, through AppendBatch) take neither: x holds their row
// locks already. Append once per transaction, as its last statement:
// appending again for other leads could deadlock with another transaction
// (PostgreSQL detects it and aborts one of them), as can two transactions
// each writing a lead and appending an event of the other's lead.
func (l *Log) Append(ctx context.Context, x Execer, evs ...Event) error {
	return l.append(ctx, x, evs, nil)
}

// AppendBatch is Append of b's events, with what b says the transaction
// wrote (Batch.Wrote): with WithLeadTable, the events of leads written in
// the lead table take no lock.
func (l *Log) AppendBatch(ctx context.Context, x Execer, b *Batch) error {
	evs, wrote := b.snapshot(l.cfg.leadTable)
	return l.append(ctx, x, evs, wrote)
}

func (l *Log) append(ctx context.Context, x Execer, evs []Event, wrote map[int64]bool) error {
	if len(evs) == 0 {
		return nil
	}
	for i := range evs {
		if err := validate(i, &evs[i]); err != nil {
			return err
		}
	}
	if l.closed() && x == nil {
		return ErrClosed
	}
	own := x == nil
	if own {
		x = l.db
	}
	for _, c := range l.chunks(evs, wrote) {
		if _, err := x.ExecContext(ctx, c.query, c.args...); err != nil {
			return fmt.Errorf("eventlog: append %d events to %s: %w", len(evs), l.cfg.table, err)
		}
	}
	l.tel.appended.Add(float64(len(evs)))
	if own {
		l.Committed()
	}
	return nil
}

// A chunk is one INSERT of an Append.
type chunk struct {
	query string
	args  []any
}

// chunks returns the statements appending evs, maxRows events each; the
// first takes the locks of all of them.
func (l *Log) chunks(evs []Event, wrote map[int64]bool) []chunk {
	out := make([]chunk, 0, (len(evs)+maxRows-1)/maxRows)
	if !l.pg {
		now := time.Now().UnixMicro()
		for start := 0; start < len(evs); start += maxRows {
			part := evs[start:min(start+maxRows, len(evs))]
			args := make([]any, 0, 5*len(part))
			for _, e := range part {
				args = append(args, e.LeadID, e.Type, e.Audience, string(e.Payload), now)
			}
			out = append(out, chunk{l.sql.insert(len(part), false, false), args})
		}
		return out
	}
	for start := 0; start < len(evs); start += maxRows {
		part := evs[start:min(start+maxRows, len(evs))]
		ids := make([]int64, len(part))
		types := make([]string, len(part))
		auds := make([]string, len(part))
		pays := make([]string, len(part))
		for i, e := range part {
			ids[i], types[i], auds[i], pays[i] = e.LeadID, e.Type, e.Audience, string(e.Payload)
		}
		args := []any{ids, types, auds, pays}
		var lock, share bool
		if start == 0 {
			keys, rows := l.locks(evs, wrote)
			if share = len(rows) > 0; share {
				args = append(args, rows)
			}
			if lock = len(keys) > 0; lock {
				args = append(args, l.n.ns, keys)
			}
		}
		out = append(out, chunk{l.sql.insert(len(part), lock, share), args})
	}
	return out
}

// locks returns what the events of leads not in wrote lock: their advisory
// keys, sorted and deduplicated, and, with WithLeadTable, their lead ids,
// sorted and deduplicated. Distinct leads may share a key (leads beyond
// 2^31): they then only wait for each other.
func (l *Log) locks(evs []Event, wrote map[int64]bool) (keys []int32, rows []int64) {
	keys = make([]int32, 0, len(evs))
	for _, e := range evs {
		if wrote[e.LeadID] {
			continue
		}
		keys = append(keys, int32(e.LeadID^e.LeadID>>32))
		if l.sql.lead != "" {
			rows = append(rows, e.LeadID)
		}
	}
	slices.Sort(keys)
	slices.Sort(rows)
	return slices.Compact(keys), slices.Compact(rows)
}

// AppendCommit appends b's events in the transaction open on c (begun with
// a plain BEGIN by the caller) and commits it, in one round trip with the
// pgx driver (two statements otherwise), then calls Committed. On error the
// transaction may still be open: roll it back. The error says whether the
// append or the COMMIT failed; after a failed append PostgreSQL skips the
// COMMIT and leaves the transaction open in the aborted state.
func (l *Log) AppendCommit(ctx context.Context, c *sql.Conn, b *Batch) error {
	evs, wrote := b.snapshot(l.cfg.leadTable)
	for i := range evs {
		if err := validate(i, &evs[i]); err != nil {
			return err
		}
	}
	if len(evs) > 0 && l.pg && l.pipeline.Load() {
		err := l.appendCommitPipelined(ctx, c, evs, wrote)
		if !errors.Is(err, errNotPgx) {
			if err == nil {
				l.Committed()
			}
			return err
		}
	}
	if err := l.append(ctx, c, evs, wrote); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("eventlog: commit: %w", err)
	}
	l.Committed()
	return nil
}

// appendCommitPipelined sends the INSERTs and the COMMIT as one pgx batch:
// a pipeline, one round trip. Within the caller's transaction block the
// batch's Sync commits nothing; a failing statement makes PostgreSQL skip
// the rest up to the Sync, the COMMIT among them.
func (l *Log) appendCommitPipelined(ctx context.Context, c *sql.Conn, evs []Event, wrote map[int64]bool) error {
	chunks := l.chunks(evs, wrote)
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		var pb pgx.Batch
		for _, ch := range chunks {
			pb.Queue(ch.query, ch.args...)
		}
		pb.Queue("COMMIT")
		br := sc.Conn().SendBatch(ctx, &pb)
		defer br.Close()
		for range chunks {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("eventlog: append %d events to %s: %w", len(evs), l.cfg.table, err)
			}
		}
		l.tel.appended.Add(float64(len(evs)))
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("eventlog: commit: %w", err)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("eventlog: commit: %w", err)
		}
		return nil
	})
}
