package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/philippseith/signalr"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/ratelog"
)

// Clients is the part of a SignalR server a Notifier uses; *hub.Server
// satisfies it. Groups sends to the connections of the named groups, each
// once; GroupsFiltered narrows them, connection by connection, with the
// filter registered under the name filter, asked with arg. Both reach every
// instance when the hub has a backplane. Publish delivers an entry of a
// durable log to this instance's connections only, in position order
// (used with WithLog).
type Clients interface {
	Groups(names ...string) signalr.ClientProxy
	GroupsFiltered(filter, arg string, names ...string) signalr.ClientProxy
	Publish(e hub.Entry)
}

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("notify: notifier closed")
	// ErrInvalid marks input that cannot be a valid event; nothing was sent.
	ErrInvalid = errors.New("notify: invalid event")
)

// A Notifier tells dashboards what happened to leads. Lead events go to the
// LeadUpdates group and to the lead's own Lead_{id} group (a connection in
// both receives one copy); metrics go to LeadUpdates.
//
// A Notifier is safe for concurrent use, and its calls never block and never
// fail a caller's workflow: they validate, queue and return. One goroutine
// delivers the queue in order, so each caller's events reach every client in
// call order, numbered by an increasing sequence. When the queue is full the
// event is dropped, counted (leadupdates_notify_events_dropped_total) and
// logged, and the call still returns nil: the caller's work matters more
// than one dashboard update, and clients resynchronise on reconnect.
//
// Every call honours its ctx: one whose ctx is already done returns
// ctx.Err() and sends nothing. A call never waits, so ctx cannot end during
// it; ctx carries the caller's values (its transaction, a trace) to what
// the Notifier does on the caller's behalf.
//
// With WithLog, lead events are the exception: they are never dropped, an
// append in the call's own transaction waits for the database (bounded by
// ctx), and its failure is the call's error.
type Notifier struct {
	clients Clients
	cfg     config
	tel     *telemetry
	drops   *ratelog.Logger

	// The queue keeps the hub's fan-out off the caller: handing an event to
	// the hub costs the sender an encoding and a send to every connection's
	// queue, about 400 µs for 1,000 connections against 0.5 µs for a queue
	// send (BenchmarkEndToEnd, caller-ns/event; README, Benchmarks).
	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	queue  chan event
	done   chan struct{}

	// With WithLog: the relay tails the log and publishes (relay.go).
	entries   entries
	stopRelay context.CancelFunc
	relayDone chan struct{}
}

// event is one queued message and the audience it goes to.
type event struct {
	lead      *LeadUpdateMessage
	metrics   *MetricsUpdateMessage
	analytics *AnalyticsUpdateMessage
	audience  string // the filter's arg, when filtered
	filtered  bool   // a lead event for audience only (ForAudience, WithAudience)
}

// New returns a Notifier delivering through c and starts its delivery
// goroutine; Close stops it.
func New(c Clients, opts ...Option) (*Notifier, error) {
	if c == nil {
		return nil, errors.New("notify: nil Clients")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.queue < 1 {
		return nil, fmt.Errorf("notify: queue size %d must be at least 1", cfg.queue)
	}
	n := &Notifier{
		clients: c,
		cfg:     cfg,
		drops:   ratelog.New(level.Warn(cfg.logger), time.Second),
		queue:   make(chan event, cfg.queue),
		done:    make(chan struct{}),
	}
	tel, err := newTelemetry(cfg.registerer, func() float64 { return float64(len(n.queue)) })
	if err != nil {
		return nil, err
	}
	n.tel = tel
	if cfg.log != nil {
		if err := n.startRelay(); err != nil {
			return nil, err
		}
	}
	go n.deliver()
	return n, nil
}

// Close stops taking events, delivers those already queued and returns once
// they are handed to the hub and the delivery goroutine has returned. Later
// calls return ErrClosed. Close is idempotent and safe to call concurrently.
func (n *Notifier) Close() error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
		if n.stopRelay != nil {
			n.stopRelay()
		}
	}
	n.mu.Unlock()
	<-n.done
	if n.relayDone != nil {
		<-n.relayDone
	}
	return nil
}

// NotifyNewLead announces a lead that was just created; lead is the
// application's own lead value, sent as JSON. It is encoded when the event is
// delivered, after NotifyNewLead returns: pass a value the caller will not
// modify (a struct value rather than a pointer to a model it keeps using).
// With WithLog it is encoded during the call, into the log.
func (n *Notifier) NotifyNewLead(ctx context.Context, leadID int64, lead any, source string) error {
	return n.lead(ctx, &LeadUpdateMessage{Type: TypeNewLead, LeadID: leadID, Lead: lead, Source: source})
}

// NotifyLeadStatusUpdate announces a status change; previous and next must
// differ.
func (n *Notifier) NotifyLeadStatusUpdate(ctx context.Context, leadID int64, previous, next string) error {
	if previous == next {
		return fmt.Errorf("%w: status of lead %d did not change (%q)", ErrInvalid, leadID, next)
	}
	if next == "" {
		return fmt.Errorf("%w: empty new status for lead %d", ErrInvalid, leadID)
	}
	return n.lead(ctx, &LeadUpdateMessage{Type: TypeStatusUpdate, LeadID: leadID, PreviousStatus: previous, NewStatus: next})
}

// NotifyLeadScoreUpdate announces a new score.
func (n *Notifier) NotifyLeadScoreUpdate(ctx context.Context, leadID int64, previous, next float64) error {
	// One allocation for the message and both scores it points to.
	s := &struct {
		m          LeadUpdateMessage
		prev, next float64
	}{prev: previous, next: next}
	s.m = LeadUpdateMessage{Type: TypeScoreUpdate, LeadID: leadID, PreviousScore: &s.prev, NewScore: &s.next}
	return n.lead(ctx, &s.m)
}

// NotifyLeadEnrichment announces that enrichment completed, with the
// enriched lead; as with NotifyNewLead, lead must not change after the call.
func (n *Notifier) NotifyLeadEnrichment(ctx context.Context, leadID int64, lead any) error {
	return n.lead(ctx, &LeadUpdateMessage{Type: TypeEnrichmentUpdate, LeadID: leadID, Lead: lead})
}

// NotifyWorkflowStarted announces that a workflow started on a lead.
func (n *Notifier) NotifyWorkflowStarted(ctx context.Context, leadID int64, workflow string) error {
	return n.workflow(ctx, TypeWorkflowStarted, leadID, workflow, "started")
}

// NotifyWorkflowCompleted announces that a workflow finished.
func (n *Notifier) NotifyWorkflowCompleted(ctx context.Context, leadID int64, workflow string) error {
	return n.workflow(ctx, TypeWorkflowCompleted, leadID, workflow, "completed")
}

// NotifyWorkflowFailed announces that a workflow failed, and why. The reason
// reaches every dashboard: pass what a user may read, not internals.
func (n *Notifier) NotifyWorkflowFailed(ctx context.Context, leadID int64, workflow, reason string) error {
	text := "failed"
	if reason != "" {
		text = "failed: " + reason
	}
	return n.workflow(ctx, TypeWorkflowFailed, leadID, workflow, text)
}

// NotifyLeadDeleted announces that a lead was deleted.
func (n *Notifier) NotifyLeadDeleted(ctx context.Context, leadID int64) error {
	return n.lead(ctx, &LeadUpdateMessage{Type: TypeLeadDeleted, LeadID: leadID})
}

// NotifyMetricsUpdate sends dashboard metrics to LeadUpdates.
func (n *Notifier) NotifyMetricsUpdate(ctx context.Context, m Metrics) error {
	return n.enqueue(ctx, event{metrics: &MetricsUpdateMessage{Type: TypeMetricsUpdate, Metrics: m, Timestamp: now()}})
}

// NotifyAnalyticsUpdate sends processing analytics to LeadUpdates, with
// the client method ReceiveAnalyticsUpdate.
func (n *Notifier) NotifyAnalyticsUpdate(ctx context.Context, a Analytics) error {
	return n.enqueue(ctx, event{analytics: &AnalyticsUpdateMessage{Type: TypeAnalyticsUpdate, Analytics: a, Timestamp: now()}})
}

func (n *Notifier) workflow(ctx context.Context, typ string, leadID int64, workflow, what string) error {
	if workflow == "" {
		return fmt.Errorf("%w: empty workflow name for lead %d", ErrInvalid, leadID)
	}
	return n.lead(ctx, &LeadUpdateMessage{Type: typ, LeadID: leadID, Message: workflow + " " + what})
}

func (n *Notifier) lead(ctx context.Context, m *LeadUpdateMessage) error {
	if m.LeadID <= 0 {
		return fmt.Errorf("%w: %s needs a positive lead id, got %d", ErrInvalid, m.Type, m.LeadID)
	}
	m.Timestamp = now()
	ev := event{lead: m}
	// The audience is decided now, by the caller, and travels with the
	// event: nothing is looked up at delivery, after other writes.
	if key, ok := ctx.Value(audienceKey{}).(string); ok {
		ev.audience, ev.filtered = key, true
	} else if key := n.cfg.audience; key != nil {
		ev.audience, ev.filtered = key(m), true
	}
	if n.cfg.log != nil {
		return n.append(ctx, m, ev.audience)
	}
	return n.enqueue(ctx, ev)
}

type audienceKey struct{}

// ForAudience returns a copy of ctx under which a Notifier sends each lead
// event to audience key only: every hub instance asks the filter registered
// under FilterName with key, connection by connection. It takes precedence
// over WithAudience. Use it when the caller knows the audience as of its
// write — for example the owner that the statement which changed the lead
// returned (interceptor.Fields.Audience) — so that a concurrent change on
// another instance cannot make it stale.
func ForAudience(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, audienceKey{}, key)
}

// enqueue never blocks: a full queue drops the event. A done ctx sends
// nothing.
func (n *Notifier) enqueue(ctx context.Context, ev event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return ErrClosed
	}
	select {
	case n.queue <- ev:
		return nil
	default:
		n.tel.dropped.WithLabelValues("queue_full").Inc()
		n.drops.Log("msg", "notification queue full; event dropped", "type", ev.typ(), "queue", cap(n.queue))
		return nil
	}
}

func (ev event) typ() string {
	if ev.lead != nil {
		return ev.lead.Type
	}
	if ev.analytics != nil {
		return TypeAnalyticsUpdate
	}
	return TypeMetricsUpdate
}

// deliver hands queued events to the hub in order until Close. The
// sequence is numbered here, in delivery order: microseconds since the
// epoch, or one more than the last when the clock has not moved on (or went
// back), so that it increases per producer and compares across producers
// whose clocks agree — a client of several instances can still tell older
// from newer.
func (n *Notifier) deliver() {
	defer close(n.done)
	var seq uint64
	for ev := range n.queue {
		seq = max(seq+1, uint64(time.Now().UnixMicro()))
		n.send(ev, seq)
	}
}

// send hands one event to the hub. Clients is an interface: the recover
// keeps one panicking Send from ending the delivery goroutine, and with it
// every later event (TestPanickingHubDoesNotStopDelivery).
func (n *Notifier) send(ev event, seq uint64) {
	defer func() {
		if v := recover(); v != nil {
			n.tel.dropped.WithLabelValues("panic").Inc()
			level.Error(n.cfg.logger).Log("msg", "delivery panicked", "type", ev.typ(), "err", fmt.Sprint(v))
		}
	}()
	if m := ev.lead; m != nil {
		m.Sequence = seq
		if ev.filtered {
			n.clients.GroupsFiltered(FilterName, ev.audience, hub.DefaultGroup, hub.LeadGroup(m.LeadID)).Send(MethodLeadUpdate, m)
		} else {
			n.clients.Groups(hub.DefaultGroup, hub.LeadGroup(m.LeadID)).Send(MethodLeadUpdate, m)
		}
	} else if ev.analytics != nil {
		ev.analytics.Sequence = seq
		n.clients.Groups(hub.DefaultGroup).Send(MethodAnalyticsUpdate, ev.analytics)
	} else {
		ev.metrics.Sequence = seq
		n.clients.Groups(hub.DefaultGroup).Send(MethodMetricsUpdate, ev.metrics)
	}
	n.tel.sent.WithLabelValues(ev.typ()).Inc()
}

func now() Timestamp { return Timestamp{Time: time.Now()} }
