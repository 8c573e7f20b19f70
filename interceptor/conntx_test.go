package interceptor_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// With WithEventLog on PostgreSQL through pgx, the plugin runs each
// transaction on a connection of its own so that the log appends and
// commits in one round trip. These tests hold it to what a *sql.Tx
// guarantees: every way a transaction ends gives its connection back, and
// never inside a transaction.

// checkConns fails t unless every connection of e's pool but the log's
// listener is back within a few seconds, and no backend but the checking
// one holds a lock on the leads table: a connection back in the pool
// inside a transaction would keep its locks until its next use (when pgx
// discards it).
func checkConns(t *testing.T, e *logEnv) {
	t.Helper()
	sqlDB, err := e.db.DB()
	must(t, err)
	deadline := time.Now().Add(5 * time.Second)
	// The log's listener holds one; its sequencer another, briefly.
	for sqlDB.Stats().InUse > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still in use", sqlDB.Stats().InUse)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A connection of its own: one from e's pool could be the one inside a
	// transaction, which pgx would close before the check runs.
	check, err := sql.Open("pgx", schemaDSN)
	must(t, err)
	defer check.Close()
	stmt := &gorm.Statement{DB: e.db}
	must(t, stmt.Parse(&Lead{}))
	// A backend whose client closed the connection mid-statement (pgx does
	// when ctx ends) notices it once the statement ends: wait for that.
	for {
		var n int
		must(t, check.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relname = $1 AND l.pid <> pg_backend_pid()`, stmt.Schema.Table).Scan(&n))
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d locks on %s held after the transaction ended", n, stmt.Schema.Table)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count returns how many leads are committed.
func (e *logEnv) count(t *testing.T) int64 {
	t.Helper()
	var n int64
	must(t, e.plainOn(t).Model(&Lead{}).Count(&n).Error)
	return n
}

// TestEventLogTransactionEnds: commit, commit of a transaction that wrote
// nothing, rollback, a failing and a panicking Sink, a panic inside
// db.Transaction, a failed statement, and ctx ending before Commit or with
// the transaction abandoned: each gives its connection back, idle, and
// commits exactly what it should.
func TestEventLogTransactionEnds(t *testing.T) {
	e := newLogEnv(t, postgresDB, nil)
	db := e.db
	create := func(tx *gorm.DB) error { return tx.Create(&Lead{Name: "a", Status: "new"}).Error }
	for _, tt := range []struct {
		name    string
		run     func(t *testing.T) error
		wantErr string // "" for success
		commits int64  // leads committed
	}{
		{"commit", func(*testing.T) error { return db.Transaction(create) }, "", 1},
		{"commit nothing", func(*testing.T) error {
			return db.Transaction(func(tx *gorm.DB) error {
				var n int64
				return tx.Model(&Lead{}).Count(&n).Error
			})
		}, "", 0},
		{"rollback", func(*testing.T) error {
			return db.Transaction(func(tx *gorm.DB) error {
				if err := create(tx); err != nil {
					return err
				}
				return errors.New("changed my mind")
			})
		}, "changed my mind", 0},
		{"sink error", func(*testing.T) error {
			e.sink.setFail(errors.New("boom"))
			defer e.sink.setFail(nil)
			return db.Transaction(create)
		}, "interceptor: sink: boom; transaction rolled back", 0},
		{"sink panic", func(*testing.T) error {
			e.sink.setFail("kaput")
			defer e.sink.setFail(nil)
			return db.Transaction(create)
		}, "interceptor: sink panicked: kaput; transaction rolled back", 0},
		{"panic in transaction", func(t *testing.T) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("recovered %v", v)
				}
			}()
			return db.Transaction(func(tx *gorm.DB) error {
				must(t, create(tx))
				panic("in the caller")
			})
		}, "recovered in the caller", 0},
		{"failed statement", func(t *testing.T) error {
			tx := db.Begin()
			must(t, create(tx))
			if tx.Exec("SELECT 1/0").Error == nil {
				t.Error("division by zero accepted")
			}
			return tx.Commit().Error
		}, "rolled back", 0},
		{"ctx cancelled before commit", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(t.Context())
			tx := db.WithContext(ctx).Begin()
			must(t, create(tx))
			cancel()
			return tx.Commit().Error
		}, "context canceled", 0},
		{"ctx cancelled mid-transaction", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(t.Context())
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				must(t, create(tx))
				cancel()
				return create(tx)
			})
		}, "", 0}, // the second create fails with whichever error comes first
		{"ctx cancelled, transaction abandoned", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(t.Context())
			tx := db.WithContext(ctx).Begin()
			must(t, create(tx))
			cancel() // neither Commit nor Rollback: ctx's end rolls it back
			return nil
		}, "", 0},
		{"rollback after commit", func(t *testing.T) error {
			tx := db.Begin()
			must(t, create(tx))
			must(t, tx.Commit().Error)
			return tx.Rollback().Error
		}, sql.ErrTxDone.Error(), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.count(t)
			err := tt.run(t)
			switch {
			case tt.name == "ctx cancelled mid-transaction":
				if err == nil {
					t.Error("a transaction whose ctx ended committed")
				}
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one saying %q", err, tt.wantErr)
			}
			checkConns(t, e)
			if n := e.count(t) - before; n != tt.commits {
				t.Errorf("%d leads committed, want %d", n, tt.commits)
			}
		})
	}
	// Only the two committed writes were logged.
	if got := e.events(t, 2); len(got) != 2 {
		t.Errorf("logged %q", got)
	}
}

// TestEventLogAppendFailureGivesTheConnectionBack: an append the log
// refuses rolls back on the transaction's connection and gives it back.
func TestEventLogAppendFailureGivesTheConnectionBack(t *testing.T) {
	e := newLogEnv(t, postgresDB, nil)
	bad := interceptor.SinkFunc(func(ctx context.Context, cs []interceptor.Change) error {
		eventlog.FromContext(ctx).Add(eventlog.Event{LeadID: cs[0].LeadID, Type: "X", Payload: []byte("{not json")})
		return nil
	})
	db := e.dbWith(t, bad, e.log)
	for range 3 {
		if err := db.Create(&Lead{Name: "a", Status: "new"}).Error; !errors.Is(err, eventlog.ErrInvalid) {
			t.Fatalf("write: %v, want the log's ErrInvalid", err)
		}
	}
	checkConns(t, e)
	if n := e.count(t); n != 0 {
		t.Errorf("%d rows committed by writes whose events were refused", n)
	}
}

// TestEventLogSavepoints: nested transactions and RollbackTo on the
// transaction's connection; only what survives is committed and logged.
func TestEventLogSavepoints(t *testing.T) {
	t.Run("exec", func(t *testing.T) { testEventLogSavepoints(t, false) })
	t.Run("prepared", func(t *testing.T) { testEventLogSavepoints(t, true) })
}

// testEventLogSavepoints with prepared: in a PrepareStmt session, whose
// savepoints run as prepared statements.
func testEventLogSavepoints(t *testing.T, prepared bool) {
	e := newLogEnv(t, postgresDB, nil)
	db := e.db
	if prepared {
		db = db.Session(&gorm.Session{PrepareStmt: true})
	}
	must(t, db.Transaction(func(tx *gorm.DB) error {
		must(t, tx.Create(&Lead{Name: "a", Status: "new"}).Error) // 1
		_ = tx.Transaction(func(tx2 *gorm.DB) error {
			must(t, tx2.Create(&Lead{Name: "b", Status: "new"}).Error)     // 2, rolled back
			must(t, tx2.Model(&Lead{ID: 1}).Update("status", "won").Error) // rolled back
			return errors.New("inner")
		})
		must(t, tx.SavePoint("sp1").Error)
		must(t, tx.Model(&Lead{ID: 1}).Update("score", 3).Error) // dropped
		must(t, tx.RollbackTo("sp1").Error)
		must(t, tx.Exec("SAVEPOINT sp2").Error)
		must(t, tx.Model(&Lead{ID: 1}).Update("score", 4).Error) // dropped
		must(t, tx.Exec("ROLLBACK TO sp2").Error)
		return tx.Model(&Lead{ID: 1}).Update("status", "lost").Error
	}))
	checkConns(t, e)
	want := []string{"NEW_LEAD#1", "STATUS_UPDATE#1 new->lost"}
	if got := e.events(t, 2); !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
	if n := e.count(t); n != 1 {
		t.Errorf("%d leads committed, want 1", n)
	}
}

// TestEventLogTxOptions: isolation levels and READ ONLY are honoured; a
// level PostgreSQL lacks is refused when the transaction begins.
func TestEventLogTxOptions(t *testing.T) {
	e := newLogEnv(t, postgresDB, nil)
	for _, tt := range []struct {
		opts *sql.TxOptions
		want string
	}{
		{&sql.TxOptions{}, "read committed"},
		{&sql.TxOptions{Isolation: sql.LevelRepeatableRead}, "repeatable read"},
		{&sql.TxOptions{Isolation: sql.LevelSerializable}, "serializable"},
	} {
		must(t, e.db.Transaction(func(tx *gorm.DB) error {
			var level string
			must(t, tx.Raw("SHOW transaction_isolation").Scan(&level).Error)
			if level != tt.want {
				t.Errorf("%v: isolation %q, want %q", tt.opts.Isolation, level, tt.want)
			}
			return tx.Create(&Lead{Name: "a", Status: "new"}).Error
		}, tt.opts))
	}
	err := e.db.Transaction(func(tx *gorm.DB) error {
		return tx.Create(&Lead{Name: "ro"}).Error
	}, &sql.TxOptions{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write in a READ ONLY transaction: %v", err)
	}
	err = e.db.Transaction(func(*gorm.DB) error { return nil }, &sql.TxOptions{Isolation: sql.LevelLinearizable})
	if err == nil || !strings.Contains(err.Error(), "isolation level") {
		t.Errorf("linearizable: %v", err)
	}
	checkConns(t, e)
	if got := e.events(t, 3); len(got) != 3 {
		t.Errorf("logged %q", got)
	}
}

// TestEventLogPrepareStmt: GORM's PrepareStmt, opened with it (the plugin
// keeps *sql.Tx) and as a session around transactions on connections of
// their own (statements prepared again on the connection), in several
// transactions so that cached statements of ended ones come back.
func TestEventLogPrepareStmt(t *testing.T) {
	e := newLogEnv(t, postgresDB, nil)
	sqlDB, err := e.db.DB()
	must(t, err)
	opened, err := gorm.Open(postgresDB.on(sqlDB), &gorm.Config{
		Logger: e.db.Logger, NamingStrategy: e.db.NamingStrategy, PrepareStmt: true,
	})
	must(t, err)
	p, err := interceptor.New(&Lead{}, e.sink, interceptor.WithEventLog(e.log))
	must(t, err)
	t.Cleanup(func() { p.Close() })
	must(t, opened.Use(p))
	for name, db := range map[string]*gorm.DB{
		"session": e.db.Session(&gorm.Session{PrepareStmt: true}),
		"opened":  opened,
	} {
		t.Run(name, func(t *testing.T) {
			for range 3 {
				var l Lead
				must(t, db.Transaction(func(tx *gorm.DB) error {
					if err := tx.Create(&Lead{Name: "x", Status: "new"}).Error; err != nil {
						return err
					}
					l = Lead{Name: "a", Status: "new"}
					if err := tx.Create(&l).Error; err != nil {
						return err
					}
					return tx.Model(&l).Update("status", "won").Error
				}))
				must(t, db.Delete(&l).Error)
			}
			checkConns(t, e)
		})
	}
	// Per transaction two creates and an update, then a delete: 2 × 3 × 4.
	if got := e.events(t, 24); len(got) != 24 {
		t.Errorf("logged %d events, want 24", len(got))
	}
	// A cached statement that cannot be prepared on the connection of a
	// failed transaction fails, and so does Commit, saying why.
	s := e.db.Session(&gorm.Session{PrepareStmt: true})
	find := func(tx *gorm.DB) error { return tx.Where("name = ?", "q").Find(&[]Lead{}).Error }
	must(t, s.Transaction(find))
	tx := s.Begin()
	must(t, tx.Create(&Lead{Name: "y", Status: "new"}).Error)
	if tx.Exec("SELECT 1/0").Error == nil {
		t.Error("division by zero accepted")
	}
	if err := find(tx); err == nil || !strings.Contains(err.Error(), "could not be prepared") {
		t.Errorf("a cached statement in a failed transaction: %v", err)
	}
	if err := tx.Commit().Error; err == nil || !strings.Contains(err.Error(), "current transaction is aborted") {
		t.Errorf("commit of a failed transaction: %v", err)
	}
	checkConns(t, e)
}

// TestEventLogWrote: the batch names the leads whose rows the transaction
// wrote and kept, so that with WithLeadTable their events take no
// advisory lock of the log's: they commit while another session holds
// that lock. An event of a lead whose write ROLLBACK TO SAVEPOINT undid
// takes it, and waits.
func TestEventLogWrote(t *testing.T) {
	e := newLogEnv(t, postgresDB, nil)
	ctx := t.Context()
	stmt := &gorm.Statement{DB: e.db}
	must(t, stmt.Parse(&Lead{}))
	l, err := eventlog.Open(ctx, e.plainOn(t), eventlog.WithTable(fmt.Sprintf("nlev_%d", tableSeq.Add(1))),
		eventlog.WithLeadTable(stmt.Schema.Table, "id"))
	must(t, err)
	t.Cleanup(func() { l.Close() })
	// The sink logs each change, and an event of lead 2 in every batch.
	sink := interceptor.SinkFunc(func(ctx context.Context, cs []interceptor.Change) error {
		b := eventlog.FromContext(ctx)
		for _, c := range cs {
			b.Add(eventlog.Event{LeadID: c.LeadID, Type: string(c.Op), Payload: []byte("{}")})
		}
		b.Add(eventlog.Event{LeadID: 2, Type: "X", Payload: []byte("{}")})
		return nil
	})
	db := e.dbWith(t, sink, l)
	sqlDB, err := e.db.DB()
	must(t, err)
	must(t, e.plainOn(t).Create(&[]Lead{{Name: "a"}, {Name: "b"}}).Error)

	// The log's lock of a lead, as a transaction appending for it holds it.
	tx, err := sqlDB.BeginTx(ctx, nil)
	must(t, err)
	must(t, l.Append(ctx, tx, eventlog.Event{LeadID: 1, Type: "X", Payload: []byte("{}")}))
	var ns, key int64
	must(t, tx.QueryRowContext(ctx, `SELECT classid::int8, objid::int8 FROM pg_locks
		WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&ns, &key))
	must(t, tx.Rollback())
	if key != 1 {
		t.Fatalf("lead 1's lock has key %d: the log's locks changed, update this test", key)
	}
	// Another session holds the log's locks of leads 1 and 2.
	holder, err := sqlDB.Conn(ctx)
	must(t, err)
	for _, k := range []int64{1, 2} {
		_, err := holder.ExecContext(ctx, "SELECT pg_advisory_lock($1::int4, $2::int4)", int32(uint32(ns)), k)
		must(t, err)
	}

	update := func(tx *gorm.DB, id uint, status string) error {
		return tx.Model(&Lead{ID: id}).Update("status", status).Error
	}
	// Wrote leads 1 and 2: no lock of the log's.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	must(t, db.WithContext(wctx).Transaction(func(tx *gorm.DB) error {
		if err := update(tx, 1, "won"); err != nil {
			return err
		}
		return update(tx, 2, "won")
	}))
	// Lead 2's write was rolled back to a savepoint: its event waits for
	// the log's lock, until ctx ends.
	wctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = db.WithContext(wctx).Transaction(func(tx *gorm.DB) error {
		if err := update(tx, 1, "lost"); err != nil {
			return err
		}
		_ = tx.Transaction(func(tx *gorm.DB) error {
			if err := update(tx, 2, "lost"); err != nil {
				return err
			}
			return errors.New("undo")
		})
		return nil
	})
	if err == nil {
		t.Error("an event of a lead whose write was rolled back to a savepoint took no lock")
	}
	var status string
	must(t, e.plainOn(t).Model(&Lead{}).Where("id = 1").Select("status").Scan(&status).Error)
	if status != "won" {
		t.Errorf("lead 1 is %q, want won", status)
	}
	_, err = holder.ExecContext(ctx, "SELECT pg_advisory_unlock_all()")
	must(t, err)
	must(t, holder.Close())
	must(t, l.Close()) // and its listener's connection
	checkConns(t, e)
}
