package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/internal/promreg"
)

type telemetry struct {
	sent    *prometheus.CounterVec
	dropped *prometheus.CounterVec
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
			Help: "Events not delivered, by reason (queue_full, panic).",
		}, []string{"reason"}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "leadupdates_notify_queue_length",
		Help: "Events waiting for delivery.",
	}, queued)
	return t, f.Err()
}
