package hub

import "github.com/prometheus/client_golang/prometheus"

// telemetry holds the hub's Prometheus collectors. They always exist, so the
// hot path never checks for nil; WithRegisterer decides whether anyone sees
// them.
type telemetry struct {
	connections  *prometheus.GaugeVec
	opened       *prometheus.CounterVec
	closed       *prometheus.CounterVec
	sent         prometheus.Counter
	dropped      *prometheus.CounterVec
	slowClosed   prometheus.Counter
	authFailures prometheus.Counter

	// With a backplane only.
	bpPublished prometheus.Counter
	bpDropped   *prometheus.CounterVec
	bpReceived  prometheus.Counter
	bpLost      *prometheus.CounterVec
}

// Reasons a connection ended, the "reason" label of
// leadupdates_hub_connections_closed_total.
const (
	reasonClient    = "client"    // the client closed or went away
	reasonTimeout   = "timeout"   // no message from the client in time
	reasonSlow      = "slow"      // its send queue overflowed
	reasonProtocol  = "protocol"  // malformed or oversize input
	reasonShutdown  = "shutdown"  // the server shut down
	reasonHandshake = "handshake" // the handshake failed
	reasonError     = "error"     // a transport write failed
	reasonServer    = "server"    // closed by the engine or an application hook
	reasonAbandoned = "abandoned" // negotiated but never connected
)

func newTelemetry(reg prometheus.Registerer, backplane bool) (*telemetry, error) {
	t := &telemetry{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadupdates_hub_connections",
			Help: "Connections that completed the handshake and are open, by transport.",
		}, []string{"transport"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_connections_opened_total",
			Help: "Connections that completed the handshake, by transport.",
		}, []string{"transport"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_connections_closed_total",
			Help: "Connections that ended, by transport and reason.",
		}, []string{"transport", "reason"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_messages_sent_total",
			Help: "Server-to-client invocations queued for delivery, one per connection.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_messages_dropped_total",
			Help: "Server-to-client invocations not delivered, by reason (closing, overflow, encode; filter: a send to a filter name this instance does not know, counted once per send).",
		}, []string{"reason"}),
		slowClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_slow_consumer_closes_total",
			Help: "Connections closed because their send queue overflowed.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_auth_failures_total",
			Help: "Requests rejected with 401 or 403.",
		}),
		bpPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_published_total",
			Help: "Sends published to the other instances through the backplane.",
		}),
		bpDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_dropped_total",
			Help: "Sends not published to the other instances, by reason (overflow: queue full; error: publish failed).",
		}, []string{"reason"}),
		bpReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_received_total",
			Help: "Sends received from other instances and delivered to this instance's connections.",
		}),
		bpLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_backplane_lost_total",
			Help: "Sends of other instances this instance missed, by reason (gap: seen from a gap in their sequence numbers; invalid: a message not understood).",
		}, []string{"reason"}),
	}
	if reg != nil {
		cs := []prometheus.Collector{t.connections, t.opened, t.closed, t.sent, t.dropped, t.slowClosed, t.authFailures}
		if backplane {
			cs = append(cs, t.bpPublished, t.bpDropped, t.bpReceived, t.bpLost)
		}
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// connectionClosed counts a live connection that ended.
func (t *telemetry) connectionClosed(c *conn) {
	t.connections.WithLabelValues(string(c.transport)).Dec()
	t.closed.WithLabelValues(string(c.transport), c.closeReason()).Inc()
}
