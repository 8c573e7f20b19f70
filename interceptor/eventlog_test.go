package interceptor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// logSink is a Sink that turns each change into one event of the batch its
// ctx carries, as a *notify.Notifier WithLog does; fail makes it fail (or
// panic) instead.
type logSink struct {
	calls atomic.Int64
	mu    sync.Mutex
	fail  any // an error to return, or a string to panic with
}

func (s *logSink) setFail(f any) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *logSink) Publish(ctx context.Context, cs []interceptor.Change) error {
	s.calls.Add(1)
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	switch f := fail.(type) {
	case error:
		return f
	case string:
		panic(f)
	}
	b := eventlog.FromContext(ctx)
	if b == nil {
		return errors.New("no batch in ctx")
	}
	for _, c := range cs {
		e, err := eventlog.NewEvent(c.LeadID, string(c.Op), c.Audience, map[string]any{"summary": summary(c)})
		if err != nil {
			return err
		}
		b.Add(e)
	}
	return nil
}

type logEnv struct {
	*env
	log  *eventlog.Log
	sink *logSink
}

// newLogEnv is newEnv with WithEventLog on a log of its own, which knows
// the leads table (eventlog.WithLeadTable) as the example server's does.
func newLogEnv(t testing.TB, d dialect, cfg *gorm.Config) *logEnv {
	t.Helper()
	e := newEnv(t, d, cfg)
	// The plugin of newEnv is replaced by one with the log: a second
	// *gorm.DB on the same pool.
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = &gorm.Config{}
	}
	db, err := gorm.Open(d.on(sqlDB), &gorm.Config{
		Logger: e.db.Logger, NamingStrategy: e.db.NamingStrategy, SkipDefaultTransaction: cfg.SkipDefaultTransaction,
	})
	if err != nil {
		t.Fatal(err)
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(&Lead{}); err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(t.Context(), db, eventlog.WithTable(fmt.Sprintf("nlev_%d", tableSeq.Add(1))),
		eventlog.WithPollInterval(50*time.Millisecond), eventlog.WithLeadTable(stmt.Schema.Table, "id"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sink := &logSink{}
	p, err := interceptor.New(&Lead{}, sink, interceptor.WithEventLog(l))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := db.Use(p); err != nil {
		t.Fatal(err)
	}
	e.db = db
	return &logEnv{env: e, log: l, sink: sink}
}

// events waits until the log holds n positioned events and returns their
// types and leads, in position order, checking that positions increase.
func (e *logEnv) events(t testing.TB, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		evs, err := e.log.Read(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n {
			var out []string
			for i, ev := range evs {
				if i > 0 && ev.Position <= evs[i-1].Position {
					t.Errorf("position %d after %d", ev.Position, evs[i-1].Position)
				}
				var p struct{ Summary string }
				if err := json.Unmarshal(ev.Payload, &p); err != nil {
					t.Fatal(err)
				}
				out = append(out, p.Summary)
			}
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the log holds %d events, want %d", len(evs), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestEventLogCommits: a transaction's changes are logged, in statement
// order, and only once it commits; GORM's default transaction counts.
func TestEventLogCommits(t *testing.T) { eachDB(t, testEventLogCommits) }

func testEventLogCommits(t *testing.T, d dialect) {
	e := newLogEnv(t, d, nil)
	must(t, e.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Lead{Name: "a", Status: "new"}).Error; err != nil {
			return err
		}
		return tx.Model(&Lead{ID: 1}).Updates(map[string]any{"status": "contacted", "score": 5}).Error
	}))
	// A rolled-back transaction: the sink may run no more, nothing logged.
	calls := e.sink.calls.Load()
	err := e.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&Lead{ID: 1}).Update("status", "lost").Error; err != nil {
			return err
		}
		return errors.New("changed my mind")
	})
	if err == nil || err.Error() != "changed my mind" {
		t.Fatalf("rolled-back transaction: %v", err)
	}
	if got := e.sink.calls.Load(); got != calls {
		t.Errorf("the sink ran %d times for a rolled-back transaction", got-calls)
	}
	must(t, e.db.Delete(&Lead{ID: 1}).Error) // GORM's default transaction
	got := e.events(t, 4)
	want := []string{"NEW_LEAD#1", "STATUS_UPDATE#1 new->contacted", "SCORE_UPDATE#1 0->5", "LEAD_DELETED#1 soft"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

// TestEventLogSinkFailureFailsTheWrite: a failing or panicking Sink rolls
// the transaction back and fails the write; nothing is logged.
func TestEventLogSinkFailureFailsTheWrite(t *testing.T) { eachDB(t, testEventLogSinkFailure) }

func testEventLogSinkFailure(t *testing.T, d dialect) {
	e := newLogEnv(t, d, nil)
	boom := errors.New("boom")
	for _, tt := range []struct {
		name string
		fail any
		want string
	}{
		{"error", boom, "interceptor: sink: boom; transaction rolled back"},
		{"panic", "kaput", "interceptor: sink panicked: kaput; transaction rolled back"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.sink.setFail(tt.fail)
			err := e.db.Create(&Lead{Name: tt.name, Status: "new"}).Error
			if err == nil || err.Error() != tt.want {
				t.Fatalf("write: %v, want %q", err, tt.want)
			}
			if e, ok := tt.fail.(error); ok && !errors.Is(err, e) {
				t.Errorf("%v does not wrap the sink's error", err)
			}
		})
	}
	var n int64
	must(t, e.plainOn(t).Model(&Lead{}).Count(&n).Error)
	if n != 0 {
		t.Errorf("%d rows committed by failed writes", n)
	}
	// Nothing of them was logged: the next event is the first.
	e.sink.setFail(nil)
	must(t, e.db.Create(&Lead{Name: "ok", Status: "new"}).Error)
	got := e.events(t, 1)
	if len(got) != 1 {
		t.Errorf("logged %q, want the one committed write", got)
	}
}

// TestEventLogAppendFailureFailsTheWrite: an event the log refuses fails
// the write, which is rolled back.
func TestEventLogAppendFailureFailsTheWrite(t *testing.T) {
	e := newLogEnv(t, postgresDB, nil)
	e.sink.setFail(nil)
	bad := interceptor.SinkFunc(func(ctx context.Context, cs []interceptor.Change) error {
		eventlog.FromContext(ctx).Add(eventlog.Event{LeadID: cs[0].LeadID, Type: "X", Payload: []byte("{not json")})
		return nil
	})
	db := e.dbWith(t, bad, e.log)
	err := db.Create(&Lead{Name: "a", Status: "new"}).Error
	if !errors.Is(err, eventlog.ErrInvalid) {
		t.Fatalf("write: %v, want the log's ErrInvalid", err)
	}
	var n int64
	must(t, e.plainOn(t).Model(&Lead{}).Count(&n).Error)
	if n != 0 {
		t.Errorf("%d rows committed by a write whose events were refused", n)
	}
}

// TestEventLogRefusesAutocommit: with SkipDefaultTransaction a write
// outside db.Transaction is refused before it runs; inside one it is
// logged.
func TestEventLogRefusesAutocommit(t *testing.T) { eachDB(t, testEventLogRefusesAutocommit) }

func testEventLogRefusesAutocommit(t *testing.T, d dialect) {
	e := newLogEnv(t, d, &gorm.Config{SkipDefaultTransaction: true})
	for name, write := range map[string]func() error{
		"create": func() error { return e.db.Create(&Lead{Name: "a"}).Error },
		"update": func() error { return e.db.Model(&Lead{ID: 1}).Update("status", "x").Error },
		"delete": func() error { return e.db.Delete(&Lead{ID: 1}).Error },
	} {
		if err := write(); !errors.Is(err, interceptor.ErrNoTransaction) {
			t.Errorf("%s outside a transaction: %v, want ErrNoTransaction", name, err)
		}
	}
	var n int64
	must(t, e.plainOn(t).Model(&Lead{}).Count(&n).Error)
	if n != 0 {
		t.Errorf("%d rows written by refused writes", n)
	}
	must(t, e.db.Transaction(func(tx *gorm.DB) error { return tx.Create(&Lead{Name: "b", Status: "new"}).Error }))
	if got := e.events(t, 1); len(got) != 1 || got[0] != "NEW_LEAD#1" {
		t.Errorf("logged %q, want [NEW_LEAD#1]", got)
	}
}

// dbWith opens another *gorm.DB on e's pool, with a plugin whose Sink is
// sink writing to l.
func (e *logEnv) dbWith(t *testing.T, sink interceptor.Sink, l *eventlog.Log) *gorm.DB {
	t.Helper()
	p, err := interceptor.New(&Lead{}, sink, interceptor.WithEventLog(l))
	must(t, err)
	t.Cleanup(func() { p.Close() })
	sqlDB, err := e.db.DB()
	must(t, err)
	db, err := gorm.Open(postgresDB.on(sqlDB), &gorm.Config{Logger: e.db.Logger, NamingStrategy: e.db.NamingStrategy})
	must(t, err)
	must(t, db.Use(p))
	return db
}
