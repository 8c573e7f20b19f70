package eventlog_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

func TestAppendReadHistory(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		l := openLog(t, db, table())
		ctx := t.Context()
		before := time.Now().Add(-time.Minute)
		if err := l.Append(ctx, nil,
			ev(1, "NEW_LEAD", map[string]any{"a": 1}),
			ev(2, "NEW_LEAD", map[string]any{"a": 2}),
			ev(1, "STATUS_UPDATE", map[string]any{"a": 3}),
		); err != nil {
			t.Fatal(err)
		}
		e := ev(2, "LEAD_DELETED", map[string]any{"a": 4})
		e.Audience = "alice"
		if err := l.Append(ctx, nil, e); err != nil {
			t.Fatal(err)
		}
		got := collect(t, l, 0, 4)
		for i, e := range got {
			if e.Position != uint64(i+1) {
				t.Errorf("event %d: position %d, want %d", i, e.Position, i+1)
			}
			var p struct{ A int }
			if err := json.Unmarshal(e.Payload, &p); err != nil || p.A != i+1 {
				t.Errorf("event %d: payload %s, want a=%d (%v)", i, e.Payload, i+1, err)
			}
			if e.Time.Before(before) || e.Time.Location() != time.UTC {
				t.Errorf("event %d: time %v", i, e.Time)
			}
		}
		if got[3].Audience != "alice" || got[3].Type != "LEAD_DELETED" || got[3].LeadID != 2 {
			t.Errorf("last event: %+v", got[3])
		}
		if h, err := l.Head(ctx); err != nil || h != 4 {
			t.Errorf("Head = %d, %v; want 4", h, err)
		}
		if f, err := l.Floor(ctx); err != nil || f != 0 {
			t.Errorf("Floor = %d, %v; want 0", f, err)
		}
		page, err := l.Read(ctx, 1, 2)
		if err != nil || len(page) != 2 || page[0].Position != 2 || page[1].Position != 3 {
			t.Errorf("Read(1, 2) = %v, %v", page, err)
		}
		hist, err := l.History(ctx, 1, 0, 0)
		if err != nil || len(hist) != 2 || hist[0].Type != "NEW_LEAD" || hist[1].Type != "STATUS_UPDATE" {
			t.Errorf("History(1) = %v, %v", hist, err)
		}
		hist, err = l.History(ctx, 2, 2, 10)
		if err != nil || len(hist) != 1 || hist[0].Position != 4 {
			t.Errorf("History(2, after 2) = %v, %v", hist, err)
		}
	})
}

func TestAppendInvalid(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		l := openLog(t, db, table())
		ok := ev(1, "NEW_LEAD", map[string]any{})
		for name, bad := range map[string]eventlog.Event{
			"lead id zero":    {LeadID: 0, Type: "X", Payload: []byte(`{}`)},
			"lead negative":   {LeadID: -3, Type: "X", Payload: []byte(`{}`)},
			"empty type":      {LeadID: 1, Payload: []byte(`{}`)},
			"nil payload":     {LeadID: 1, Type: "X"},
			"bad json":        {LeadID: 1, Type: "X", Payload: []byte(`{"a":`)},
			"nul escape":      {LeadID: 1, Type: "X", Payload: []byte(`{"a":"x\u0000"}`)},
			"invalid utf8":    {LeadID: 1, Type: "X", Payload: []byte("\"\xff\"")},
			"nul in type":     {LeadID: 1, Type: "X\x00", Payload: []byte(`{}`)},
			"nul in audience": {LeadID: 1, Type: "X", Audience: "a\x00", Payload: []byte(`{}`)},
		} {
			err := l.Append(t.Context(), nil, ok, bad)
			if !errors.Is(err, eventlog.ErrInvalid) {
				t.Errorf("%s: Append = %v, want ErrInvalid", name, err)
			}
		}
		// NewEvent's payloads are not parsed again, but their text is
		// checked, and a payload changed afterwards is parsed.
		newEvent := func(v any) eventlog.Event {
			e, err := eventlog.NewEvent(1, "X", "", v)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		changed := newEvent(map[string]int{"a": 1})
		changed.Payload = []byte(`{"a":`)
		shortened := newEvent(map[string]int{"a": 1})
		shortened.Payload = shortened.Payload[:3]
		for name, bad := range map[string]eventlog.Event{
			"NewEvent, nul":               newEvent(map[string]string{"a": "x\x00"}),
			"NewEvent, raw invalid utf8":  newEvent(map[string]json.RawMessage{"a": json.RawMessage("\"\xff\"")}),
			"NewEvent, payload replaced":  changed,
			"NewEvent, payload shortened": shortened,
		} {
			err := l.Append(t.Context(), nil, ok, bad)
			if !errors.Is(err, eventlog.ErrInvalid) {
				t.Errorf("%s: Append = %v, want ErrInvalid", name, err)
			}
		}
		if _, err := eventlog.NewEvent(1, "X", "", make(chan int)); !errors.Is(err, eventlog.ErrInvalid) {
			t.Errorf("NewEvent of a channel: %v, want ErrInvalid", err)
		}
		// An escaped backslash before u0000 is no NUL.
		if err := l.Append(t.Context(), nil, eventlog.Event{LeadID: 1, Type: "X", Payload: []byte(`"\\u0000"`)}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(t.Context(), nil, newEvent(map[string]string{"a": "é"})); err != nil {
			t.Fatal(err)
		}
		got := collect(t, l, 0, 2)
		if !bytes.Equal(got[0].Payload, []byte(`"\\u0000"`)) || got[0].Position != 1 {
			t.Errorf("got %s at %d", got[0].Payload, got[0].Position)
		}
		if string(got[1].Payload) != `{"a":"é"}` || got[1].Position != 2 {
			t.Errorf("NewEvent's: got %s at %d", got[1].Payload, got[1].Position)
		}
	})
}

// Events appended in a transaction exist only if it commits.
func TestTransactions(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		l := openLog(t, db, table())
		ctx := t.Context()
		// Rolled back through GORM: the event must never appear.
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := l.Append(ctx, tx.Statement.ConnPool, ev(1, "NEW_LEAD", payload{W: 0})); err != nil {
				return err
			}
			return errors.New("roll back")
		})
		if err == nil {
			t.Fatal("transaction did not roll back")
		}
		// Committed through GORM, with many events in one call.
		var evs []eventlog.Event
		for i := range 2500 {
			evs = append(evs, ev(int64(i%7+1), "STATUS_UPDATE", payload{W: 1, I: i}))
		}
		if err := db.Transaction(func(tx *gorm.DB) error {
			return l.Append(ctx, tx.Statement.ConnPool, evs...)
		}); err != nil {
			t.Fatal(err)
		}
		l.Committed()
		got := collect(t, l, 0, len(evs))
		for i, e := range got {
			if p := decode(t, e); p.W != 1 || p.I != i {
				t.Fatalf("event %d: %+v (rolled back or out of order)", i, p)
			}
			if i > 0 && e.Position <= got[i-1].Position {
				t.Fatalf("event %d: position %d after %d", i, e.Position, got[i-1].Position)
			}
		}
		if d.name == "postgres" && got[len(got)-1].Position != uint64(len(evs)) {
			t.Errorf("last position %d, want %d (contiguous)", got[len(got)-1].Position, len(evs))
		}
	})
}

// A transaction that appended first but commits last is still read, after
// the one that committed first, even by a tail that already passed it.
func TestOutOfOrderCommit(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		if d.name == "sqlite" {
			t.Skip("SQLite has one writer at a time: transactions cannot commit out of order")
		}
		db := d.open(t)
		s := sqlDB(t, db)
		l := openLog(t, db, table())
		ctx := t.Context()
		tl := startTail(t, l, 0)

		a, err := s.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Rollback()
		if err := l.Append(ctx, a, ev(1, "NEW_LEAD", payload{W: 1})); err != nil { // the lower id
			t.Fatal(err)
		}
		if err := l.Append(ctx, nil, ev(2, "NEW_LEAD", payload{W: 2})); err != nil { // commits first
			t.Fatal(err)
		}
		if e := tl.next(t); decode(t, e).W != 2 || e.Position != 1 {
			t.Fatalf("first event: %+v, want B at 1", e)
		}
		if err := a.Commit(); err != nil {
			t.Fatal(err)
		}
		l.Committed()
		if e := tl.next(t); decode(t, e).W != 1 || e.Position != 2 {
			t.Fatalf("second event: %+v, want A at 2", e)
		}
		if got := collect(t, l, 0, 2); decode(t, got[0]).W != 2 || decode(t, got[1]).W != 1 {
			t.Errorf("Read from 0: %v", got)
		}
	})
}

// A second transaction appending for the same lead waits for the first one's
// COMMIT, so the lead's events are positioned in commit order even though
// nothing else orders the two transactions.
func TestSameLeadWaitsForCommit(t *testing.T) {
	db := pgDB.open(t)
	s := sqlDB(t, db)
	l := openLog(t, db, table())
	ctx := t.Context()
	a, err := s.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback()
	if err := l.Append(ctx, a, ev(7, "STATUS_UPDATE", payload{W: 1})); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := a.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- l.Append(ctx, nil, ev(7, "STATUS_UPDATE", payload{W: 2}), ev(8, "STATUS_UPDATE", payload{W: 2}))
	}()
	// Wait until B is blocked behind A's lock (pg_blocking_pids), then let A go.
	waitBlocked(t, s, pid, done, "B appended while A held the lead")
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l.Committed()
	got := collect(t, l, 0, 3)
	if w := []int{decode(t, got[0]).W, decode(t, got[1]).W, decode(t, got[2]).W}; w[0] != 1 || w[1] != 2 || w[2] != 2 {
		t.Errorf("order %v, want A then B", w)
	}
}

func TestTailStops(t *testing.T) {
	db := sqliteDB.open(t)
	l := openLog(t, db, table())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.Tail(ctx, 0, func([]eventlog.Event) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Tail on a done ctx = %v", err)
	}
	if err := l.Append(t.Context(), nil, ev(1, "X", 1)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := l.Tail(t.Context(), 0, func([]eventlog.Event) error { return boom }); err != boom {
		t.Errorf("Tail = %v, want fn's error", err)
	}
	tl := startTail(t, l, 1)
	l.Close()
	if err := tl.stop(); !errors.Is(err, eventlog.ErrClosed) && !errors.Is(err, context.Canceled) {
		t.Errorf("Tail after Close = %v", err)
	}
	if err := l.Append(t.Context(), nil, ev(1, "X", 1)); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
}

// Read and History page exactly through events appended in calls of
// several sizes (on PostgreSQL one row per call): every page starts right
// after its cursor and holds at most limit events.
func TestReadPages(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		l := openLog(t, db, table())
		ctx := t.Context()
		n := 0
		for _, size := range []int{1, 3, 1, 7, 2, 1000, 1, 5, 1001, 4} {
			var evs []eventlog.Event
			for range size {
				evs = append(evs, ev(int64(n%3+1), "X", payload{I: n}))
				n++
			}
			if err := l.Append(ctx, nil, evs...); err != nil {
				t.Fatal(err)
			}
		}
		all := collect(t, l, 0, n)
		for _, limit := range []int{1, 2, 5, 999, 1000, 5000, 1 << 40} {
			for after := 0; after <= n; after += 1 + after/50 {
				got, err := l.Read(ctx, uint64(after), limit)
				if err != nil {
					t.Fatal(err)
				}
				want := all[after:min(after+limit, n)]
				if len(got) != len(want) {
					t.Fatalf("Read(%d, %d): %d events, want %d", after, limit, len(got), len(want))
				}
				for i := range got {
					if got[i].Position != want[i].Position || decode(t, got[i]).I != decode(t, want[i]).I {
						t.Fatalf("Read(%d, %d)[%d] = %+v, want %+v", after, limit, i, got[i], want[i])
					}
				}
			}
		}
		var lead2 []eventlog.Event
		for _, e := range all {
			if e.LeadID == 2 {
				lead2 = append(lead2, e)
			}
		}
		for _, limit := range []int{1, 3, 1000} {
			var got []eventlog.Event
			after := uint64(0)
			for {
				page, err := l.History(ctx, 2, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("History(2, %d, %d): %d events", after, limit, len(page))
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1].Position
			}
			if len(got) != len(lead2) {
				t.Fatalf("History in pages of %d: %d events, want %d", limit, len(got), len(lead2))
			}
			for i := range got {
				if got[i].Position != lead2[i].Position || got[i].LeadID != 2 {
					t.Fatalf("History in pages of %d: [%d] at %d, want %d", limit, i, got[i].Position, lead2[i].Position)
				}
			}
		}
	})
}

// A table of the layout before (one row per event) is upgraded at Open:
// its events keep their positions, one not yet positioned gets the next,
// and appends go on after them.
func TestOpenUpgradesOldLayout(t *testing.T) {
	db := pgDB.open(t)
	name := table()
	err := db.Exec(`CREATE TABLE "` + name + `" (id bigserial NOT NULL, position bigint, lead_id bigint NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now(), type text NOT NULL, audience text NOT NULL DEFAULT '', payload jsonb NOT NULL);
	CREATE INDEX "` + name + `_unstamped" ON "` + name + `" (id) WHERE position IS NULL;
	CREATE TABLE "` + name + `_meta" (id int PRIMARY KEY CHECK (id = 1), floor bigint NOT NULL);
	INSERT INTO "` + name + `_meta" VALUES (1, 40);
	INSERT INTO "` + name + `" (position, lead_id, type, audience, payload) VALUES
		(41, 7, 'A', 'ann', '{"w": 1}'), (42, 8, 'B', '', '{"w": 2}'), (NULL, 7, 'C', 'ann', '{"w": 3}')`).Error
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + name + `", "` + name + `_meta", "` + name + `_v1"`) })
	l := openLog(t, db, name)
	if err := l.Append(t.Context(), nil, ev(8, "D", payload{W: 4})); err != nil {
		t.Fatal(err)
	}
	got := collect(t, l, 40, 4)
	want := []struct {
		pos      uint64
		lead     int64
		typ, aud string
		w        int
	}{{41, 7, "A", "ann", 1}, {42, 8, "B", "", 2}, {43, 7, "C", "ann", 3}, {44, 8, "D", "", 4}}
	for i, w := range want {
		e := got[i]
		if e.Position != w.pos || e.LeadID != w.lead || e.Type != w.typ || e.Audience != w.aud || decode(t, e).W != w.w {
			t.Errorf("event %d = %d %d %s %q %s, want %+v", i, e.Position, e.LeadID, e.Type, e.Audience, e.Payload, w)
		}
	}
	if h, err := l.History(t.Context(), 7, 0, 0); err != nil || len(h) != 2 {
		t.Errorf("history of lead 7: %d events, %v; want 2", len(h), err)
	}
	// A second Open (another instance) finds the new layout.
	openLog(t, db, name).Close()
}

// A table of that name that is not an event log is refused, not used.
func TestOpenRefusesOtherTable(t *testing.T) {
	db := pgDB.open(t)
	name := table()
	if err := db.Exec(`CREATE TABLE "` + name + `" (id bigserial NOT NULL, note text)`).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(`DROP TABLE "` + name + `"`) })
	l, err := eventlog.Open(t.Context(), db, eventlog.WithTable(name))
	if err == nil {
		l.Close()
		t.Fatal("Open used a table that is not an event log")
	}
	if !strings.Contains(err.Error(), "WithTable") {
		t.Errorf("Open: %v; want it to say to choose another table", err)
	}
}

// Batch.Wrote spares the advisory lock of the leads whose rows the
// transaction wrote in the log's lead table, and only those: not for
// another table, and not without WithLeadTable. A lead not written takes
// its advisory lock and its row's FOR SHARE lock.
func TestWroteSparesLocks(t *testing.T) {
	db := pgDB.open(t)
	s := sqlDB(t, db)
	ctx := t.Context()
	name := table()
	rows := leadsTable(t, s, name, 3)
	withTable := openLog(t, db, name, eventlog.WithLeadTable(rows, "id"))
	without := openLog(t, db, table())
	for _, c := range []struct {
		name     string
		l        *eventlog.Log
		wroteIn  string
		advisory int // advisory locks the append takes
		locked   int // lead rows locked after it: the updated one, and those locked FOR SHARE
	}{
		{"lead table", withTable, rows, 2, 3},
		{"other table", withTable, "other", 3, 3},
		{"no lead table", without, rows, 3, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, err := s.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, `UPDATE `+rows+` SET status = 'x' WHERE id = 1`); err != nil {
				t.Fatal(err)
			}
			b := eventlog.NewBatch()
			b.Wrote(c.wroteIn, 1)
			for _, lead := range []int64{1, 2, 3, 2} {
				b.Add(ev(lead, "STATUS_UPDATE", payload{}))
			}
			if err := c.l.AppendBatch(ctx, tx, b); err != nil {
				t.Fatal(err)
			}
			var advisory int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'`).Scan(&advisory); err != nil {
				t.Fatal(err)
			}
			// Row locks live in the tuples: pgrowlocks is an extension, so
			// count the rows another transaction cannot lock FOR UPDATE.
			var locked int
			if err := s.QueryRowContext(ctx, `SELECT 3 - count(*) FROM (SELECT FROM `+rows+` FOR UPDATE SKIP LOCKED) AS r`).Scan(&locked); err != nil {
				t.Fatal(err)
			}
			if locked != c.locked {
				t.Errorf("%d lead rows locked, want %d", locked, c.locked)
			}
			if advisory != c.advisory {
				t.Errorf("%d advisory locks, want %d", advisory, c.advisory)
			}
		})
	}
}

// A transaction appending for a lead without writing its row waits for a
// transaction that wrote the row and took no advisory lock for it, so the
// lead's events are in commit order.
func TestAppendWaitsForLeadWriter(t *testing.T) {
	db := pgDB.open(t)
	s := sqlDB(t, db)
	ctx := t.Context()
	name := table()
	rows := leadsTable(t, s, name, 7)
	l := openLog(t, db, name, eventlog.WithLeadTable(rows, "id"))
	a, err := s.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback()
	if _, err := a.ExecContext(ctx, `UPDATE `+rows+` SET status = 'a' WHERE id = 7`); err != nil {
		t.Fatal(err)
	}
	b := eventlog.NewBatch()
	b.Wrote(rows, 7)
	b.Add(ev(7, "STATUS_UPDATE", payload{W: 1}))
	if err := l.AppendBatch(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := a.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Append(ctx, nil, ev(7, "STATUS_UPDATE", payload{W: 2})) }()
	waitBlocked(t, s, pid, done, "B appended while A held the lead's row")
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l.Committed()
	got := collect(t, l, 0, 2)
	if decode(t, got[0]).W != 1 || decode(t, got[1]).W != 2 {
		t.Errorf("order %d, %d; want A then B", decode(t, got[0]).W, decode(t, got[1]).W)
	}
}

// waitBlocked waits until a session is blocked behind backend pid (B behind
// A's lock), failing with msg if done (B's result) comes first.
func waitBlocked(t *testing.T, s *sql.DB, pid int, done <-chan error, msg string) {
	t.Helper()
	for {
		var n int
		if err := s.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%s: %v", msg, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
