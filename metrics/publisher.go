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
)

// Source computes a Dashboard; *Calculator satisfies it.
type Source interface {
	Snapshot(ctx context.Context) (Dashboard, error)
}

// Sink receives each Dashboard the Publisher computes. The application
// adapts its notifier, for example
//
//	metrics.SinkFunc(func(ctx context.Context, d metrics.Dashboard) error {
//		return notifier.NotifyMetricsUpdate(ctx, notify.Metrics(d))
//	})
//
// A Sink is called from Run's goroutine, one call at a time; it must not
// modify the Dashboard's maps, which the Publisher keeps for Latest.
type Sink interface {
	PublishMetrics(ctx context.Context, d Dashboard) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, d Dashboard) error

// PublishMetrics calls f(ctx, d).
func (f SinkFunc) PublishMetrics(ctx context.Context, d Dashboard) error { return f(ctx, d) }

// PublisherOption configures a Publisher.
type PublisherOption func(*publisherConfig)

type publisherConfig struct {
	interval   time.Duration
	refresh    time.Duration
	logger     log.Logger
	registerer prometheus.Registerer
}

// WithInterval sets the shortest time between the starts of two
// computations: bursts of triggers coalesce into at most one computation per
// interval. Defaults to 1 s.
func WithInterval(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.interval = d }
}

// WithRefresh sets how often the Publisher recomputes without any trigger,
// so that "today" rolls over at midnight and time-based figures stay
// current. Defaults to 30 s.
func WithRefresh(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.refresh = d }
}

// WithLogger logs failed computations and deliveries. Defaults to no
// logging.
func WithLogger(l log.Logger) PublisherOption {
	return func(c *publisherConfig) { c.logger = l }
}

// WithRegisterer registers the Publisher's Prometheus collectors with r:
// leadupdates_metrics_computations_total{outcome="ok"|"snapshot_error"|"sink_error"},
// leadupdates_metrics_computation_seconds and
// leadupdates_metrics_triggers_total. By default they are kept but not
// registered (never with the default registry).
func WithRegisterer(r prometheus.Registerer) PublisherOption {
	return func(c *publisherConfig) { c.registerer = r }
}

// Outcomes of a computation, the values of the outcome label.
const (
	outcomeOK       = "ok"
	outcomeSnapshot = "snapshot_error"
	outcomeSink     = "sink_error"
)

// A Publisher computes Dashboards from a Source and hands them to a Sink:
// once when Run starts, after changes reported with Trigger, and every
// refresh period.
//
// Coalescing rule: two computations never start less than one interval
// apart. A trigger (a refresh tick counts as one) that arrives when no computation has
// started within the last interval starts one at once (leading edge); every
// trigger that arrives while a computation is running or within the
// interval after its start is folded into one computation that starts when
// that interval ends (trailing edge). A burst of any number of triggers
// within one interval after an idle period therefore costs exactly two
// computations: one at the first trigger and one an interval later, which
// sees the burst's last change. Computations run one at a time on Run's
// goroutine; one that outlasts the interval is followed at once by the
// trailing computation if triggers arrived meanwhile.
//
// A failed Snapshot or Sink call is logged and counted and the Publisher
// carries on; the next trigger or refresh tick tries again. Latest keeps the
// last successful snapshot, so that a client that connects gets the current
// figures at once, for example from the hub's OnConnected hook.
//
// A Publisher is safe for concurrent use; Trigger never blocks. Run must be
// called once.
type Publisher struct {
	src  Source
	sink Sink
	cfg  publisherConfig
	kick chan struct{}

	computations *prometheus.CounterVec
	duration     prometheus.Histogram
	triggers     prometheus.Counter

	mu     sync.Mutex
	latest Dashboard
	at     time.Time
	ok     bool
}

// NewPublisher returns a Publisher that reads src and writes to sink. It
// fails if src or sink is nil, an interval or refresh period is not
// positive, or its collectors cannot be registered.
func NewPublisher(src Source, sink Sink, opts ...PublisherOption) (*Publisher, error) {
	if src == nil || sink == nil {
		return nil, errors.New("metrics: nil Source or Sink")
	}
	cfg := publisherConfig{interval: time.Second, refresh: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.interval <= 0 || cfg.refresh <= 0 {
		return nil, errors.New("metrics: interval and refresh must be positive")
	}
	if cfg.logger == nil {
		cfg.logger = log.NewNopLogger()
	}
	p := &Publisher{
		src:  src,
		sink: sink,
		cfg:  cfg,
		kick: make(chan struct{}, 1),
		computations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_metrics_computations_total",
			Help: "Dashboard computations by the metrics Publisher, by outcome (ok, snapshot_error, sink_error).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadupdates_metrics_computation_seconds",
			Help:    "Time to compute a dashboard snapshot, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		triggers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_metrics_triggers_total",
			Help: "Calls to Trigger, coalesced into far fewer computations.",
		}),
	}
	for _, o := range []string{outcomeOK, outcomeSnapshot, outcomeSink} {
		p.computations.WithLabelValues(o)
	}
	if cfg.registerer != nil {
		for _, c := range []prometheus.Collector{p.computations, p.duration, p.triggers} {
			if err := cfg.registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
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
func (p *Publisher) Latest() (Dashboard, time.Time, bool) {
	p.mu.Lock()
	d, at, ok := p.latest, p.at, p.ok
	p.mu.Unlock()
	d.LeadsBySource = maps.Clone(d.LeadsBySource)
	d.LeadsByStatus = maps.Clone(d.LeadsByStatus)
	return d, at, ok
}

// Run computes and publishes until ctx is done, then returns ctx.Err(). It
// computes once at once, then as Trigger and the refresh period ask,
// following the coalescing rule of [Publisher]. The caller owns the
// goroutine: g.Go(func() error { return p.Run(ctx) }).
func (p *Publisher) Run(ctx context.Context) error {
	ticker := time.NewTicker(p.cfg.refresh)
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
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if pending && timerC == nil {
			wait := p.cfg.interval - time.Since(last)
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
			return ctx.Err()
		case <-p.kick:
			pending = true
		case <-ticker.C:
			pending = true
		case <-timerC:
			timerC = nil
		}
	}
}

// compute runs one Snapshot and hands it to the sink, logging and counting
// failures.
func (p *Publisher) compute(ctx context.Context, start time.Time) {
	d, err := p.src.Snapshot(ctx)
	p.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not a failure
		}
		p.computations.WithLabelValues(outcomeSnapshot).Inc()
		level.Error(p.cfg.logger).Log("msg", "metrics snapshot failed; retrying at the next trigger or tick", "err", err)
		return
	}
	p.mu.Lock()
	p.latest, p.at, p.ok = d, start, true
	p.mu.Unlock()
	if err := p.sink.PublishMetrics(ctx, d); err != nil {
		if ctx.Err() != nil {
			return
		}
		p.computations.WithLabelValues(outcomeSink).Inc()
		level.Error(p.cfg.logger).Log("msg", "metrics publish failed; retrying at the next trigger or tick", "err", err)
		return
	}
	p.computations.WithLabelValues(outcomeOK).Inc()
}
