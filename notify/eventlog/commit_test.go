package eventlog_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// commitCase runs f on a log of its own and a connection with a
// transaction begun by a plain BEGIN, for each way AppendCommit sends its
// statements: a pgx pipeline on PostgreSQL, two statements as with other
// drivers, and SQLite's. rows is a table of the test's own.
func commitCase(t *testing.T, f func(t *testing.T, l *eventlog.Log, s *sql.DB, c *sql.Conn, rows string)) {
	for _, v := range []struct {
		name       string
		d          dialect
		noPipeline bool
	}{
		{"postgres pipelined", pgDB, false},
		{"postgres two statements", pgDB, true},
		{"sqlite", sqliteDB, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			db := v.d.open(t)
			s := sqlDB(t, db)
			name := table()
			l := openLog(t, db, name)
			if v.noPipeline {
				eventlog.WithoutPipeline(l)
			}
			rows := name + "_rows"
			if _, err := s.ExecContext(t.Context(), `CREATE TABLE `+rows+` (id bigint PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Exec(`DROP TABLE ` + rows) })
			c, err := s.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.ExecContext(t.Context(), "BEGIN"); err != nil {
				t.Fatal(err)
			}
			f(t, l, s, c, rows)
		})
	}
}

func batchOf(evs ...eventlog.Event) *eventlog.Batch {
	b := eventlog.NewBatch()
	for _, e := range evs {
		b.Add(e)
	}
	return b
}

// AppendCommit commits the caller's transaction with its events, which
// get positions.
func TestAppendCommit(t *testing.T) {
	commitCase(t, func(t *testing.T, l *eventlog.Log, s *sql.DB, c *sql.Conn, rows string) {
		ctx := t.Context()
		if _, err := c.ExecContext(ctx, `INSERT INTO `+rows+` VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		if err := l.AppendCommit(ctx, c, batchOf(ev(1, "NEW_LEAD", payload{I: 1}), ev(2, "NEW_LEAD", payload{I: 2}))); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.QueryRowContext(ctx, `SELECT count(*) FROM `+rows).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows committed: %d, %v; want 1", n, err)
		}
		got := collect(t, l, 0, 2)
		if got[0].Position != 1 || got[1].Position != 2 || decode(t, got[1]).I != 2 {
			t.Errorf("events %+v", got)
		}
		// The connection is back to normal: a second transaction on it.
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if err := l.AppendCommit(ctx, c, batchOf(ev(1, "STATUS_UPDATE", payload{I: 3}))); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, l, 2, 1); decode(t, got[0]).I != 3 {
			t.Errorf("second transaction's event %+v", got[0])
		}
	})
}

// When the append fails, nothing is committed, the error says so, and the
// caller's ROLLBACK ends the transaction.
func TestAppendCommitAppendFails(t *testing.T) {
	commitCase(t, func(t *testing.T, l *eventlog.Log, s *sql.DB, c *sql.Conn, rows string) {
		ctx := t.Context()
		failInserts(t, s, l)
		if _, err := c.ExecContext(ctx, `INSERT INTO `+rows+` VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		err := l.AppendCommit(ctx, c, batchOf(ev(1, "NEW_LEAD", payload{})))
		if err == nil || !strings.Contains(err.Error(), "append") || !strings.Contains(err.Error(), "refused by the test") {
			t.Fatalf("AppendCommit = %v, want the append's error", err)
		}
		if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatalf("ROLLBACK: %v", err)
		}
		checkEmpty(t, s, l, rows)
		if _, err := c.ExecContext(ctx, `SELECT 1`); err != nil {
			t.Errorf("the connection after ROLLBACK: %v", err)
		}
	})
}

// When the COMMIT fails (a deferred constraint), nothing is committed and
// the error says it was the commit.
func TestAppendCommitCommitFails(t *testing.T) {
	commitCase(t, func(t *testing.T, l *eventlog.Log, s *sql.DB, c *sql.Conn, rows string) {
		ctx := t.Context()
		if strings.HasSuffix(t.Name(), "sqlite") {
			t.Skip("SQLite enforces foreign keys only when turned on outside the transaction; its COMMIT is the two statements' case")
		}
		if _, err := s.ExecContext(ctx, `CREATE TABLE `+rows+`_child (id bigint REFERENCES `+rows+` (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Exec(`DROP TABLE ` + rows + `_child`) })
		if _, err := c.ExecContext(ctx, `INSERT INTO `+rows+`_child VALUES (42)`); err != nil { // no row 42: fails at COMMIT
			t.Fatal(err)
		}
		err := l.AppendCommit(ctx, c, batchOf(ev(1, "NEW_LEAD", payload{})))
		if err == nil || !strings.Contains(err.Error(), "commit") {
			t.Fatalf("AppendCommit = %v, want the commit's error", err)
		}
		c.ExecContext(ctx, "ROLLBACK") // the caller's: PostgreSQL has already ended the transaction
		checkEmpty(t, s, l, rows+"_child")
	})
}

// failInserts makes every insert into l's table fail, until the test ends.
func failInserts(t *testing.T, s *sql.DB, l *eventlog.Log) {
	t.Helper()
	var qs []string
	if strings.Contains(t.Name(), "postgres") {
		fn := strings.Trim(l.Table(), `"`) + "_fail"
		qs = []string{
			`CREATE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`,
			`CREATE TRIGGER fail BEFORE INSERT ON ` + l.Table() + ` FOR EACH ROW EXECUTE FUNCTION ` + fn + `()`,
		}
		t.Cleanup(func() { s.Exec(`DROP FUNCTION ` + fn + ` CASCADE`) })
	} else {
		qs = []string{`CREATE TRIGGER fail BEFORE INSERT ON ` + l.Table() + ` BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`}
	}
	for _, q := range qs {
		if _, err := s.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// checkEmpty fails unless rows and the log are empty.
func checkEmpty(t *testing.T, s *sql.DB, l *eventlog.Log, rows string) {
	t.Helper()
	var n int
	if err := s.QueryRowContext(t.Context(), `SELECT count(*) FROM `+rows).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows committed (%v), want none", n, err)
	}
	if err := s.QueryRowContext(t.Context(), `SELECT count(*) FROM `+l.Table()).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows in the log (%v), want none", n, err)
	}
}
