package eventlog

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
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
// On PostgreSQL, Append locks the events' leads (transaction-scoped
// advisory locks, in the statement that inserts them) until x ends, so
// that one lead's events are positioned in the order their transactions
// commit: a second transaction appending for the same lead waits for the
// first one's COMMIT. Append once per transaction, as its last statement:
// appending again for other leads could deadlock with another transaction
// (PostgreSQL detects it and aborts one of them).
func (l *Log) Append(ctx context.Context, x Execer, evs ...Event) error {
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
	var keys string
	if l.pg {
		keys = leadKeys(evs)
	}
	now := time.Now().UnixMicro()
	for start := 0; start < len(evs); start += maxRows {
		chunk := evs[start:min(start+maxRows, len(evs))]
		lock := l.pg && start == 0
		args := make([]any, 0, 2+5*len(chunk))
		if lock {
			args = append(args, l.n.ns, keys)
		}
		for _, e := range chunk {
			args = append(args, e.LeadID, e.Type, e.Audience, string(e.Payload))
			if !l.pg {
				args = append(args, now)
			}
		}
		if _, err := x.ExecContext(ctx, l.sql.insert(len(chunk), lock), args...); err != nil {
			return fmt.Errorf("eventlog: append %d events to %s: %w", len(evs), l.cfg.table, err)
		}
	}
	l.tel.appended.Add(float64(len(evs)))
	if own {
		l.Committed()
	}
	return nil
}

// AppendBatch is Append of b's events, with what b says the transaction
// wrote (Batch.Wrote).
func (l *Log) AppendBatch(ctx context.Context, x Execer, b *Batch) error {
	return l.Append(ctx, x, b.Events()...)
}

// AppendCommit appends b's events in the transaction open on c (begun with
// a plain BEGIN by the caller) and commits it, in one round trip with the
// pgx driver (two statements otherwise), then calls Committed. On error the
// transaction may still be open: roll it back.
func (l *Log) AppendCommit(ctx context.Context, c *sql.Conn, b *Batch) error {
	if err := l.AppendBatch(ctx, c, b); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("eventlog: commit: %w", err)
	}
	l.Committed()
	return nil
}

// leadKeys returns the lock keys of evs' leads as a sorted, deduplicated
// int4 array literal. Distinct leads may share a key (leads beyond 2^31):
// they then only wait for each other.
func leadKeys(evs []Event) string {
	ks := make([]int32, len(evs))
	for i, e := range evs {
		ks[i] = int32(e.LeadID ^ e.LeadID>>32)
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(k), 10))
	}
	b.WriteByte('}')
	return b.String()
}
