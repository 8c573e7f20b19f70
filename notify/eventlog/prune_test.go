package eventlog_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// appendMany appends n events for a few leads in batches of 500.
func appendMany(t testing.TB, l *eventlog.Log, n int) {
	t.Helper()
	for start := 0; start < n; start += 500 {
		var evs []eventlog.Event
		for i := start; i < min(start+500, n); i++ {
			evs = append(evs, ev(int64(i%10+1), "STATUS_UPDATE", payload{I: i}))
		}
		if err := l.Append(t.Context(), nil, evs...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPrune(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		l := openLog(t, db, table(), eventlog.WithRetention(0)) // no background pruner: the test prunes
		ctx := t.Context()
		appendMany(t, l, 2500)
		collect(t, l, 0, 2500) // all positioned
		if n, err := eventlog.Prune(ctx, l, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("Prune of nothing old = %d, %v", n, err)
		}
		if n, err := eventlog.Prune(ctx, l, time.Now().Add(time.Hour)); err != nil || n != 2500 {
			t.Fatalf("Prune = %d, %v; want 2500", n, err)
		}
		f, err := l.Floor(ctx)
		if err != nil || f != 2500 {
			t.Fatalf("Floor = %d, %v; want 2500", f, err)
		}
		if h, err := l.Head(ctx); err != nil || h != 2500 {
			t.Fatalf("Head after pruning everything = %d, %v; want 2500", h, err)
		}
		// Positions go on after the floor, never reused.
		appendMany(t, l, 3)
		got := collect(t, l, 2500, 3)
		if got[0].Position != 2501 || got[2].Position != 2503 {
			t.Errorf("positions after pruning: %d..%d, want 2501..2503", got[0].Position, got[2].Position)
		}
		// A reader behind the floor learns it cannot catch up: Read returns
		// what is left, Floor says it is not everything, Tail fails.
		evs, err := l.Read(ctx, 10, 10)
		if err != nil || len(evs) != 3 || evs[0].Position != 2501 {
			t.Errorf("Read(10) = %v, %v", evs, err)
		}
		if f, _ := l.Floor(ctx); 10 >= f {
			t.Errorf("Floor %d does not tell a reader at 10 that it is behind", f)
		}
		if err := l.Tail(ctx, 10, func([]eventlog.Event) error { return nil }); !errors.Is(err, eventlog.ErrPruned) {
			t.Errorf("Tail behind the floor = %v, want ErrPruned", err)
		}
		if hist, err := l.History(ctx, 1, 0, 0); err != nil || len(hist) != 1 || hist[0].Position != 2501 {
			t.Errorf("History of a pruned lead = %v, %v; want only its event at 2501", hist, err)
		}
	})
}

// The background pruner keeps events younger than the retention.
func TestPruneBackground(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		name := table()
		l := openLog(t, db, name, eventlog.WithRetention(time.Millisecond), eventlog.WithPruneInterval(10*time.Millisecond))
		appendMany(t, l, 1200)
		for {
			f, err := l.Floor(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if f == 1200 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		keep := openLog(t, db, table(), eventlog.WithRetention(time.Hour), eventlog.WithPruneInterval(10*time.Millisecond))
		appendMany(t, keep, 10)
		collect(t, keep, 0, 10)
		// Let its pruner run a few times.
		for range 5 {
			time.Sleep(20 * time.Millisecond)
		}
		if f, err := keep.Floor(t.Context()); err != nil || f != 0 {
			t.Errorf("Floor with an hour's retention = %d, %v", f, err)
		}
	})
}

// Writers and readers go on while a prune transaction is open, and during a
// large prune.
func TestPruneDoesNotBlockWriters(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		if d.name == "sqlite" {
			t.Skip("SQLite has one writer at a time: a prune transaction holds it like any other write")
		}
		db := d.open(t)
		l := openLog(t, db, table(), eventlog.WithRetention(0))
		ctx := t.Context()
		const old = 20000
		appendMany(t, l, old)
		collect(t, l, old-1, 1)
		tl := startTail(t, l, old)
		cutoff := time.Now() // the old events only

		// Within the first prune batch's transaction, writes are appended,
		// positioned and read.
		first := true
		eventlog.OnPruneBatch(l, func() {
			if !first {
				return
			}
			first = false
			if err := l.Append(ctx, nil, ev(1, "STATUS_UPDATE", payload{W: 9})); err != nil {
				t.Error(err)
			}
			if e := tl.next(t); e.Position != old+1 {
				t.Errorf("event during pruning at %d, want %d", e.Position, old+1)
			}
		})
		// And writers keep writing through the whole prune.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		written := 0
		for w := range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.Append(ctx, nil, ev(int64(w+1), "STATUS_UPDATE", payload{W: w})); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					written++
					mu.Unlock()
				}
			})
		}
		n, err := eventlog.Prune(ctx, l, cutoff)
		close(stop)
		wg.Wait()
		if err != nil || n != old {
			t.Fatalf("Prune = %d, %v; want %d", n, err, old)
		}
		t.Logf("pruned %d events while 4 writers appended %d", n, written)
		for i := range written {
			if e := tl.next(t); e.Position != uint64(old+2+i) {
				t.Fatalf("event %d at %d, want %d", i, e.Position, old+2+i)
			}
		}
	})
}
