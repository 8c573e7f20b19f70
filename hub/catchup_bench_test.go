package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

// benchUpdate is a message the size and shape of a lead update.
type benchUpdate struct {
	LeadID    int64  `json:"leadId"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Owner     string `json:"owner"`
	Timestamp string `json:"timestamp"`
	Sequence  uint64 `json:"sequence"`
}

// benchLog is a read-only hub.Log of n lead updates for DefaultGroup.
type benchLog struct{ entries []hub.Entry }

func newBenchLog(n int) *benchLog {
	l := &benchLog{entries: make([]hub.Entry, n)}
	for i := range l.entries {
		p := uint64(i + 1)
		l.entries[i] = hub.Entry{
			Position: p, Groups: []string{hub.DefaultGroup, hub.LeadGroup(int64(p % 1000))},
			Target: "ReceiveLeadUpdate",
			Args: []any{benchUpdate{LeadID: int64(p % 1000), Type: "STATUS_UPDATE", Status: "PROCESSING", Owner: "alice",
				Timestamp: "2026-12-03T21:00:00.000Z", Sequence: p}},
		}
	}
	return l
}

func (l *benchLog) Read(_ context.Context, after uint64, limit int) ([]hub.Entry, error) {
	if after >= uint64(len(l.entries)) {
		return nil, nil
	}
	return l.entries[after:min(int(after)+limit, len(l.entries))], nil
}

func (l *benchLog) Reload(uint64) (string, []any) { return "Reload", nil }

// BenchmarkCatchUp replays a log to clients catching up at once over
// WebSockets on loopback, each reading every message (the client's parsing
// shares the machine): events/s is what all of them receive together.
func BenchmarkCatchUp(b *testing.B) {
	for _, bc := range []struct {
		conns, events int
		proto         signalrtest.Protocol
	}{
		{1, 200_000, signalrtest.JSON},
		{1, 200_000, signalrtest.MessagePack},
		{1000, 2_000, signalrtest.JSON},
		{1000, 2_000, signalrtest.MessagePack},
	} {
		b.Run(fmt.Sprintf("conns=%d/%s", bc.conns, bc.proto), func(b *testing.B) {
			url := newCatchUpHub(b, hub.WithLog(newBenchLog(bc.events)))
			var elapsed time.Duration
			for range b.N {
				// New connections each round: a connection is sent
				// nothing twice.
				b.StopTimer()
				clients := benchDial(b, url, bc.conns, bc.proto)
				b.StartTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for _, c := range clients {
					wg.Go(func() { catchUpAll(b, c, bc.proto, bc.events) })
				}
				wg.Wait()
				elapsed += time.Since(start)
				for _, c := range clients {
					_ = c.Close()
				}
			}
			secs := elapsed.Seconds()
			b.ReportMetric(float64(b.N*bc.conns*bc.events)/secs, "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// catchUpAll calls CatchUp(0) and reads until its completion, which
// follows the replay, checking that every event came.
func catchUpAll(b *testing.B, c *signalrtest.Conn, p signalrtest.Protocol, events int) {
	ctx := context.Background()
	var call []byte
	if p == signalrtest.JSON {
		call = signalrtest.JSONInvocation("1", "CatchUp", 0)
	} else {
		call = signalrtest.MessagePackFrame(1, map[string]any{}, "1", "CatchUp", []any{0})
	}
	if err := c.Write(ctx, p.MessageType(), call); err != nil {
		b.Error(err)
		return
	}
	n := 0
	for {
		r, err := c.ReadRecord(ctx)
		if err != nil {
			b.Error(err)
			return
		}
		typ := benchType(r.Data, p)
		if typ == 3 {
			break
		}
		if typ == 1 {
			n++
		}
	}
	if n != events {
		b.Errorf("received %d events, want %d", n, events)
	}
}

// benchType is the hub message type of a record, cheaply: the hub
// writes "type" first in JSON, and MessagePack records start with a
// fixarray header and the type as a fixint.
func benchType(rec []byte, p signalrtest.Protocol) int {
	if p == signalrtest.JSON {
		if len(rec) > 9 && string(rec[:8]) == `{"type":` {
			return int(rec[8] - '0')
		}
		if m, err := signalrtest.DecodeJSON(rec); err == nil {
			return m.Type
		}
		return 0
	}
	if len(rec) > 1 {
		return int(rec[1])
	}
	return 0
}

// newCatchUpHub starts a hub whose connections may call as often as they
// like, and closes it when b ends.
func newCatchUpHub(b *testing.B, opts ...hub.Option) string {
	s, err := hub.New(append([]hub.Option{hub.WithTransports(hub.WebSockets), hub.WithInvocationRate(0, 0), hub.WithMaxPendingConnections(0, 0)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Mount(mux)
	ts := httptest.NewServer(mux)
	b.Cleanup(func() {
		_ = s.Close()
		ts.Close()
	})
	return ts.URL + s.Path()
}

// benchDial connects n clients, 32 at a time.
func benchDial(b *testing.B, url string, n int, p signalrtest.Protocol) []*signalrtest.Conn {
	cs := make([]*signalrtest.Conn, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range cs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := (&signalrtest.Client{URL: url}).Connect(ctx, p)
			if err != nil {
				failed.Store(err)
				return
			}
			cs[i] = c
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return cs
}
