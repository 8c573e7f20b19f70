package eventlog

import (
	"context"
	"fmt"
	"time"
)

// defaultLimit is the page size of Read and History when given none.
const defaultLimit = 1000

// Read returns up to limit events with a position above after, in position
// order (limit <= 0: 1000). An empty result means none is positioned yet.
//
// Pruned events are gone without a trace in the result: a caller resuming
// from an old cursor checks Floor after Read (the floor only rises, so
// after >= Floor then proves the result started right after after).
func (l *Log) Read(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	evs, err := l.query(ctx, l.sql.read, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("eventlog: read after %d: %w", after, err)
	}
	return evs, nil
}

// History returns up to limit events of one lead with a position above
// after, in position order (limit <= 0: 1000): the lead's history as far
// as retention keeps it.
func (l *Log) History(ctx context.Context, leadID int64, after uint64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	evs, err := l.query(ctx, l.sql.history, leadID, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("eventlog: history of lead %d: %w", leadID, err)
	}
	return evs, nil
}

// Head returns the highest position assigned so far (0 for an empty log).
// It does not decrease when events are pruned.
func (l *Log) Head(ctx context.Context) (uint64, error) {
	var h int64
	if err := l.db.QueryRowContext(ctx, l.sql.head).Scan(&h); err != nil {
		return 0, fmt.Errorf("eventlog: head: %w", err)
	}
	return uint64(h), nil
}

// Floor returns the highest position pruned (0 when none was): the events
// at and below it may be gone. A reader whose cursor is below Floor cannot
// catch up and must start again from a snapshot.
func (l *Log) Floor(ctx context.Context) (uint64, error) {
	var f int64
	if err := l.db.QueryRowContext(ctx, l.sql.floor).Scan(&f); err != nil {
		return 0, fmt.Errorf("eventlog: floor: %w", err)
	}
	return uint64(f), nil
}

func (l *Log) query(ctx context.Context, q string, args ...any) ([]Event, error) {
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []Event
	for rows.Next() {
		var (
			e   Event
			pos int64
			p   []byte
		)
		if l.pg {
			err = rows.Scan(&pos, &e.LeadID, &e.Type, &e.Audience, &p, &e.Time)
			e.Time = e.Time.UTC()
		} else {
			var us int64
			err = rows.Scan(&pos, &e.LeadID, &e.Type, &e.Audience, &p, &us)
			e.Time = time.UnixMicro(us).UTC()
		}
		if err != nil {
			return nil, err
		}
		e.Position, e.Payload = uint64(pos), p
		evs = append(evs, e)
	}
	return evs, rows.Err()
}
