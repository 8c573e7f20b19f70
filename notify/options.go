package notify

import (
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// An Option configures a Notifier.
type Option func(*config)

type config struct {
	queue      int
	logger     log.Logger
	registerer prometheus.Registerer
	audience   func(*LeadUpdateMessage) string
	log        *eventlog.Log
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

// WithLog makes l, a durable event log, the way lead events reach clients
// (every Notify call but NotifyMetricsUpdate and NotifyAnalyticsUpdate,
// which stay on the queue: they are snapshots, the latest suffices). By
// default there is no log and every event goes through the queue.
//
// A lead event is then appended to l instead of queued: into the
// transaction of the caller when ctx carries an eventlog.Batch
// (eventlog.NewContext; interceptor.WithEventLog does this for its Sink),
// so that it exists if and only if that transaction commits; otherwise by
// l.Append in a transaction of its own, and the call returns the append's
// error, because in this mode a lost event is an error, not a drop. The
// call then waits for the database, no longer than ctx allows.
//
// The Notifier tails l from its head at New, in position order, and
// publishes each event to its hub's connections (Clients.Publish) as a
// LeadUpdateMessage whose Sequence is the event's position, to
// LeadUpdates and the lead's group, narrowed by the audience filter as
// without a log: every event when the Notifier has WithAudience, else
// those given an audience with ForAudience. Every instance tails the same
// log, so all of them send the same events in the same order, without a
// backplane. For clients to catch up, give the hub NewHubLog(l, opts...)
// with the same options.
func WithLog(l *eventlog.Log) Option { return func(c *config) { c.log = l } }
