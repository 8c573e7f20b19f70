package redisbackplane

import "github.com/prometheus/client_golang/prometheus"

// telemetry holds the Backplane's collectors; the hub counts what it
// publishes, receives and loses (leadupdates_hub_backplane_*).
type telemetry struct {
	subscribed prometheus.Gauge
	reconnects prometheus.Counter
}

func newTelemetry(reg prometheus.Registerer) (*telemetry, error) {
	t := &telemetry{
		subscribed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadupdates_redisbackplane_subscribed",
			Help: "1 while the backplane is subscribed to Redis, 0 while it is not (degraded: this instance serves only its own sends).",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_redisbackplane_reconnects_total",
			Help: "Times the Redis subscription failed (or could not start) and was retried.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{t.subscribed, t.reconnects} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}
