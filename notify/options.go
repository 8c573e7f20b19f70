package notify

import (
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// An Option configures a Notifier.
type Option func(*config)

type config struct {
	queue      int
	logger     log.Logger
	registerer prometheus.Registerer
	audience   func(*LeadUpdateMessage) string
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
// default they are kept but not registered. A second Notifier on the same
// registry fails in New: give each its own, e.g. with
// prometheus.WrapRegistererWith.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// FilterName is the name under which every hub instance must register its
// audience filter when a Notifier has WithAudience; the filter's arg is the
// event's audience key:
//
//	hub.WithFilter(notify.FilterName, func(owner string, p *hub.Principal) bool { ... })
const FilterName = "leadupdates.notify.audience"

// WithAudience narrows who sees each lead event, in two halves so that it
// works across hub instances joined by a backplane: key, run once per event
// in the caller's goroutine before the Notify call returns, names what
// decides it (for example the lead's owner, known where the lead was
// written), and the hub of every instance asks the filter registered under
// FilterName with that key for each of its connections. An event given
// under ForAudience takes that key instead. It never applies to metrics.
// Without either, every connection of the groups sees every event; with
// them and no registered filter, nobody does (the hub fails closed).
func WithAudience(key func(ev *LeadUpdateMessage) string) Option {
	return func(c *config) { c.audience = key }
}
