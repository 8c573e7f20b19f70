package notify_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/philippseith/signalr"
)

// nopClients is a hub that discards everything, to measure the caller's cost.
type nopClients struct{}

func (nopClients) Groups(...string) signalr.ClientProxy { return nopProxy{} }

func (nopClients) GroupsFiltered(string, string, ...string) signalr.ClientProxy { return nopProxy{} }

func (nopClients) Publish(hub.Entry) {}

type nopProxy struct{}

func (nopProxy) Send(string, ...any) {}

// BenchmarkNotify measures what one call costs its caller.
func BenchmarkNotify(b *testing.B) {
	ctx := context.Background()
	l := crmLead{ID: 7, Name: "Ada", Owner: "bob"}
	calls := []struct {
		name string
		call func(*notify.Notifier) error
	}{
		{"NewLead", func(n *notify.Notifier) error { return n.NotifyNewLead(ctx, 7, l, "Google") }},
		{"LeadStatusUpdate", func(n *notify.Notifier) error { return n.NotifyLeadStatusUpdate(ctx, 7, "New", "Enriching") }},
		{"LeadScoreUpdate", func(n *notify.Notifier) error { return n.NotifyLeadScoreUpdate(ctx, 7, 40, 80) }},
		{"LeadEnrichment", func(n *notify.Notifier) error { return n.NotifyLeadEnrichment(ctx, 7, l) }},
		{"WorkflowStarted", func(n *notify.Notifier) error { return n.NotifyWorkflowStarted(ctx, 7, "LeadProcessing") }},
		{"WorkflowCompleted", func(n *notify.Notifier) error { return n.NotifyWorkflowCompleted(ctx, 7, "LeadProcessing") }},
		{"WorkflowFailed", func(n *notify.Notifier) error { return n.NotifyWorkflowFailed(ctx, 7, "LeadProcessing", "timeout") }},
		{"MetricsUpdate", func(n *notify.Notifier) error { return n.NotifyMetricsUpdate(ctx, notify.Metrics{TotalLeads: 1}) }},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			n, err := notify.New(nopClients{}, notify.WithQueue(1<<16))
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.call(n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEndToEnd sends status updates from one producer to 1,000
// WebSocket clients through the real hub, in batches of 100, each waited for
// until every client has every event. "hub-direct" sends the same messages
// straight to the hub, the baseline for what the Notifier adds.
// caller-ns/event is what one call costs the producer: with the Notifier, a
// queue send; straight to the hub, the encoding and the fan-out to every
// connection's queue, which the Notifier's queue keeps off the writer.
func BenchmarkEndToEnd(b *testing.B) {
	const clients = 1000
	srv, err := hub.New(hub.WithTransports(hub.WebSockets), hub.WithSendQueue(1<<14))
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Mount(mux)
	ts := httptest.NewServer(mux)
	defer func() {
		srv.Close()
		ts.Close()
	}()
	var received atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		wg.Wait()
	}()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/leadupdates"
	for range clients {
		ws := dialBench(b, ctx, url)
		wg.Go(func() {
			defer ws.CloseNow()
			for {
				_, data, err := ws.Read(ctx)
				if err != nil {
					return
				}
				received.Add(int64(bytes.Count(data, []byte("ReceiveLeadUpdate"))))
			}
		})
	}
	for srv.ConnectionCount() != clients {
		time.Sleep(10 * time.Millisecond)
	}
	n, err := notify.New(srv, notify.WithQueue(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()

	// Each iteration sends a batch of events and waits until every client
	// has all of them, so that b.N measures delivery, not queueing.
	const batch = 100
	run := func(b *testing.B, send func(i int)) {
		received.Store(0)
		start := time.Now()
		i := 0
		var caller time.Duration
		for b.Loop() {
			for range batch {
				t0 := time.Now()
				send(i)
				caller += time.Since(t0)
				i++
			}
			for received.Load() < int64(i)*clients {
				time.Sleep(100 * time.Microsecond)
			}
		}
		elapsed := time.Since(start).Seconds()
		b.ReportMetric(float64(i)/elapsed, "events/s")
		b.ReportMetric(float64(i)*clients/elapsed, "deliveries/s")
		b.ReportMetric(float64(caller.Nanoseconds())/float64(i), "caller-ns/event")
	}
	b.Run("notifier", func(b *testing.B) {
		run(b, func(i int) {
			if err := n.NotifyLeadStatusUpdate(ctx, int64(i%100+1), "New", "Enriching"); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("hub-direct", func(b *testing.B) {
		run(b, func(i int) {
			id := int64(i%100 + 1)
			srv.Groups(hub.DefaultGroup, hub.LeadGroup(id)).Send(notify.MethodLeadUpdate, &notify.LeadUpdateMessage{
				Type: notify.TypeStatusUpdate, LeadID: id, PreviousStatus: "New", NewStatus: "Enriching",
				Timestamp: notify.Timestamp{Time: time.Now()}, Sequence: uint64(i + 1),
			})
		})
	})
}

func dialBench(b *testing.B, ctx context.Context, url string) *websocket.Conn {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	ws.SetReadLimit(-1)
	if err := ws.Write(ctx, websocket.MessageText, []byte("{\"protocol\":\"json\",\"version\":1}\x1e")); err != nil {
		b.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		b.Fatal(err)
	}
	return ws
}
