package notify

import "github.com/prometheus/client_golang/prometheus"

type telemetry struct {
	sent    *prometheus.CounterVec
	dropped *prometheus.CounterVec
}

func newTelemetry(reg prometheus.Registerer, queued func() float64) (*telemetry, error) {
	t := &telemetry{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_notify_events_sent_total",
			Help: "Events handed to the hub, by type.",
		}, []string{"type"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_notify_events_dropped_total",
			Help: "Events not delivered, by reason (queue_full, panic).",
		}, []string{"reason"}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "leadupdates_notify_queue_length",
		Help: "Events waiting for delivery.",
	}, queued)
	if reg != nil {
		for _, c := range []prometheus.Collector{t.sent, t.dropped, queue} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}
