package notify_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/philippseith/signalr"
	"github.com/prometheus/client_golang/prometheus"
)

// sent is one Send the fake hub saw.
type sent struct {
	groups      []string
	filter, key string // GroupsFiltered's; empty for Groups
	target      string
	arg         any
	position    uint64 // a Publish's; 0 for Send
}

// recordingClients is a fake hub that records what it is asked to send.
type recordingClients struct {
	mu    sync.Mutex
	sends []sent
	hook  func(sent) // runs inside Send, e.g. to block or panic
}

func (r *recordingClients) Groups(names ...string) signalr.ClientProxy {
	return proxy{r: r, groups: names}
}

func (r *recordingClients) GroupsFiltered(filter, key string, names ...string) signalr.ClientProxy {
	return proxy{r: r, filter: filter, key: key, groups: names}
}

// Publish records a logged entry as a send to its groups and filter.
func (r *recordingClients) Publish(e hub.Entry) {
	proxy{r: r, filter: e.Filter, key: e.Arg, groups: e.Groups, position: e.Position}.Send(e.Target, e.Args...)
}

func (r *recordingClients) all() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sends)
}

type proxy struct {
	r           *recordingClients
	filter, key string
	groups      []string
	position    uint64
}

func (p proxy) Send(target string, args ...any) {
	s := sent{groups: p.groups, filter: p.filter, key: p.key, target: target, arg: args[0], position: p.position}
	if p.r.hook != nil {
		p.r.hook(s)
	}
	p.r.mu.Lock()
	p.r.sends = append(p.r.sends, s)
	p.r.mu.Unlock()
}

func newNotifier(t *testing.T, c notify.Clients, opts ...notify.Option) *notify.Notifier {
	t.Helper()
	n, err := notify.New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

type crmLead struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Owner string `json:"owner"`
}

func TestEveryOperationSendsItsMessage(t *testing.T) {
	ctx := t.Context()
	l := crmLead{ID: 42, Name: "Ada", Owner: "bob"}
	tests := []struct {
		name  string
		call  func(*notify.Notifier) error
		check func(t *testing.T, m *notify.LeadUpdateMessage)
		typ   string
	}{
		{"new lead", func(n *notify.Notifier) error { return n.NotifyNewLead(ctx, 42, l, "Google") }, func(t *testing.T, m *notify.LeadUpdateMessage) {
			if m.Lead != l || m.Source != "Google" {
				t.Errorf("lead %v source %q", m.Lead, m.Source)
			}
		}, notify.TypeNewLead},
		{"status update", func(n *notify.Notifier) error { return n.NotifyLeadStatusUpdate(ctx, 42, "New", "Enriching") }, func(t *testing.T, m *notify.LeadUpdateMessage) {
			if m.PreviousStatus != "New" || m.NewStatus != "Enriching" {
				t.Errorf("statuses %q → %q", m.PreviousStatus, m.NewStatus)
			}
		}, notify.TypeStatusUpdate},
		{"score update", func(n *notify.Notifier) error { return n.NotifyLeadScoreUpdate(ctx, 42, 40, 87.5) }, func(t *testing.T, m *notify.LeadUpdateMessage) {
			if m.PreviousScore == nil || *m.PreviousScore != 40 || m.NewScore == nil || *m.NewScore != 87.5 {
				t.Errorf("scores %v → %v", m.PreviousScore, m.NewScore)
			}
		}, notify.TypeScoreUpdate},
		{"enrichment", func(n *notify.Notifier) error { return n.NotifyLeadEnrichment(ctx, 42, l) }, func(t *testing.T, m *notify.LeadUpdateMessage) {
			if m.Lead != l {
				t.Errorf("lead %v", m.Lead)
			}
		}, notify.TypeEnrichmentUpdate},
		{"workflow started", func(n *notify.Notifier) error { return n.NotifyWorkflowStarted(ctx, 42, "LeadProcessing") }, func(t *testing.T, m *notify.LeadUpdateMessage) {
			if m.Message != "LeadProcessing started" {
				t.Errorf("message %q", m.Message)
			}
		}, notify.TypeWorkflowStarted},
		{"workflow completed", func(n *notify.Notifier) error { return n.NotifyWorkflowCompleted(ctx, 42, "LeadProcessing") }, func(t *testing.T, m *notify.LeadUpdateMessage) {
			if m.Message != "LeadProcessing completed" {
				t.Errorf("message %q", m.Message)
			}
		}, notify.TypeWorkflowCompleted},
		{"workflow failed", func(n *notify.Notifier) error {
			return n.NotifyWorkflowFailed(ctx, 42, "LeadProcessing", "CRM unreachable")
		}, func(t *testing.T, m *notify.LeadUpdateMessage) {
			if m.Message != "LeadProcessing failed: CRM unreachable" {
				t.Errorf("message %q", m.Message)
			}
		}, notify.TypeWorkflowFailed},
		{"lead deleted", func(n *notify.Notifier) error { return n.NotifyLeadDeleted(ctx, 42) }, func(t *testing.T, m *notify.LeadUpdateMessage) {}, notify.TypeLeadDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &recordingClients{}
			n := newNotifier(t, fake)
			if err := tt.call(n); err != nil {
				t.Fatal(err)
			}
			n.Close()
			got := fake.all()
			if len(got) != 1 {
				t.Fatalf("%d sends, want 1", len(got))
			}
			s := got[0]
			if s.target != notify.MethodLeadUpdate || !slices.Equal(s.groups, []string{hub.DefaultGroup, hub.LeadGroup(42)}) {
				t.Errorf("sent %s to %v, want %s to [LeadUpdates Lead_42]", s.target, s.groups, notify.MethodLeadUpdate)
			}
			m, ok := s.arg.(*notify.LeadUpdateMessage)
			if !ok {
				t.Fatalf("argument is %T", s.arg)
			}
			if string(m.Type) != string(tt.typ) || m.LeadID != 42 || m.Sequence == 0 || m.Timestamp.IsZero() {
				t.Errorf("message %+v", m)
			}
			tt.check(t, m)
		})
	}
}

func TestMetricsGoToLeadUpdates(t *testing.T) {
	fake := &recordingClients{}
	n := newNotifier(t, fake, notify.WithAudience(func(*notify.LeadUpdateMessage) string { return "nobody" }))
	if err := n.NotifyMetricsUpdate(t.Context(), notify.Metrics{TotalLeads: 10, QualifiedLeads: 3}); err != nil {
		t.Fatal(err)
	}
	n.Close()
	got := fake.all()
	if len(got) != 1 || got[0].target != notify.MethodMetricsUpdate || !slices.Equal(got[0].groups, []string{hub.DefaultGroup}) || got[0].filter != "" {
		t.Fatalf("sends %+v", got)
	}
	m := got[0].arg.(*notify.MetricsUpdateMessage)
	if m.Type != notify.TypeMetricsUpdate || m.Metrics.TotalLeads != 10 || m.Sequence == 0 {
		t.Errorf("message %+v", m)
	}
}

func TestAnalyticsGoToLeadUpdates(t *testing.T) {
	fake := &recordingClients{}
	n := newNotifier(t, fake, notify.WithAudience(func(*notify.LeadUpdateMessage) string { return "nobody" }))
	if err := n.NotifyAnalyticsUpdate(t.Context(), notify.Analytics{Buckets: 3, BucketSeconds: 300}); err != nil {
		t.Fatal(err)
	}
	n.Close()
	got := fake.all()
	if len(got) != 1 || got[0].target != notify.MethodAnalyticsUpdate || !slices.Equal(got[0].groups, []string{hub.DefaultGroup}) || got[0].filter != "" {
		t.Fatalf("sends %+v", got)
	}
	m := got[0].arg.(*notify.AnalyticsUpdateMessage)
	if m.Type != notify.TypeAnalyticsUpdate || m.Analytics.Buckets != 3 || m.Sequence == 0 || m.Timestamp.IsZero() {
		t.Errorf("message %+v", m)
	}
}

func TestInvalidInputSendsNothing(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		call func(*notify.Notifier) error
	}{
		{"new lead without id", func(n *notify.Notifier) error { return n.NotifyNewLead(ctx, 0, nil, "Google") }},
		{"negative lead id", func(n *notify.Notifier) error { return n.NotifyLeadDeleted(ctx, -1) }},
		{"status unchanged", func(n *notify.Notifier) error { return n.NotifyLeadStatusUpdate(ctx, 1, "New", "New") }},
		{"empty new status", func(n *notify.Notifier) error { return n.NotifyLeadStatusUpdate(ctx, 1, "New", "") }},
		{"empty workflow", func(n *notify.Notifier) error { return n.NotifyWorkflowStarted(ctx, 1, "") }},
		{"empty failed workflow", func(n *notify.Notifier) error { return n.NotifyWorkflowFailed(ctx, 1, "", "boom") }},
		{"score without lead", func(n *notify.Notifier) error { return n.NotifyLeadScoreUpdate(ctx, 0, 1, 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &recordingClients{}
			n := newNotifier(t, fake)
			err := tt.call(n)
			if !errors.Is(err, notify.ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
			n.Close()
			if got := fake.all(); len(got) != 0 {
				t.Errorf("sent %d messages for invalid input", len(got))
			}
		})
	}
}

func TestEventsArriveInCallOrderWithSequence(t *testing.T) {
	start := time.Now()
	fake := &recordingClients{}
	n := newNotifier(t, fake)
	for i := range 1000 {
		if err := n.NotifyLeadScoreUpdate(t.Context(), 7, float64(i), float64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	n.Close()
	got := fake.all()
	if len(got) != 1000 {
		t.Fatalf("%d sends, want 1000", len(got))
	}
	// Sequences increase strictly and start at the clock (microseconds since
	// the epoch), so that another producer's compare with them.
	last := uint64(start.UnixMicro()) - 1
	for i, s := range got {
		m := s.arg.(*notify.LeadUpdateMessage)
		if *m.PreviousScore != float64(i) || m.Sequence <= last {
			t.Fatalf("send %d: score %v sequence %d after %d", i, *m.PreviousScore, m.Sequence, last)
		}
		last = m.Sequence
	}
}

func TestStalledHubNeverBlocksTheCaller(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	fake := &recordingClients{hook: func(sent) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}}
	reg := prometheus.NewPedanticRegistry()
	n := newNotifier(t, fake, notify.WithQueue(10), notify.WithRegisterer(reg))
	if err := n.NotifyLeadDeleted(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	<-entered // the delivery goroutine is stuck in the hub
	for i := range 100 {
		if err := n.NotifyLeadDeleted(t.Context(), int64(i+2)); err != nil {
			t.Fatalf("call %d while the hub is stalled: %v", i, err)
		}
	}
	close(release)
	n.Close()
	if got := len(fake.all()); got != 11 {
		t.Errorf("delivered %d, want 11 (1 in flight + a queue of 10)", got)
	}
	if got := counterSum(t, reg, "leadupdates_notify_events_dropped_total"); got != 90 {
		t.Errorf("dropped %v, want 90", got)
	}
}

// counterSum adds up every series of a counter in reg.
func counterSum(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func TestCallsAfterCloseReturnErrClosed(t *testing.T) {
	n := newNotifier(t, &recordingClients{})
	n.Close()
	n.Close() // twice is fine
	if err := n.NotifyNewLead(context.Background(), 1, nil, ""); !errors.Is(err, notify.ErrClosed) {
		t.Errorf("err %v, want ErrClosed", err)
	}
	if err := n.NotifyMetricsUpdate(context.Background(), notify.Metrics{}); !errors.Is(err, notify.ErrClosed) {
		t.Errorf("err %v, want ErrClosed", err)
	}
}

// TestAudience: the sender names each lead event's audience key and the
// hub's filter decides per viewer from it.
func TestAudience(t *testing.T) {
	fake := &recordingClients{}
	owner := map[int64]string{1: "alice", 2: "bob"}
	n := newNotifier(t, fake, notify.WithAudience(func(ev *notify.LeadUpdateMessage) string { return owner[ev.LeadID] }))
	_ = n.NotifyLeadDeleted(t.Context(), 1)
	_ = n.NotifyLeadDeleted(t.Context(), 2)
	n.Close()
	got := fake.all()
	if len(got) != 2 || got[0].filter != notify.FilterName || got[0].key != "alice" || got[1].key != "bob" ||
		!slices.Equal(got[0].groups, []string{hub.DefaultGroup, hub.LeadGroup(1)}) {
		t.Fatalf("sends %+v", got)
	}
}

// TestNoAudienceSendsToTheGroups: without WithAudience, lead events go to
// both groups unfiltered.
func TestNoAudienceSendsToTheGroups(t *testing.T) {
	fake := &recordingClients{}
	n := newNotifier(t, fake)
	_ = n.NotifyLeadDeleted(t.Context(), 7)
	n.Close()
	if got := fake.all(); len(got) != 1 || got[0].filter != "" || !slices.Equal(got[0].groups, []string{hub.DefaultGroup, hub.LeadGroup(7)}) {
		t.Fatalf("sends %+v", got)
	}
}

func TestPanickingHubDoesNotStopDelivery(t *testing.T) {
	first := true
	fake := &recordingClients{}
	fake.hook = func(sent) {
		if first {
			first = false
			panic("hub exploded")
		}
	}
	reg := prometheus.NewPedanticRegistry()
	n := newNotifier(t, fake, notify.WithRegisterer(reg))
	_ = n.NotifyLeadDeleted(t.Context(), 1)
	_ = n.NotifyLeadDeleted(t.Context(), 2)
	n.Close()
	if got := fake.all(); len(got) != 1 || got[0].arg.(*notify.LeadUpdateMessage).LeadID != 2 {
		t.Errorf("after a panic: %+v", got)
	}
	if got := counterSum(t, reg, "leadupdates_notify_events_dropped_total"); got != 1 {
		t.Errorf("dropped %v, want 1", got)
	}
}

// TestDoneContextSendsNothing: a call whose ctx is done returns ctx.Err()
// for every operation, and nothing reaches the hub.
func TestDoneContextSendsNothing(t *testing.T) {
	fake := &recordingClients{}
	n := newNotifier(t, fake)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []func() error{
		func() error { return n.NotifyNewLead(ctx, 1, nil, "Google") },
		func() error { return n.NotifyLeadStatusUpdate(ctx, 1, "New", "Enriching") },
		func() error { return n.NotifyLeadScoreUpdate(ctx, 1, 1, 2) },
		func() error { return n.NotifyLeadEnrichment(ctx, 1, nil) },
		func() error { return n.NotifyWorkflowStarted(ctx, 1, "LeadProcessing") },
		func() error { return n.NotifyWorkflowCompleted(ctx, 1, "LeadProcessing") },
		func() error { return n.NotifyWorkflowFailed(ctx, 1, "LeadProcessing", "timeout") },
		func() error { return n.NotifyLeadDeleted(ctx, 1) },
		func() error { return n.NotifyMetricsUpdate(ctx, notify.Metrics{}) },
	}
	for i, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: err %v, want context.Canceled", i, err)
		}
	}
	n.Close()
	if got := fake.all(); len(got) != 0 {
		t.Errorf("sent %d messages with a done context", len(got))
	}
}

// TestTwoNotifiersOnOneRegistry: the second fails in New with an error
// that says why; on registries of their own both work.
func TestTwoNotifiersOnOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	newNotifier(t, &recordingClients{}, notify.WithRegisterer(reg))
	_, err := notify.New(&recordingClients{}, notify.WithRegisterer(reg))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || !strings.Contains(err.Error(), "notify: metrics already registered") {
		t.Fatalf("second Notifier: %v", err)
	}
	reg = prometheus.NewPedanticRegistry()
	for _, id := range []string{"1", "2"} {
		newNotifier(t, &recordingClients{}, notify.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"instance": id}, reg)))
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
