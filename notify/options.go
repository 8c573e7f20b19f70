package notify

import (
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Viewer is the user behind one connection, as the hub authenticated it.
type Viewer struct {
	ID    string
	Roles []string
}

// An Option configures a Notifier.
type Option func(*config)

type config struct {
	queue      int
	logger     log.Logger
	registerer prometheus.Registerer
	filter     func(*LeadUpdateMessage, Viewer) bool
}

func defaults() config {
	return config{queue: 4096, logger: log.NewNopLogger()}
}

// WithQueue sets how many events may wait for delivery; beyond that new
// events are dropped and counted. Defaults to 4096.
func WithQueue(n int) Option { return func(c *config) { c.queue = n } }

// WithLogger logs dropped events and delivery failures. Defaults to no
// logging.
func WithLogger(l log.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegisterer registers the Notifier's Prometheus collectors with r. By
// default they are kept but not registered.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithFilter decides, per lead event and connection, whether that
// connection's user sees the event: for example a salesperson sees only the
// events of leads they own. It runs once per connection per event, inside
// the hub's delivery, so it must be fast and must not block; it never sees
// metrics. Defaults to everyone seeing every event.
func WithFilter(f func(ev *LeadUpdateMessage, v Viewer) bool) Option {
	return func(c *config) { c.filter = f }
}
