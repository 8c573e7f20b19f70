package eventlog

import (
	"context"
	"time"
)

// Prune deletes the events appended before cutoff now, as the pruner does
// at each interval.
func Prune(ctx context.Context, l *Log, cutoff time.Time) (int64, error) { return l.prune(ctx, cutoff) }

// OnPruneBatch makes the pruner call f with each batch's transaction open,
// after its DELETE and before its COMMIT.
func OnPruneBatch(l *Log, f func()) { l.testPruneHook = f }

// Table returns the quoted table name.
func (l *Log) Table() string { return l.n.table }

// WithoutPipeline makes l's sequencer use database/sql transactions, and
// AppendCommit two statements, as with drivers other than pgx, instead of
// pgx pipelines.
func WithoutPipeline(l *Log) { l.pipeline.Store(false) }

// WaitHead waits until l has positioned events up to want, woken as a
// tailer of this process is.
func WaitHead(ctx context.Context, l *Log, want uint64) error {
	for {
		wake := l.stamped.wait()
		h, err := l.Head(ctx)
		if err != nil || h >= want {
			return err
		}
		select {
		case <-wake:
		case <-time.After(l.cfg.pollInterval):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Bound returns the id below which l's sequencer knows every row stamped.
func Bound(l *Log) int64 { return l.bound.scan() }

// WithoutBound makes l's sequencer scan for unstamped rows from the first
// id, as before it kept a bound.
func WithoutBound(l *Log) { l.bound.off.Store(true) }

// WithBound undoes WithoutBound.
func WithBound(l *Log) { l.bound.off.Store(false) }
