package eventlog_test

import (
	"strconv"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// An instance that never polls (an hour's interval) and appends nothing
// itself still reads another instance's events at once: its listener is
// woken by the other's pg_notify.
func TestNotifyWakesOtherInstance(t *testing.T) {
	db := pgDB.open(t)
	name := table()
	writer := openLog(t, db, name)
	reader := openLog(t, again(t, db), name, eventlog.WithPollInterval(time.Hour))
	waitListening(t, db, name, 2, nil)
	tl := startTail(t, reader, 0)
	for i := range 3 {
		if err := writer.Append(t.Context(), nil, ev(1, "STATUS_UPDATE", payload{I: i})); err != nil {
			t.Fatal(err)
		}
		if e := tl.next(t); e.Position != uint64(i+1) {
			t.Fatalf("got position %d, want %d", e.Position, i+1)
		}
	}
}

// When its LISTEN connection is killed, a log listens again on a new one,
// and its tailers, which meanwhile polled, go on reading.
func TestListenReconnects(t *testing.T) {
	db := pgDB.open(t)
	name := table()
	l := openLog(t, db, name)
	old := waitListening(t, db, name, 1, nil)
	tl := startTail(t, l, 0)
	if err := l.Append(t.Context(), nil, ev(1, "X", payload{I: 1})); err != nil {
		t.Fatal(err)
	}
	tl.next(t)
	if err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(?::int[])`, pq(old)).Error; err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), nil, ev(1, "X", payload{I: 2})); err != nil {
		t.Fatal(err)
	}
	if e := tl.next(t); e.Position != 2 {
		t.Fatalf("after the kill: position %d", e.Position)
	}
	waitListening(t, db, name, 1, old)
	if err := l.Append(t.Context(), nil, ev(1, "X", payload{I: 3})); err != nil {
		t.Fatal(err)
	}
	if e := tl.next(t); e.Position != 3 {
		t.Fatalf("after listening again: position %d", e.Position)
	}
}

// waitListening waits until n backends other than those in not listen on
// the log's channel (their last statement is the LISTEN), and returns
// their pids.
func waitListening(t *testing.T, db *gorm.DB, name string, n int, not []int64) []int64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var pids []int64
		if err := db.Raw(`SELECT pid FROM pg_stat_activity WHERE query = ? AND NOT (pid = ANY(?::int[]))`,
			`LISTEN "`+name+`"`, pq(not)).Scan(&pids).Error; err != nil {
			t.Fatal(err)
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends listen on %s, want %d", len(pids), name, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pq renders pids as a PostgreSQL array literal.
func pq(pids []int64) string {
	s := "{"
	for i, p := range pids {
		if i > 0 {
			s += ","
		}
		s += strconv.FormatInt(p, 10)
	}
	return s + "}"
}
