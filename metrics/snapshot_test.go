package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
	"gorm.io/gorm"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fixture returns leads around now = Monday 9 March 2026 10:30 in New York,
// the day after the switch to summer time (Sunday 8 March had 23 hours).
func fixture(ny *time.Location) (now time.Time, leads []lead) {
	at := func(d, h, m, s int) time.Time { return time.Date(2026, time.March, d, h, m, s, 0, ny) }
	now = at(9, 10, 30, 0)
	leads = []lead{
		// A: today, processed today after 600 s.
		{source: "Web", status: "Qualified", score: ptr(80.0), created: at(9, 9, 0, 0), processed: ptr(at(9, 9, 10, 0))},
		// B: one second after local midnight, no score.
		{source: "Web", status: "New", created: at(9, 0, 0, 1)},
		// C: one second before local midnight, processed today after 3601 s.
		{source: "Ads", status: "SyncedToCrm", score: ptr(60.0), created: at(8, 23, 59, 59), processed: ptr(at(9, 1, 0, 0))},
		// D: in the last 7 days, processed long ago.
		{source: "Ads", status: "Rejected", score: ptr(10.0), created: at(5, 12, 0, 0), processed: ptr(at(5, 12, 30, 0))},
		// E: in the 7 days before.
		{source: "Referral", status: "Qualified", created: time.Date(2026, time.February, 27, 12, 0, 0, 0, ny)},
		// F: deleted; would change every figure.
		{source: "Web", status: "Qualified", score: ptr(100.0), created: at(9, 10, 0, 0), processed: ptr(at(9, 10, 5, 0)), deleted: true},
		// G, K: the last 15 minutes, one source.
		{source: "Ads", status: "New", score: ptr(31.0), created: at(9, 10, 20, 0)},
		{source: "Ads", status: "New", created: at(9, 10, 25, 0)},
		// H: yesterday, processed 10 h later, within the last 24 hours but not today.
		{source: "Referral", status: "Scored", created: at(8, 10, 0, 0), processed: ptr(at(8, 20, 0, 0))},
		// I: old.
		{source: "Web", status: "Qualified", score: ptr(51.0), created: time.Date(2026, time.January, 1, 12, 0, 0, 0, ny)},
		// L: 20 minutes ago, just outside the harvester window.
		{source: "Web", status: "New", created: at(9, 10, 10, 0)},
	}
	return now, leads
}

func TestSnapshot(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db)
		ny := mustLoad(t, "America/New_York")
		now, leads := fixture(ny)
		insert(t, db, table, leads...)

		bySource := map[string]int64{"Web": 4, "Ads": 4, "Referral": 2}
		byStatus := map[string]int64{"Qualified": 3, "New": 4, "SyncedToCrm": 1, "Rejected": 1, "Scored": 1}
		tests := []struct {
			name string
			opts []metrics.Option
			want notify.Metrics
		}{{
			name: "New York",
			opts: []metrics.Option{metrics.WithLocation(ny)},
			want: notify.Metrics{
				TotalLeads:       10,
				QualifiedLeads:   4,
				ConversionRate:   40,
				ActiveHarvesters: 1,
				ProcessingTime:   13400.33, // (600 + 3601 + 36000) / 3
				ScoreAverage:     46.4,     // (80 + 60 + 10 + 31 + 51) / 5
				DailyGrowth:      150,      // (5 − 2) / 2: C is yesterday here
				WeeklyGrowth:     700,      // (8 − 1) / 1
				NewLeadsToday:    5,
				ProcessedToday:   2,
				LeadsBySource:    bySource,
				LeadsByStatus:    byStatus,
			},
		}, {
			// Midnight UTC is 20:00 on the 8th in New York: C, and H's
			// processing at exactly 20:00, fall on the 9th.
			name: "UTC by default",
			want: notify.Metrics{
				TotalLeads:       10,
				QualifiedLeads:   4,
				ConversionRate:   40,
				ActiveHarvesters: 1,
				ProcessingTime:   13400.33,
				ScoreAverage:     46.4,
				DailyGrowth:      500, // (6 − 1) / 1
				WeeklyGrowth:     700,
				NewLeadsToday:    6,
				ProcessedToday:   3,
				LeadsBySource:    bySource,
				LeadsByStatus:    byStatus,
			},
		}, {
			name: "qualified statuses and harvester provider",
			opts: []metrics.Option{
				metrics.WithLocation(ny),
				metrics.WithQualifiedStatuses("Scored"),
				metrics.WithActiveHarvesters(func(context.Context) (int64, error) { return 7, nil }),
			},
			want: notify.Metrics{
				TotalLeads:       10,
				QualifiedLeads:   1,
				ConversionRate:   10,
				ActiveHarvesters: 7,
				ProcessingTime:   13400.33,
				ScoreAverage:     46.4,
				DailyGrowth:      150,
				WeeklyGrowth:     700,
				NewLeadsToday:    5,
				ProcessedToday:   2,
				LeadsBySource:    bySource,
				LeadsByStatus:    byStatus,
			},
		}}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				opts := append([]metrics.Option{metrics.WithTable(table), metrics.WithClock(func() time.Time { return now })}, tt.opts...)
				c, err := metrics.New(db, opts...)
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Snapshot(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Snapshot\n got %+v\nwant %+v", got, tt.want)
				}
			})
		}
	})
}

func TestSnapshotEmpty(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		c, err := metrics.New(db, metrics.WithTable(newTable(t, db)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := notify.Metrics{LeadsBySource: map[string]int64{}, LeadsByStatus: map[string]int64{}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Snapshot\n got %+v\nwant %+v", got, want)
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"leadsBySource":{},"leadsByStatus":{}`; !strings.Contains(string(b), want) {
			t.Errorf("JSON %s, want it to contain %s", b, want)
		}
	})
}

// TestSnapshotZeroDenominators: no lead yesterday, none in the week before,
// none scored, none processed.
func TestSnapshotZeroDenominators(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db)
		now := time.Date(2026, time.June, 1, 12, 0, 0, 0, time.UTC)
		insert(t, db, table,
			lead{source: "Web", status: "New", created: now.Add(-time.Hour)},
			lead{source: "Web", status: "New", created: now.Add(-25 * time.Hour), deleted: true},
		)
		c, err := metrics.New(db, metrics.WithTable(table), metrics.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := notify.Metrics{
			TotalLeads:    1,
			NewLeadsToday: 1,
			LeadsBySource: map[string]int64{"Web": 1},
			LeadsByStatus: map[string]int64{"New": 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Snapshot\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestSnapshotHarvesterError(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		boom := errors.New("boom")
		c, err := metrics.New(db, metrics.WithTable(newTable(t, db)),
			metrics.WithActiveHarvesters(func(context.Context) (int64, error) { return 0, boom }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Snapshot(t.Context()); !errors.Is(err, boom) {
			t.Errorf("Snapshot error %v, want %v", err, boom)
		}
	})
}

func TestSnapshotMissingTable(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		c, err := metrics.New(db, metrics.WithTable("metrics_test_no_such_table"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Snapshot(t.Context()); err == nil {
			t.Error("Snapshot of a missing table: no error")
		}
	})
}

func TestNewInvalid(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		for name, opt := range map[string]metrics.Option{
			"nil clock":                  metrics.WithClock(nil),
			"nil location":               metrics.WithLocation(nil),
			"empty table":                metrics.WithTable(""),
			"negative compaction period": metrics.WithCompaction(-time.Second, 10),
			"no compaction row":          metrics.WithCompaction(time.Second, 0),
		} {
			if _, err := metrics.New(db, opt); err == nil {
				t.Errorf("%s: New succeeded", name)
			}
		}
		if _, err := metrics.New(nil); err == nil {
			t.Error("New(nil) succeeded")
		}
	})
}
