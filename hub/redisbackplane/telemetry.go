package redisbackplane

import (
	"github.com/leadupdates/leadupdates/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// telemetry holds the Backplane's collectors; the hub counts what it
// publishes, receives and loses (leadupdates_hub_backplane_*).
type telemetry struct {
	subscribed prometheus.Gauge
	reconnects prometheus.Counter
}

func newTelemetry(f *promreg.Factory) *telemetry {
	return &telemetry{
		subscribed: f.NewGauge(prometheus.GaugeOpts{
			Name: "leadupdates_redisbackplane_subscribed",
			Help: "1 while the backplane is subscribed to Redis, 0 while it is not (degraded: this instance serves only its own sends).",
		}),
		reconnects: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_redisbackplane_reconnects_total",
			Help: "Times the Redis subscription failed (or could not start) and was retried.",
		}),
	}
}
