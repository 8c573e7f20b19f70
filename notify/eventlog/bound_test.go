package eventlog_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// The sequencer scans for unstamped rows from a bound below which every
// row is stamped. These tests hold it to never passing a row whose
// transaction is still open, however many stampings go by, and to moving
// on once it ends.

// TestBoundWaitsForOpenTransactions: transactions hold rows with low ids
// open — one whose Append was its first statement, one that wrote
// before, one inside a savepoint, with the sequencer pipelined and not —
// while others commit and are stamped, many times over; each open one's
// event is positioned when it commits, after the others.
func TestBoundWaitsForOpenTransactions(t *testing.T) {
	for _, noPipeline := range []bool{false, true} {
		name := "pipelined"
		if noPipeline {
			name = "two statements"
		}
		t.Run(name, func(t *testing.T) {
			db := pgDB.open(t)
			s := sqlDB(t, db)
			l := openLog(t, db, table(), eventlog.WithPollInterval(10*time.Millisecond))
			if noPipeline {
				eventlog.WithoutPipeline(l)
			}
			ctx := t.Context()
			rows := leadsTable(t, s, table(), 1)
			open := map[string]func(tx *sql.Tx) error{
				"append first": func(tx *sql.Tx) error { return l.Append(ctx, tx, ev(11, "OPEN", payload{W: 1})) },
				"wrote before": func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, `UPDATE `+rows+` SET status = 'x'`); err != nil {
						return err
					}
					return l.Append(ctx, tx, ev(12, "OPEN", payload{W: 2}))
				},
				"savepoint": func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, `SAVEPOINT a`); err != nil {
						return err
					}
					return l.Append(ctx, tx, ev(13, "OPEN", payload{W: 3}))
				},
			}
			var txs []*sql.Tx
			for _, f := range open {
				tx, err := s.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if err := f(tx); err != nil {
					t.Fatal(err)
				}
				txs = append(txs, tx)
			}
			// Committed events after them, each in a stamping of its own.
			const others = 30
			for i := range others {
				if err := l.Append(ctx, nil, ev(2, "OTHER", payload{W: i})); err != nil {
					t.Fatal(err)
				}
				if err := eventlog.WaitHead(ctx, l, uint64(i+1)); err != nil {
					t.Fatal(err)
				}
			}
			// Stampings that find nothing, with the transactions still open,
			// for longer than the bound waits before it trusts what it saw.
			time.Sleep(1500 * time.Millisecond)
			for i, tx := range txs {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				l.Committed()
				evs := collect(t, l, uint64(others+i), 1)
				if evs[0].Type != "OPEN" {
					t.Fatalf("position %d: %s, want an OPEN event", evs[0].Position, evs[0].Type)
				}
			}
			if b := eventlog.Bound(l); b == 0 {
				t.Error("the bound never moved")
			}
		})
	}
}

// TestBoundMoves: once nothing is open, the bound passes every row, so a
// stamping reads no index entries of rows stamped before; a row appended
// later is still found, and so is one whose id the sequence, set back,
// handed out again.
func TestBoundMoves(t *testing.T) {
	db := pgDB.open(t)
	s := sqlDB(t, db)
	l := openLog(t, db, table(), eventlog.WithPollInterval(10*time.Millisecond))
	ctx := t.Context()
	const n = 20
	for i := range n {
		if err := l.Append(ctx, nil, ev(1, "A", payload{W: i})); err != nil {
			t.Fatal(err)
		}
	}
	if err := eventlog.WaitHead(ctx, l, n); err != nil {
		t.Fatal(err)
	}
	var maxID int64
	if err := s.QueryRowContext(ctx, `SELECT max(id) FROM `+l.Table()).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for eventlog.Bound(l) <= maxID {
		select {
		case <-wait.Done():
			t.Fatalf("bound %d, still not past the last row %d", eventlog.Bound(l), maxID)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := l.Append(ctx, nil, ev(1, "B", payload{W: n})); err != nil {
		t.Fatal(err)
	}
	if evs := collect(t, l, n, 1); evs[0].Type != "B" {
		t.Errorf("after the bound moved: %s at %d", evs[0].Type, evs[0].Position)
	}
	// A sequence set back hands out ids below the bound again: the bound
	// starts over.
	if _, err := s.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), 1, false)`, l.Table()); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, nil, ev(1, "C", payload{W: n + 1})); err != nil {
		t.Fatal(err)
	}
	if evs := collect(t, l, n+1, 1); evs[0].Type != "C" {
		t.Errorf("after the sequence went back: %s at %d", evs[0].Type, evs[0].Position)
	}
}
