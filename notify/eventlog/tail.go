package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Tail calls fn with every event positioned after after, in position order
// and in batches of at most 1000, each event exactly once, until ctx is
// done (it then returns ctx.Err()), fn returns an error (Tail returns it)
// or the log is closed (ErrClosed). It waits for new events between reads,
// woken by pg_notify, by Committed, or by the poll interval. Read errors are
// logged and retried with backoff; the cursor is kept, so nothing is
// skipped or repeated. When the events after the cursor have been pruned
// Tail returns an error wrapping ErrPruned.
func (l *Log) Tail(ctx context.Context, after uint64, fn func([]Event) error) error {
	poll := time.NewTimer(l.cfg.pollInterval)
	defer poll.Stop()
	fails := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.closed() {
			return ErrClosed
		}
		wake := l.stamped.wait()
		evs, err := l.Read(ctx, after, defaultLimit)
		if err == nil && len(evs) > 0 && evs[0].Position != after+1 {
			err = l.checkGap(ctx, after)
		}
		if errors.Is(err, ErrPruned) {
			return err
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fails++
			l.warn.Log("msg", "tail read failed; retrying", "table", l.cfg.table, "after", after, "err", err)
			l.sleep(ctx, backoff(fails, 5*time.Second))
			continue
		}
		fails = 0
		if len(evs) > 0 {
			if err := fn(evs); err != nil {
				return err
			}
			after = evs[len(evs)-1].Position
			if len(evs) == defaultLimit {
				continue // more may be waiting
			}
		}
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(l.cfg.pollInterval)
		select {
		case <-wake:
		case <-poll.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.ctx.Done():
			return ErrClosed
		}
	}
}

// checkGap is called when the first event after after is not after+1:
// positions below the floor were pruned; otherwise (SQLite does not promise
// contiguous positions) the gap is no loss.
func (l *Log) checkGap(ctx context.Context, after uint64) error {
	f, err := l.Floor(ctx)
	if err != nil {
		return err
	}
	if after < f {
		return fmt.Errorf("eventlog: tail after %d: pruned up to %d: %w", after, f, ErrPruned)
	}
	return nil
}
