package hub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

// discard is a backplane that drops what it is given: the sender's side of
// the backplane, measured alone.
type discard struct{}

func (discard) Publish(context.Context, []byte) error { return nil }
func (discard) Subscribe(ctx context.Context, _ func([]byte)) error {
	<-ctx.Done()
	return ctx.Err()
}

// BenchmarkBackplaneSend is what a backplane adds to a Send on the sending
// instance: with a backplane the message is encoded for both protocols (the
// frames travel to the other instances in one record), instead of for the
// protocols of this instance's connections only. One JSON client reads.
//
//	go test -run '^$' -bench BackplaneSend ./hub/
func BenchmarkBackplaneSend(b *testing.B) {
	msg := map[string]any{
		"type": "STATUS_UPDATE", "leadId": 123456, "previousStatus": "NEW", "newStatus": "QUALIFIED",
		"companyName": "Acme Industrial Supplies GmbH", "score": 87, "timestamp": "2026-11-26T20:31:01.123Z",
		"message": "Lead qualified by the scoring workflow", "sequence": 42,
	}
	for _, tt := range []struct {
		name string
		opts []hub.Option
	}{
		{"local", nil},
		{"backplane", []hub.Option{hub.WithBackplane(discard{})}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			s, err := hub.New(append(tt.opts, hub.WithSendQueue(1<<20))...)
			if err != nil {
				b.Fatal(err)
			}
			mux := http.NewServeMux()
			s.Mount(mux)
			ts := httptest.NewServer(mux)
			defer ts.Close()
			defer s.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := &signalrtest.Client{URL: ts.URL + s.Path(), HTTPClient: ts.Client()}
			conn, _, err := c.Dial(ctx, "", signalrtest.JSON)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			if err := conn.Handshake(ctx); err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if _, err := conn.ReadRecord(ctx); err != nil {
						return
					}
				}
			}()
			for s.ConnectionCount() == 0 {
				time.Sleep(time.Millisecond)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.All().Send("ReceiveLeadUpdate", msg)
			}
			b.StopTimer()
			cancel()
			conn.Close()
			<-done
		})
	}
}
