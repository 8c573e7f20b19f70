package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/internal/promreg"
)

type telemetry struct {
	sent          *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	relayFailures prometheus.Counter
}

func newTelemetry(reg prometheus.Registerer, queued func() float64) (*telemetry, error) {
	f := promreg.With("notify", reg)
	t := &telemetry{
		sent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_notify_events_sent_total",
			Help: "Events handed to the hub, by type.",
		}, []string{"type"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_notify_events_dropped_total",
			Help: "Events not delivered, by reason (queue_full, panic; with a log: decode, pruned).",
		}, []string{"reason"}),
		relayFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_notify_relay_failures_total",
			Help: "Times the relay of a durable log stopped with an error and resumed.",
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "leadupdates_notify_queue_length",
		Help: "Events waiting for delivery.",
	}, queued)
	return t, f.Err()
}
