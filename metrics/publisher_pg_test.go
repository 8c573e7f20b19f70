package metrics_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
	"gorm.io/gorm"
)

// TestPublisherCalculator feeds 10,000 triggers, with inserts between them,
// to a Publisher over the real Calculator and checks that they cost few
// computations and that the last dashboard published is right.
func TestPublisherCalculator(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db)
		now := time.Now().Truncate(time.Second)
		calc, err := metrics.New(db, metrics.WithTable(table), metrics.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu   sync.Mutex
			last notify.Metrics
			n    int
		)
		sink := metrics.SinkFunc(func(_ context.Context, d notify.Metrics) error {
			mu.Lock()
			last, n = d, n+1
			mu.Unlock()
			return nil
		})
		const interval = 100 * time.Millisecond
		p, err := metrics.NewPublisher(calc, sink, metrics.PublisherConfig{Interval: interval})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()

		for { // the computation at the start, over the empty table
			if d, _, ok := p.Latest(); ok {
				if d.TotalLeads != 0 {
					t.Fatalf("first dashboard %+v", d)
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		began := time.Now()
		const rounds = 10
		for i := range rounds {
			insert(t, db, table, lead{source: "Web", status: "New", created: now.Add(-time.Minute)})
			if i%2 == 0 {
				insert(t, db, table, lead{source: "Ads", status: "Qualified", created: now.Add(-time.Hour)})
			}
			for range 1000 {
				p.Trigger()
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			d, count := last, n
			mu.Unlock()
			if d.TotalLeads == rounds+rounds/2 {
				if d.QualifiedLeads != rounds/2 || d.NewLeadsToday < rounds || d.LeadsBySource["Web"] != rounds {
					t.Errorf("final dashboard %+v", d)
				}
				// one at the start, then one per interval at most, plus
				// the trailing one.
				if limit := int(time.Since(began)/interval) + 3; count > limit {
					t.Errorf("%d computations for 10,000 triggers in %v, want at most %d", count, time.Since(began), limit)
				}
				t.Logf("%d computations (the first over the empty table included) for 10,000 triggers in %v", count, time.Since(began))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("last dashboard %+v after %d computations", d, count)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, _, ok := p.Latest(); !ok {
			t.Error("Latest not ok")
		}
	})
}
