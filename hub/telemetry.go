package hub

import (
	"github.com/leadupdates/leadupdates/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// telemetry holds the hub's Prometheus collectors (the relay has its own).
// They always exist, so the hot path never checks for nil; WithRegisterer
// decides whether anyone sees them.
type telemetry struct {
	connections *prometheus.GaugeVec
	opened      *prometheus.CounterVec
	closed      *prometheus.CounterVec
	sent        prometheus.Counter
	dropped     *prometheus.CounterVec
	slowClosed  prometheus.Counter
	// Stateful reconnect.
	reattached    prometheus.Counter
	unackedClosed prometheus.Counter
	authFailures  prometheus.Counter
	limited       *prometheus.CounterVec
	refusals      prometheus.Counter
	// CatchUp.
	catchUps *prometheus.CounterVec
	caughtUp prometheus.Counter
	// Hand-off.
	handoffs     *prometheus.CounterVec
	sessionSaves *prometheus.CounterVec
}

// Reasons a connection ended, the "reason" label of
// leadupdates_hub_connections_closed_total.
const (
	reasonClient    = "client"     // the client closed or went away
	reasonTimeout   = "timeout"    // no message from the client in time
	reasonSlow      = "slow"       // its send queue overflowed
	reasonProtocol  = "protocol"   // malformed or oversize input
	reasonShutdown  = "shutdown"   // the server shut down
	reasonHandshake = "handshake"  // the handshake failed
	reasonError     = "error"      // a transport write failed
	reasonServer    = "server"     // closed by the engine or an application hook
	reasonAbandoned = "abandoned"  // negotiated but never connected
	reasonDetached  = "detached"   // stateful: its WebSocket dropped and no re-attach came in time
	reasonUnacked   = "unacked"    // stateful: unacknowledged messages exceeded the replay buffer
	reasonExpired   = "expired"    // its credential expired (Principal.Expires)
	reasonRevoked   = "revoked"    // the Revalidator refused its principal
	reasonHandedOff = "handed_off" // stateful: another instance resumed it
)

func newTelemetry(f *promreg.Factory) *telemetry {
	return &telemetry{
		connections: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadupdates_hub_connections",
			Help: "Connections that completed the handshake and are open, by transport.",
		}, []string{"transport"}),
		opened: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_connections_opened_total",
			Help: "Connections that completed the handshake, by transport.",
		}, []string{"transport"}),
		closed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_connections_closed_total",
			Help: "Connections that ended, by transport and reason.",
		}, []string{"transport", "reason"}),
		sent: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_messages_sent_total",
			Help: "Server-to-client invocations queued for delivery, one per connection.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_messages_dropped_total",
			Help: "Server-to-client invocations not delivered, by reason (closing, overflow, encode; unacked: a stateful connection's replay buffer overflowed; filter: a send to a filter name this instance does not know, counted once per send).",
		}, []string{"reason"}),
		slowClosed: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_slow_consumer_closes_total",
			Help: "Connections closed because their send queue overflowed.",
		}),
		reattached: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_reattached_total",
			Help: "Stateful-reconnect connections whose client re-attached a new WebSocket and had what it missed resent.",
		}),
		unackedClosed: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_unacked_closes_total",
			Help: "Stateful-reconnect connections closed (allowReconnect) because the messages their client had not acknowledged exceeded the replay buffer.",
		}),
		authFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_auth_failures_total",
			Help: "Requests rejected with 401 or 403.",
		}),
		limited: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_rate_limited_total",
			Help: "Requests and calls refused by a per-user or per-connection limit, by kind (negotiate: 429 for too many pending connections of one user or address; invocation: a hub method call over WithInvocationRate, answered with an error or, for a send(), dropped).",
		}, []string{"kind"}),
		refusals: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_group_refusals_cached_total",
			Help: "JoinLeadGroup calls refused from the cache of recent refusals, without asking the GroupAuthorizer.",
		}),
		catchUps: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_catchups_total",
			Help: "CatchUp calls that ran, by result (complete; reload: the position was pruned and the client told to reload; failed: the log could not be read or the connection ended).",
		}, []string{"result"}),
		caughtUp: f.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_hub_catchup_messages_total",
			Help: "Messages CatchUp replayed from the log, one per connection (also counted in leadupdates_hub_messages_sent_total).",
		}),
		handoffs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_handoffs_total",
			Help: "Stateful connections moving between instances, by result (resumed: resumed here from another instance; taken: this instance's copy was resumed elsewhere; forbidden: another user's token; error: the session store failed).",
		}, []string{"result"}),
		sessionSaves: f.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_hub_session_saves_total",
			Help: "Batched saves of stateful connections' sessions to the session store, by result (ok, error).",
		}, []string{"result"}),
	}
}

// connectionClosed counts a live connection that ended.
func (t *telemetry) connectionClosed(c *conn) {
	t.connections.WithLabelValues(string(c.transport)).Dec()
	t.closed.WithLabelValues(string(c.transport), c.closeReason()).Inc()
}
