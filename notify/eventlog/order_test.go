package eventlog_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// key names one event of the concurrent test: writer, transaction, lead.
type key struct {
	w, i int
	lead int64
}

// TestConcurrentWriters runs writers appending for a few leads, each
// transaction appending first and then bumping the lead's counter under its
// row lock (so the counter is the lead's commit order), some of them
// rolling back, with two Logs (two instances) on the table. Both tails
// must read every committed event exactly once, at contiguous positions
// (PostgreSQL), each lead's events in its commit order, and nothing rolled
// back.
func TestConcurrentWriters(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		writers, perWriter := 4, 1500
		if d.name == "sqlite" {
			perWriter = 300
		}
		if testing.Short() {
			perWriter /= 5
		}
		const leads = 5
		db := d.open(t)
		s := sqlDB(t, db)
		name := table()
		l1 := openLog(t, db, name)
		l2 := openLog(t, again(t, db), name) // a second instance: its own pool
		eventlog.WithoutPipeline(l2)         // and the sequencer of drivers other than pgx
		ctx := t.Context()
		counters := name + "_n"
		if _, err := s.ExecContext(ctx, `CREATE TABLE `+counters+` (lead_id bigint PRIMARY KEY, n bigint NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Exec(`DROP TABLE ` + counters) })
		for lead := 1; lead <= leads; lead++ {
			if _, err := s.ExecContext(ctx, `INSERT INTO `+counters+` VALUES ($1, 0)`, lead); err != nil {
				t.Fatal(err)
			}
		}
		bump := `UPDATE ` + counters + ` SET n = n + 1 WHERE lead_id = $1 RETURNING n`

		var (
			mu   sync.Mutex
			want = map[key]int64{} // committed event → its lead's counter
		)
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				l := []*eventlog.Log{l1, l2}[w%2]
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for i := range perWriter {
					ls := []int64{r.Int64N(leads) + 1}
					if r.IntN(5) == 0 { // some transactions touch two leads
						if other := r.Int64N(leads) + 1; other != ls[0] {
							ls = append(ls, other)
						}
					}
					slices.Sort(ls) // row locks in the same order as the log's
					rollback := r.IntN(10) == 0
					got, err := writeTx(ctx, s, l, bump, w, i, ls, rollback)
					if err != nil {
						errs <- fmt.Errorf("writer %d tx %d: %w", w, i, err)
						return
					}
					if !rollback {
						mu.Lock()
						for j, lead := range ls {
							want[key{w, i, lead}] = got[j]
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		one := collect(t, l1, 0, len(want))
		two := collect(t, l2, 0, len(want))
		if len(one) != len(want) || len(two) != len(want) {
			t.Fatalf("tails read %d and %d events, %d committed", len(one), len(two), len(want))
		}
		last := map[int64]int64{}
		seen := map[key]bool{}
		for i, e := range one {
			if f := two[i]; f.Position != e.Position || string(f.Payload) != string(e.Payload) || f.LeadID != e.LeadID {
				t.Fatalf("event %d: the instances disagree: %+v vs %+v", i, e, f)
			}
			if d.name == "postgres" && e.Position != uint64(i+1) {
				t.Fatalf("event %d at position %d: not contiguous", i, e.Position)
			}
			if i > 0 && e.Position <= one[i-1].Position {
				t.Fatalf("event %d: position %d after %d", i, e.Position, one[i-1].Position)
			}
			p := decode(t, e)
			k := key{p.W, p.I, e.LeadID}
			n, ok := want[k]
			if !ok {
				t.Fatalf("event %d %+v: never committed", i, k)
			}
			if seen[k] {
				t.Fatalf("event %d %+v: read twice", i, k)
			}
			seen[k] = true
			if n != last[e.LeadID]+1 {
				t.Fatalf("event %d: lead %d's commit #%d after #%d", i, e.LeadID, n, last[e.LeadID])
			}
			last[e.LeadID] = n
		}
		h, err := l1.Head(ctx)
		if err != nil || h != one[len(one)-1].Position {
			t.Errorf("Head = %d, %v; want %d", h, err, one[len(one)-1].Position)
		}
	})
}

// writeTx appends one event per lead, then bumps each lead's counter, and
// commits (or rolls back); it returns the counters.
func writeTx(ctx context.Context, s *sql.DB, l *eventlog.Log, bump string, w, i int, leads []int64, rollback bool) ([]int64, error) {
	tx, err := s.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var evs []eventlog.Event
	for _, lead := range leads {
		evs = append(evs, ev(lead, "STATUS_UPDATE", payload{W: w, I: i}))
	}
	if err := l.Append(ctx, tx, evs...); err != nil {
		return nil, err
	}
	ns := make([]int64, len(leads))
	for j, lead := range leads {
		if err := tx.QueryRowContext(ctx, bump, lead).Scan(&ns[j]); err != nil {
			return nil, err
		}
	}
	if rollback {
		return nil, tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	l.Committed()
	return ns, nil
}

// TestConcurrentWritersAndLeadRows runs writers of three kinds for a few
// leads, with the log told the leads table (WithLeadTable): writers that
// update leads' rows and append their events (Batch.Wrote: no log lock),
// writers that append for leads without writing them (their rows FOR
// SHARE and the log's lock), and writers that do both, for leads above
// those they wrote (so that every transaction locks leads in one order).
// Each transaction then bumps every lead's counter, under its row lock,
// so the counter is the lead's commit order; some roll back. The tail must
// read every committed event once, at contiguous positions, each lead's
// events in its commit order.
func TestConcurrentWritersAndLeadRows(t *testing.T) {
	writers, perWriter := 4, 1200
	if testing.Short() {
		perWriter /= 5
	}
	const leads = 4
	db := pgDB.open(t)
	s := sqlDB(t, db)
	name := table()
	ctx := t.Context()
	rows, counters := leadsTable(t, s, name, leads), name+"_n"
	for _, q := range []string{
		`CREATE TABLE ` + counters + ` (lead_id bigint PRIMARY KEY, n bigint NOT NULL)`,
		`INSERT INTO ` + counters + ` SELECT generate_series(1, ` + fmt.Sprint(leads) + `), 0`,
	} {
		if _, err := s.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Exec(`DROP TABLE ` + counters) })
	l := openLog(t, db, name, eventlog.WithLeadTable(rows, "id"))

	var (
		mu   sync.Mutex
		want = map[key]int64{}
		kind [3]int // committed transactions of each kind
	)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := range perWriter {
				ls := []int64{r.Int64N(leads) + 1}
				if r.IntN(3) == 0 {
					if other := r.Int64N(leads) + 1; other != ls[0] {
						ls = append(ls, other)
					}
				}
				slices.Sort(ls)
				k := r.IntN(3) // 0: writes every lead, 1: writes none, 2: writes the first only
				written := []int{len(ls), 0, 1}[k]
				rollback := r.IntN(10) == 0
				got, err := writeRowsTx(ctx, s, l, rows, counters, w, i, ls, written, rollback)
				if err != nil {
					errs <- fmt.Errorf("writer %d tx %d: %w", w, i, err)
					return
				}
				if !rollback {
					mu.Lock()
					kind[k]++
					for j, lead := range ls {
						want[key{w, i, lead}] = got[j]
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := collect(t, l, 0, len(want))
	if len(got) != len(want) {
		t.Fatalf("tail read %d events, %d committed", len(got), len(want))
	}
	last := map[int64]int64{}
	seen := map[key]bool{}
	for i, e := range got {
		if e.Position != uint64(i+1) {
			t.Fatalf("event %d at position %d: not contiguous", i, e.Position)
		}
		p := decode(t, e)
		k := key{p.W, p.I, e.LeadID}
		n, ok := want[k]
		if !ok {
			t.Fatalf("event %d %+v: never committed", i, k)
		}
		if seen[k] {
			t.Fatalf("event %d %+v: read twice", i, k)
		}
		seen[k] = true
		if n != last[e.LeadID]+1 {
			t.Fatalf("event %d: lead %d's commit #%d after #%d", i, e.LeadID, n, last[e.LeadID])
		}
		last[e.LeadID] = n
	}
	t.Logf("%d events of %d, %d and %d committed transactions writing all, none and some of their leads", len(got), kind[0], kind[1], kind[2])
}

// writeRowsTx updates the rows of the first written of leads, appends one
// event per lead through a Batch that says so, bumps each lead's counter
// and commits (or rolls back); it returns the counters.
func writeRowsTx(ctx context.Context, s *sql.DB, l *eventlog.Log, rows, counters string, w, i int, leads []int64, written int, rollback bool) ([]int64, error) {
	tx, err := s.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	b := eventlog.NewBatch()
	for _, lead := range leads[:written] {
		if _, err := tx.ExecContext(ctx, `UPDATE `+rows+` SET status = $2 WHERE id = $1`, lead, fmt.Sprint(w, i)); err != nil {
			return nil, err
		}
		b.Wrote(rows, lead)
	}
	for _, lead := range leads {
		b.Add(ev(lead, "STATUS_UPDATE", payload{W: w, I: i}))
	}
	if err := l.AppendBatch(ctx, tx, b); err != nil {
		return nil, err
	}
	ns := make([]int64, len(leads))
	for j, lead := range leads {
		if err := tx.QueryRowContext(ctx, `UPDATE `+counters+` SET n = n + 1 WHERE lead_id = $1 RETURNING n`, lead).Scan(&ns[j]); err != nil {
			return nil, err
		}
	}
	if rollback {
		return nil, tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	l.Committed()
	return ns, nil
}
