package metrics_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
)

// fakeSource records when each Snapshot starts; fail, if set, decides
// whether call n (from 0) fails; block, if set, is waited on (or ctx).
type fakeSource struct {
	mu     sync.Mutex
	starts []time.Time
	fail   func(n int) bool
	block  chan struct{}
}

func (f *fakeSource) Snapshot(ctx context.Context) (notify.Metrics, error) {
	f.mu.Lock()
	n := len(f.starts)
	f.starts = append(f.starts, time.Now())
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return notify.Metrics{}, ctx.Err()
		}
	}
	if f.fail != nil && f.fail(n) {
		return notify.Metrics{}, errors.New("database is down")
	}
	return notify.Metrics{
		TotalLeads:    int64(n),
		LeadsBySource: map[string]int64{"Web": int64(n)},
		LeadsByStatus: map[string]int64{},
	}, nil
}

// offsets returns the start times relative to t0.
func (f *fakeSource) offsets(t0 time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, s := range f.starts {
		out = append(out, s.Sub(t0))
	}
	return out
}

type fakeSink struct {
	mu   sync.Mutex
	got  []notify.Metrics
	fail func(n int) bool
}

func (f *fakeSink) NotifyMetricsUpdate(_ context.Context, d notify.Metrics) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.got)
	f.got = append(f.got, d)
	if f.fail != nil && f.fail(n) {
		return errors.New("hub unavailable")
	}
	return nil
}

func (f *fakeSink) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func newPublisher(t *testing.T, src metrics.Source, sink metrics.Sink, cfg metrics.PublisherConfig) *metrics.Publisher {
	t.Helper()
	p, err := metrics.NewPublisher(src, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func want(t *testing.T, got []time.Duration, want ...time.Duration) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("computations started at %v, want %v", got, want)
	}
}

const s = time.Second

// The rule: the first trigger after an idle interval computes at once; the
// triggers within the interval after it compute once when it ends.
func TestPublisherBurstWithinOneInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		src, sink := &fakeSource{}, &fakeSink{}
		p := newPublisher(t, src, sink, metrics.PublisherConfig{Refresh: time.Hour})
		defer p.Close()

		synctest.Wait()
		want(t, src.offsets(t0), 0) // the Publisher computes as it starts

		time.Sleep(10 * s)
		for range 1000 { // 1,000 triggers over 10 s .. 10.999 s
			p.Trigger()
			time.Sleep(time.Millisecond)
		}
		time.Sleep(10 * s)
		synctest.Wait()
		want(t, src.offsets(t0), 0, 10*s, 11*s) // leading + trailing
		if n := sink.count(); n != 3 {
			t.Errorf("sink got %d dashboards, want 3", n)
		}
	})
}

func TestPublisherBurstAtOneInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		src := &fakeSource{}
		p := newPublisher(t, src, &fakeSink{}, metrics.PublisherConfig{Refresh: time.Hour, Interval: 2 * s})
		defer p.Close()
		synctest.Wait()
		time.Sleep(5 * s)
		for range 10_000 {
			p.Trigger()
		}
		time.Sleep(10 * s)
		synctest.Wait()
		want(t, src.offsets(t0), 0, 5*s, 7*s)
	})
}

// A steady stream of triggers computes exactly once per interval.
func TestPublisherSteadyStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		src := &fakeSource{}
		p := newPublisher(t, src, &fakeSink{}, metrics.PublisherConfig{Refresh: time.Hour})
		defer p.Close()
		synctest.Wait()
		time.Sleep(10 * s)
		for range 3000 { // 10 s .. 12.999 s
			p.Trigger()
			time.Sleep(time.Millisecond)
		}
		time.Sleep(10 * s)
		synctest.Wait()
		want(t, src.offsets(t0), 0, 10*s, 11*s, 12*s, 13*s)
	})
}

func TestPublisherRefreshWithoutTriggers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		src := &fakeSource{}
		p := newPublisher(t, src, &fakeSink{}, metrics.PublisherConfig{}) // default refresh 30 s
		defer p.Close()
		time.Sleep(95 * s)
		synctest.Wait()
		want(t, src.offsets(t0), 0, 30*s, 60*s, 90*s)
	})
}

func TestPublisherRetriesFailedSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		reg := prometheus.NewRegistry()
		var logged atomic.Int64
		logger := log.LoggerFunc(func(...any) error { logged.Add(1); return nil })
		src := &fakeSource{fail: func(n int) bool { return n == 0 }}
		sink := &fakeSink{}
		p := newPublisher(t, src, sink, metrics.PublisherConfig{Registerer: reg, Logger: logger})
		defer p.Close()

		synctest.Wait()
		counter := func(outcome string) float64 {
			c, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range c {
				if mf.GetName() != "leadupdates_metrics_computations_total" {
					continue
				}
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == outcome {
						return m.GetCounter().GetValue()
					}
				}
			}
			t.Fatalf("no counter for outcome %q", outcome)
			return 0
		}
		if got := counter("snapshot_error"); got != 1 {
			t.Errorf("snapshot_error = %v, want 1", got)
		}
		if logged.Load() != 1 {
			t.Errorf("logged %d lines, want 1", logged.Load())
		}
		if _, _, ok := p.Latest(); ok {
			t.Error("Latest ok before any success")
		}
		if sink.count() != 0 {
			t.Error("sink called after a failed snapshot")
		}

		time.Sleep(30 * s) // the next tick retries
		synctest.Wait()
		want(t, src.offsets(t0), 0, 30*s)
		if got := counter("ok"); got != 1 {
			t.Errorf("ok = %v, want 1", got)
		}
		d, at, ok := p.Latest()
		if !ok || d.TotalLeads != 1 || !at.Equal(t0.Add(30*s)) {
			t.Errorf("Latest = %+v, %v, %v; want the second snapshot at +30s", d, at.Sub(t0), ok)
		}
		d.LeadsBySource["Web"] = 99 // a copy
		if d, _, _ := p.Latest(); d.LeadsBySource["Web"] != 1 {
			t.Error("Latest shares its maps")
		}
	})
}

func TestPublisherSinkFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		sink := &fakeSink{fail: func(n int) bool { return n == 0 }}
		p := newPublisher(t, &fakeSource{}, sink, metrics.PublisherConfig{Registerer: reg})
		defer p.Close()
		synctest.Wait()
		if _, _, ok := p.Latest(); !ok {
			t.Error("Latest not ok after a successful snapshot whose delivery failed")
		}
		p.Trigger() // retried after the interval
		time.Sleep(2 * s)
		synctest.Wait()
		if n := sink.count(); n != 2 {
			t.Errorf("sink called %d times, want 2", n)
		}
		got := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "leadupdates_metrics_computations_total" {
				for _, m := range mf.GetMetric() {
					got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
		if w := map[string]float64{"ok": 1, "sink_error": 1, "snapshot_error": 0}; !maps.Equal(got, w) {
			t.Errorf("computations_total = %v, want %v", got, w)
		}
	})
}

func TestPublisherTriggerNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		src := &fakeSource{block: make(chan struct{})}
		p := newPublisher(t, src, &fakeSink{}, metrics.PublisherConfig{})
		defer p.Close()
		synctest.Wait() // the Publisher is stuck in Snapshot
		for range 100_000 {
			p.Trigger() // a blocking Trigger would deadlock the bubble
		}
		if d := time.Since(t0); d != 0 {
			t.Fatalf("Trigger took %v of bubble time", d)
		}
		time.Sleep(5 * s)
		close(src.block)
		time.Sleep(5 * s)
		synctest.Wait()
		// The stuck computation outlasted the interval: the pending
		// trailing one starts as soon as it returns.
		want(t, src.offsets(t0), 0, 5*s)
	})
}

func TestPublisherCloseReturnsWhileSnapshotStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{block: make(chan struct{})}
		p := newPublisher(t, src, &fakeSink{}, metrics.PublisherConfig{})
		synctest.Wait() // stuck in Snapshot
		p.Close()       // cancels its ctx and waits
		p.Close()       // idempotent
		p.Trigger()     // does nothing, never blocks
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

func TestNewPublisherErrors(t *testing.T) {
	if _, err := metrics.NewPublisher(nil, &fakeSink{}, metrics.PublisherConfig{}); err == nil {
		t.Error("nil source accepted")
	}
	if _, err := metrics.NewPublisher(&fakeSource{}, nil, metrics.PublisherConfig{}); err == nil {
		t.Error("nil sink accepted")
	}
	if _, err := metrics.NewPublisher(&fakeSource{}, &fakeSink{}, metrics.PublisherConfig{Interval: -s}); err == nil {
		t.Error("negative interval accepted")
	}
	if _, err := metrics.NewPublisher(&fakeSource{}, &fakeSink{}, metrics.PublisherConfig{Refresh: -s}); err == nil {
		t.Error("negative refresh accepted")
	}
	var _ metrics.Source = (*metrics.Calculator)(nil)
}

// TestTwoPublishersOnOneRegistry: the second fails in NewPublisher with an
// error that says why, and starts nothing; on registries of their own both
// work.
func TestTwoPublishersOnOneRegistry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		p := newPublisher(t, &fakeSource{}, &fakeSink{}, metrics.PublisherConfig{Registerer: reg})
		defer p.Close()
		_, err := metrics.NewPublisher(&fakeSource{}, &fakeSink{}, metrics.PublisherConfig{Registerer: reg})
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) || !strings.Contains(err.Error(), "metrics: metrics already registered") {
			t.Fatalf("second Publisher: %v", err)
		}
		reg = prometheus.NewPedanticRegistry()
		for _, id := range []string{"1", "2"} {
			wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"instance": id}, reg)
			defer newPublisher(t, &fakeSource{}, &fakeSink{}, metrics.PublisherConfig{Registerer: wrapped}).Close()
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	})
}

// analyticsSource counts Analytics computations; analyticsSink keeps what
// it received.
type analyticsSource struct {
	fakeSource
	n atomic.Int64
}

func (f *analyticsSource) Analytics(context.Context) (notify.Analytics, error) {
	return notify.Analytics{Buckets: int(f.n.Add(1))}, nil
}

type analyticsSink struct {
	fakeSink
	mu  sync.Mutex
	got []notify.Analytics
}

func (f *analyticsSink) NotifyAnalyticsUpdate(_ context.Context, a notify.Analytics) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, a)
	return nil
}

// TestPublisherAnalytics: with PublisherConfig.Analytics, every computation
// also computes and sends the analytics, under the same coalescing rule (a
// burst costs two computations), and LatestAnalytics has the last; a sink
// that cannot take them is refused.
func TestPublisherAnalytics(t *testing.T) {
	if _, err := metrics.NewPublisher(&fakeSource{}, &fakeSink{}, metrics.PublisherConfig{Analytics: &analyticsSource{}}); err == nil {
		t.Error("a sink without NotifyAnalyticsUpdate accepted with Analytics")
	}
	var _ metrics.AnalyticsSource = (*metrics.Calculator)(nil)
	var _ metrics.AnalyticsSink = (*notify.Notifier)(nil)
	synctest.Test(t, func(t *testing.T) {
		src, sink := &analyticsSource{}, &analyticsSink{}
		p := newPublisher(t, src, sink, metrics.PublisherConfig{Interval: s, Analytics: src})
		defer p.Close()
		synctest.Wait() // the first computation, at once
		for range 100 { // folded into one, an interval later
			p.Trigger()
		}
		time.Sleep(2 * s)
		synctest.Wait()
		a, _, ok := p.LatestAnalytics()
		sink.mu.Lock()
		got := len(sink.got)
		sink.mu.Unlock()
		if !ok || got != 2 || a.Buckets != 2 || src.n.Load() != 2 || sink.count() != 2 {
			t.Errorf("latest %+v (%v), analytics sent %d, computed %d, metrics sent %d; want 2 of each",
				a, ok, got, src.n.Load(), sink.count())
		}
	})
}
