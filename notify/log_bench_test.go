package notify_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// BenchmarkHubLogRead measures what a catch-up costs on the log's side:
// reading 10,000 logged NEW_LEAD events from PostgreSQL through a HubLog
// in CatchUp's pages of 256 and encoding each for a JSON and a MessagePack
// client, as the hub does once per protocol (events/s).
//
//	go test -run '^$' -bench HubLogRead -benchtime 5x ./notify/
func BenchmarkHubLogRead(b *testing.B) {
	ctx := b.Context()
	l := openLog(b, pgLogDB.open(b))
	const total = 10000
	lead := crmLead{ID: 1, Name: "Ada Lovelace", Owner: "bob"}
	evs := make([]eventlog.Event, 0, 1000)
	for i := range total {
		m := notify.LeadUpdateMessage{Type: notify.TypeNewLead, LeadID: int64(i + 1), Lead: lead, Source: "Google"}
		p, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, eventlog.Event{LeadID: m.LeadID, Type: m.Type, Audience: "bob", Payload: p})
		if len(evs) == cap(evs) {
			if err := l.Append(ctx, nil, evs...); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	waitHead(b, l, total)
	hl := notify.NewHubLog(l.Log)
	var buf bytes.Buffer
	enc := msgpackLikeHub(&buf)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for after := uint64(0); ; {
			es, err := hl.Read(ctx, after, 256)
			if err != nil {
				b.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				if _, err := json.Marshal(e.Args); err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				if err := enc.Encode(e.Args); err != nil {
					b.Fatal(err)
				}
			}
			n += len(es)
			after = es[len(es)-1].Position
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "events/s")
}
