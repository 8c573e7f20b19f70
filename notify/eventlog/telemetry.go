package eventlog

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/internal/promreg"
)

type telemetry struct {
	appended, stamped, pruned prometheus.Counter
	lag                       prometheus.Histogram
}

func newTelemetry(reg prometheus.Registerer, l *Log) (*telemetry, error) {
	f := promreg.With("eventlog", reg)
	t := &telemetry{
		appended: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_eventlog_appended_total",
			Help: "Events appended through this log (counted before their transaction commits).",
		}),
		stamped: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_eventlog_stamped_total",
			Help: "Events given a position by this instance's sequencer (PostgreSQL).",
		}),
		pruned: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_eventlog_pruned_total",
			Help: "Events deleted by this instance's pruner.",
		}),
		lag: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadupdates_eventlog_sequencer_lag_seconds",
			Help:    "Age of the oldest event of each stamping batch when it got its position, from the start of its transaction (PostgreSQL).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "leadupdates_eventlog_head_position",
		Help: "Highest position assigned (read from the database at each scrape; NaN if that fails).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		h, err := l.Head(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(h)
	})
	return t, f.Err()
}
