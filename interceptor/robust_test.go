package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/interceptor"
)

// TestConcurrentWritersChain races writers on one row, each holding the row
// lock for a moment inside a transaction: the emitted previous->new statuses
// must form one unbroken chain, in emission order.
//
// On SQLite there are no row locks: the writers serialize on the database's
// single write lock, which the capture takes before it reads the previous
// values (without it the writers fail with SQLITE_BUSY). The same chain must
// come out, so the test runs unchanged there.
func TestConcurrentWritersChain(t *testing.T) { eachDB(t, testConcurrentWritersChain) }

func testConcurrentWritersChain(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	must(t, e.db.Create(&Lead{Name: "a", Status: "s0"}).Error)
	const writers, rounds = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				err := e.db.Transaction(func(tx *gorm.DB) error {
					if err := tx.Model(&Lead{ID: 1}).Update("status", fmt.Sprintf("w%d-%d", w, i)).Error; err != nil {
						return err
					}
					if i%3 == 0 {
						time.Sleep(time.Millisecond) // hold the lock so others queue behind it
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				// Autocommit-style implicit transactions as well.
				if err := e.db.Model(&Lead{ID: 1}).Update("score", w*1000+i).Error; err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.flush(t)
	prev, n := "s0", 0
	var prevScore float64
	for _, b := range e.rec.batches {
		for _, c := range b {
			switch c.Op {
			case interceptor.OpStatusUpdate:
				if c.PreviousStatus != prev {
					t.Fatalf("change %d: previous %q, want %q (the last new status)", n, c.PreviousStatus, prev)
				}
				prev = c.NewStatus
				n++
			case interceptor.OpScoreUpdate:
				if c.PreviousScore != prevScore {
					t.Fatalf("score: previous %g, want %g", c.PreviousScore, prevScore)
				}
				prevScore = c.NewScore
			}
		}
	}
	if n != writers*rounds {
		t.Errorf("%d status changes, want %d", n, writers*rounds)
	}
}

func TestSinkFailuresNeverFailTheWrite(t *testing.T) { eachDB(t, testSinkFailuresNeverFailTheWrite) }

func testSinkFailuresNeverFailTheWrite(t *testing.T, dia dialect) {
	for _, tc := range []struct {
		name    string
		publish func() error
		outcome string
	}{
		{"error", func() error { return errors.New("sink down") }, "failed"},
		{"panic", func() error { panic("sink bug") }, "panicked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			var logs strings.Builder
			var mu sync.Mutex
			logger := log.LoggerFunc(func(kv ...any) error {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintln(&logs, kv...)
				return nil
			})
			e := newEnv(t, dia, nil)
			p, err := interceptor.New(&Lead{}, interceptor.SinkFunc(func(context.Context, []interceptor.Change) error {
				return tc.publish()
			}), interceptor.WithRegisterer(reg), interceptor.WithLogger(logger))
			must(t, err)
			// A second *gorm.DB with the failing plugin, on the same table.
			db2 := e.plainOn(t)
			must(t, db2.Use(p))
			must(t, db2.Create(&Lead{Name: "a", Status: "new"}).Error)
			must(t, db2.Transaction(func(tx *gorm.DB) error {
				return tx.Model(&Lead{ID: 1}).Update("status", "won").Error
			}))
			must(t, p.Close())
			if got := counter(t, reg, tc.outcome); got != 2 {
				t.Errorf("%s changes = %g, want 2", tc.outcome, got)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(logs.String(), "sink") {
				t.Errorf("nothing logged: %q", logs.String())
			}
		})
	}
}

// counter reads leadupdates_interceptor_changes_total{outcome}.
func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "leadupdates_interceptor_changes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s counter", outcome)
	return 0
}

func TestSlowSinkDoesNotBlock(t *testing.T) { eachDB(t, testSlowSinkDoesNotBlock) }

func testSlowSinkDoesNotBlock(t *testing.T, dia dialect) {
	release := make(chan struct{})
	reg := prometheus.NewPedanticRegistry()
	p, err := interceptor.New(&Lead{}, interceptor.SinkFunc(func(ctx context.Context, _ []interceptor.Change) error {
		<-release
		return nil
	}), interceptor.WithQueue(1), interceptor.WithRegisterer(reg))
	must(t, err)
	e := newEnv(t, dia, nil)
	db := e.plainOn(t)
	must(t, db.Use(p))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			must(t, db.Create(&Lead{Name: "a"}).Error)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes blocked by a slow sink")
	}
	close(release)
	must(t, p.Close())
	// One batch in the sink, one queued, three dropped.
	if got := counter(t, reg, "dropped"); got != 3 {
		t.Errorf("dropped = %g, want 3", got)
	}
}

func TestStrictReturnsSinkError(t *testing.T) { eachDB(t, testStrictReturnsSinkError) }

func testStrictReturnsSinkError(t *testing.T, dia dialect) {
	errSink := errors.New("sink down")
	p, err := interceptor.New(&Lead{}, interceptor.SinkFunc(func(context.Context, []interceptor.Change) error {
		return errSink
	}), interceptor.WithStrict())
	must(t, err)
	e := newEnv(t, dia, nil)
	db := e.plainOn(t)
	must(t, db.Use(p))
	defer p.Close()
	if err := db.Create(&Lead{Name: "a"}).Error; !errors.Is(err, errSink) {
		t.Errorf("implicit transaction: err = %v, want %v", err, errSink)
	}
	tx := db.Begin()
	must(t, tx.Model(&Lead{ID: 1}).Update("status", "won").Error)
	if err := tx.Commit().Error; !errors.Is(err, errSink) {
		t.Errorf("Commit: err = %v, want %v", err, errSink)
	}
	var n int64
	must(t, db.Model(&Lead{}).Where("status = ?", "won").Count(&n).Error)
	if n != 1 {
		t.Errorf("the write was not committed")
	}
}

func TestPrepareStmt(t *testing.T) { eachDB(t, testPrepareStmt) }

func testPrepareStmt(t *testing.T, dia dialect) {
	e := newEnv(t, dia, &gorm.Config{PrepareStmt: true})
	l := Lead{Name: "a", Status: "new"}
	must(t, e.db.Create(&l).Error)
	must(t, e.db.Transaction(func(tx *gorm.DB) error {
		return tx.Model(&l).Update("status", "won").Error
	}))
	s := e.db.Session(&gorm.Session{PrepareStmt: true})
	must(t, s.Model(&l).Update("status", "lost").Error)
	must(t, s.Transaction(func(tx *gorm.DB) error { return tx.Delete(&l).Error }))
	must(t, s.Create(&Lead{Name: "b"}).Error) // the session still works after the bypass
	check(t, e.flush(t), [][]string{{"NEW_LEAD#1"}, {"STATUS_UPDATE#1 new->won"}, {"STATUS_UPDATE#1 won->lost"}, {"LEAD_DELETED#1 soft"}, {"NEW_LEAD#2"}})
}

func TestNewRejectsBadConfig(t *testing.T) { eachDB(t, testNewRejectsBadConfig) }

func testNewRejectsBadConfig(t *testing.T, dia dialect) {
	if _, err := interceptor.New(Lead{}, nil); err == nil {
		t.Error("nil sink accepted")
	}
	if _, err := interceptor.New(3, interceptor.SinkFunc(nil)); err == nil {
		t.Error("non-struct model accepted")
	}
	p, err := interceptor.New(&Lead{}, &recorder{}, interceptor.WithFields(interceptor.Fields{Status: "Stage"}))
	must(t, err)
	defer p.Close()
	e := newEnv(t, dia, nil)
	db := e.plainOn(t)
	if err := db.Use(p); err == nil || !strings.Contains(err.Error(), "Stage") {
		t.Errorf("Use with a missing field: err = %v", err)
	}
}

func TestAfterCloseNothingPanics(t *testing.T) { eachDB(t, testAfterCloseNothingPanics) }

func testAfterCloseNothingPanics(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	must(t, e.p.Close())
	must(t, e.db.Create(&Lead{Name: "a"}).Error)
	must(t, e.p.Close()) // idempotent
}

// TestTwoPluginsOnOneRegistry: the second fails in New with an error that
// says why; on registries of their own both work.
func TestTwoPluginsOnOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p, err := interceptor.New(&Lead{}, &recorder{}, interceptor.WithRegisterer(reg))
	must(t, err)
	defer p.Close()
	_, err = interceptor.New(&Lead{}, &recorder{}, interceptor.WithRegisterer(reg))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || !strings.Contains(err.Error(), "interceptor: metrics already registered") {
		t.Fatalf("second Plugin: %v", err)
	}
	reg = prometheus.NewPedanticRegistry()
	for _, id := range []string{"1", "2"} {
		p, err := interceptor.New(&Lead{}, &recorder{}, interceptor.WithStrict(),
			interceptor.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"instance": id}, reg)))
		must(t, err)
		defer p.Close()
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// TestStrictStartsNoGoroutine: with WithStrict the sink runs in the
// committing goroutine, so New starts nothing and Close has nothing to
// wait for.
func TestStrictStartsNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := interceptor.New(&Lead{}, &recorder{}, interceptor.WithStrict())
	must(t, err)
	// Goroutines of earlier tests may still be ending: only more is wrong.
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after New, %d before", n, before)
	}
	must(t, p.Close())
	must(t, p.Close())
}
