package metrics

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/internal/promreg"
	"github.com/leadupdates/leadupdates/notify"
)

// Source computes the dashboard figures; *Calculator satisfies it.
type Source interface {
	Snapshot(ctx context.Context) (notify.Metrics, error)
}

// Sink receives each set of figures the Publisher computes;
// *notify.Notifier satisfies it. It is called from the Publisher's
// goroutine, one call at a time, and must not modify the maps, which the
// Publisher keeps for Latest.
type Sink interface {
	NotifyMetricsUpdate(ctx context.Context, m notify.Metrics) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, m notify.Metrics) error

// NotifyMetricsUpdate calls f(ctx, m).
func (f SinkFunc) NotifyMetricsUpdate(ctx context.Context, m notify.Metrics) error { return f(ctx, m) }

// AnalyticsSource computes the processing analytics; *Calculator
// satisfies it.
type AnalyticsSource interface {
	Analytics(ctx context.Context) (notify.Analytics, error)
}

// AnalyticsSink receives each set of analytics the Publisher computes;
// *notify.Notifier satisfies it. Like Sink, it is called from the
// Publisher's goroutine and must not modify what it receives.
type AnalyticsSink interface {
	NotifyAnalyticsUpdate(ctx context.Context, a notify.Analytics) error
}

// PublisherConfig holds a Publisher's optional settings; the zero value of
// each field is its default.
type PublisherConfig struct {
	// Interval is the shortest time between the starts of two
	// computations: bursts of triggers coalesce into at most one
	// computation per interval. Defaults to 1 s.
	Interval time.Duration
	// Refresh is how often the Publisher recomputes without any trigger,
	// so that "today" rolls over at midnight. Defaults to 30 s.
	Refresh time.Duration
	// Analytics, if set, is computed in the same computation as the
	// figures, after them, and handed to the sink, which must then also
	// be an AnalyticsSink; its outcome is counted in
	// leadupdates_metrics_computations_total like the figures'. Defaults
	// to none.
	Analytics AnalyticsSource
	// Logger logs failed computations and deliveries. Defaults to none.
	Logger log.Logger
	// Registerer, if set, registers the Publisher's collectors:
	// leadupdates_metrics_computations_total{outcome="ok"|"snapshot_error"|"sink_error"},
	// leadupdates_metrics_computation_seconds and
	// leadupdates_metrics_triggers_total. A second Publisher on the same
	// registry fails in NewPublisher.
	Registerer prometheus.Registerer
}

// Outcomes of a computation, the values of the outcome label.
const (
	outcomeOK       = "ok"
	outcomeSnapshot = "snapshot_error"
	outcomeSink     = "sink_error"
)

// A Publisher computes figures from a Source and hands them to a Sink: once
// when it starts, after changes reported with Trigger, and every refresh
// period.
//
// Coalescing rule: two computations never start less than one interval
// apart. A trigger (a refresh tick counts as one) that arrives when no
// computation has started within the last interval starts one at once
// (leading edge); every trigger that arrives while a computation is running
// or within the interval after its start is folded into one computation
// that starts when that interval ends (trailing edge). A burst of any
// number of triggers within one interval after an idle period therefore
// costs exactly two computations: one at the first trigger and one an
// interval later, which sees the burst's last change. Computations run one
// at a time; one that outlasts the interval is followed at once by the
// trailing computation if triggers arrived meanwhile.
//
// A failed Snapshot or Sink call is logged and counted and the Publisher
// carries on; the next trigger or refresh tick tries again. Latest keeps the
// last successful snapshot, so that a client that connects gets the current
// figures at once, for example from the hub's OnConnected hook.
//
// A Publisher is safe for concurrent use; Trigger never blocks.
type Publisher struct {
	src  Source
	sink Sink
	cfg  PublisherConfig
	kick chan struct{}

	computations *prometheus.CounterVec
	duration     prometheus.Histogram
	triggers     prometheus.Counter

	stop     context.CancelFunc
	stopped  chan struct{}
	stopOnce sync.Once

	mu     sync.Mutex
	latest notify.Metrics
	at     time.Time
	ok     bool

	analyticsSink AnalyticsSink
	analytics     notify.Analytics
	analyticsAt   time.Time
	analyticsOK   bool
}

// NewPublisher returns a Publisher that reads src and writes to sink, and
// starts its goroutine, which computes at once; Close stops it. It fails if
// src or sink is nil, Interval or Refresh is negative, or the collectors
// cannot be registered.
func NewPublisher(src Source, sink Sink, cfg PublisherConfig) (*Publisher, error) {
	if src == nil || sink == nil {
		return nil, errors.New("metrics: nil Source or Sink")
	}
	if cfg.Interval < 0 || cfg.Refresh < 0 {
		return nil, errors.New("metrics: negative interval or refresh")
	}
	var asink AnalyticsSink
	if cfg.Analytics != nil {
		var ok bool
		if asink, ok = sink.(AnalyticsSink); !ok {
			return nil, errors.New("metrics: PublisherConfig.Analytics is set but the sink is no AnalyticsSink")
		}
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	f := promreg.With("metrics", cfg.Registerer)
	p := &Publisher{
		src:  src,
		sink: sink,
		cfg:  cfg,
		kick: make(chan struct{}, 1),
		computations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_metrics_computations_total",
			Help: "Dashboard computations by the metrics Publisher, by outcome (ok, snapshot_error, sink_error).",
		}, []string{"outcome"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadupdates_metrics_computation_seconds",
			Help:    "Time to compute a dashboard snapshot, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		triggers: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_metrics_triggers_total",
			Help: "Calls to Trigger, coalesced into far fewer computations.",
		}),
		stopped:       make(chan struct{}),
		analyticsSink: asink,
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	for _, o := range []string{outcomeOK, outcomeSnapshot, outcomeSink} {
		p.computations.WithLabelValues(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() {
		defer close(p.stopped)
		p.run(ctx)
	}()
	return p, nil
}

// Close stops the Publisher: a computation in progress has its ctx
// cancelled, and Close returns once the goroutine has returned. Close is
// idempotent and safe to call concurrently; Trigger after Close does
// nothing.
func (p *Publisher) Close() error {
	p.stopOnce.Do(p.stop)
	<-p.stopped
	return nil
}

// Trigger reports that leads changed, so the figures are stale. It never
// blocks and is cheap enough to call on every change; the computation it
// causes follows the coalescing rule of [Publisher].
func (p *Publisher) Trigger() {
	p.triggers.Inc()
	select {
	case p.kick <- struct{}{}:
	default: // a kick is already pending: this change is folded into it
	}
}

// Latest returns the last successful snapshot, the time its computation
// started, and whether there is one yet. The maps are copies. The
// application sends it to a newly connected client, for example from
// hub.WithOnConnected, so that the client need not wait for the next change.
func (p *Publisher) Latest() (notify.Metrics, time.Time, bool) {
	p.mu.Lock()
	m, at, ok := p.latest, p.at, p.ok
	p.mu.Unlock()
	m.LeadsBySource = maps.Clone(m.LeadsBySource)
	m.LeadsByStatus = maps.Clone(m.LeadsByStatus)
	return m, at, ok
}

// LatestAnalytics returns the last successful analytics, the time their
// computation started, and whether there are any yet (never without
// PublisherConfig.Analytics). The application sends them to a newly
// connected client, as Latest.
func (p *Publisher) LatestAnalytics() (notify.Analytics, time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.analytics, p.analyticsAt, p.analyticsOK
}

// run computes and publishes until ctx is done: once at once, then as
// Trigger and the refresh period ask, following the coalescing rule.
func (p *Publisher) run(ctx context.Context) {
	ticker := time.NewTicker(p.cfg.Refresh)
	defer ticker.Stop()
	var (
		timer   *time.Timer
		timerC  <-chan time.Time // non-nil while a trailing computation waits
		pending = true           // figures are stale: compute when allowed
		last    time.Time        // start of the last computation
		started bool             // whether there was one
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for ctx.Err() == nil {
		if pending && timerC == nil {
			wait := p.cfg.Interval - time.Since(last)
			if !started || wait <= 0 {
				pending, started, last = false, true, time.Now()
				p.compute(ctx, last)
				continue
			}
			timer = time.NewTimer(wait)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
		case <-p.kick:
			pending = true
		case <-ticker.C:
			pending = true
		case <-timerC:
			timerC = nil
		}
	}
}

// compute runs one Snapshot and hands it to the sink, then does the same
// with the analytics if configured, logging and counting failures.
func (p *Publisher) compute(ctx context.Context, start time.Time) {
	p.computeMetrics(ctx, start)
	if p.cfg.Analytics != nil && ctx.Err() == nil {
		p.computeAnalytics(ctx, start)
	}
}

// computeAnalytics runs one Analytics and hands it to the sink.
func (p *Publisher) computeAnalytics(ctx context.Context, start time.Time) {
	a, err := p.cfg.Analytics.Analytics(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		p.computations.WithLabelValues(outcomeSnapshot).Inc()
		level.Error(p.cfg.Logger).Log("msg", "analytics computation failed; retrying at the next trigger or tick", "err", err)
		return
	}
	p.mu.Lock()
	p.analytics, p.analyticsAt, p.analyticsOK = a, start, true
	p.mu.Unlock()
	if err := p.analyticsSink.NotifyAnalyticsUpdate(ctx, a); err != nil {
		if ctx.Err() != nil {
			return
		}
		p.computations.WithLabelValues(outcomeSink).Inc()
		level.Error(p.cfg.Logger).Log("msg", "analytics publish failed; retrying at the next trigger or tick", "err", err)
		return
	}
	p.computations.WithLabelValues(outcomeOK).Inc()
}

func (p *Publisher) computeMetrics(ctx context.Context, start time.Time) {
	m, err := p.src.Snapshot(ctx)
	p.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return // closing: not a failure
		}
		p.computations.WithLabelValues(outcomeSnapshot).Inc()
		level.Error(p.cfg.Logger).Log("msg", "metrics snapshot failed; retrying at the next trigger or tick", "err", err)
		return
	}
	p.mu.Lock()
	p.latest, p.at, p.ok = m, start, true
	p.mu.Unlock()
	if err := p.sink.NotifyMetricsUpdate(ctx, m); err != nil {
		if ctx.Err() != nil {
			return
		}
		p.computations.WithLabelValues(outcomeSink).Inc()
		level.Error(p.cfg.Logger).Log("msg", "metrics publish failed; retrying at the next trigger or tick", "err", err)
		return
	}
	p.computations.WithLabelValues(outcomeOK).Inc()
}
