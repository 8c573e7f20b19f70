package metrics_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
	"gorm.io/gorm"
)

// TestAnalytics checks every analytics figure against values computed by
// hand, with 1-hour buckets in Kolkata (UTC+5:30, so that buckets aligned on
// local midnight start at half past in UTC), now = 10 March 2026 12:02:30:
// the buckets are [09:00, 10:00), [10:00, 11:00), [11:00, 12:00) and
// [12:00, 12:02:30] local time.
func TestAnalytics(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db)
		kol := mustLoad(t, "Asia/Kolkata")
		at := func(d, h, m, s, ms int) time.Time {
			return time.Date(2026, time.March, d, h, m, s, ms*1e6, kol)
		}
		now := at(10, 12, 2, 30, 0)
		leads := []lead{
			// 1: created on the first bucket's start, processed 1 ms before
			// the last bucket's: 10799.999 s.
			{source: "Google", status: "SyncedToCrm", created: at(10, 9, 0, 0, 0), processed: ptr(at(10, 11, 59, 59, 999))},
			// 2: created 1 ms before the window, processed at the last
			// bucket's start: 10800.001 s.
			{source: "Google", status: "Disqualified", created: at(10, 8, 59, 59, 999), processed: ptr(at(10, 12, 0, 0, 0))},
			// 3: never finishes.
			{source: "LinkedIn", status: "Enriched", created: at(10, 10, 30, 0, 0)},
			// 4: created at now, counted; 5: a second later, not counted
			// in the series (but live: in the funnel).
			{source: "LinkedIn", status: "New", created: now},
			{source: "LinkedIn", status: "New", created: now.Add(time.Second)},
			// 6: deleted: counted nowhere.
			{source: "Google", status: "SyncedToCrm", created: at(10, 10, 0, 0, 0), processed: ptr(at(10, 10, 30, 0, 0)), deleted: true},
			// 7: qualified, not processed.
			{source: "Facebook", status: "Qualified", created: at(10, 11, 0, 0, 0)},
			// 8: created yesterday, processed in the last hour: 45000 s.
			{source: "Facebook", status: "SyncedToCrm", created: at(9, 23, 0, 0, 0), processed: ptr(at(10, 11, 30, 0, 0))},
			// 9: processed 20 h ago after 3600 s: the last day only.
			{source: "Manual", status: "SyncedToCrm", created: now.Add(-21 * time.Hour), processed: ptr(now.Add(-20 * time.Hour))},
			// 10: processed exactly 24 h ago: outside the last day.
			{source: "Manual", status: "SyncedToCrm", created: now.Add(-25 * time.Hour), processed: ptr(now.Add(-24 * time.Hour))},
		}
		insert(t, db, table, leads...)
		calc, err := metrics.New(db, metrics.WithTable(table), metrics.WithLocation(kol),
			metrics.WithClock(func() time.Time { return now.UTC() }), metrics.WithBuckets(time.Hour, 4))
		if err != nil {
			t.Fatal(err)
		}
		if err := calc.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			activity string
			at       time.Time
		}{
			{"Enrich", at(10, 9, 59, 59, 999)}, // bucket 0
			{"Enrich", at(10, 10, 0, 0, 0)},    // bucket 1
			{"Score", now},                     // bucket 3
			{"Vet", at(10, 8, 59, 0, 0)},       // before the window
			{"Score", now.Add(time.Second)},    // after now
		} {
			if err := calc.RecordFailure(t.Context(), 1, f.activity, f.at); err != nil {
				t.Fatal(err)
			}
		}
		got, err := calc.Analytics(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := notify.Analytics{
			Start:         notify.Timestamp{Time: time.Date(2026, time.March, 10, 3, 30, 0, 0, time.UTC)},
			BucketSeconds: 3600,
			Buckets:       4,
			Created: map[string][]int64{
				"Google":   {1, 0, 0, 0},
				"LinkedIn": {0, 1, 0, 1},
				"Facebook": {0, 0, 1, 0},
			},
			Processed: map[string][]int64{
				"Google":   {0, 0, 1, 1},
				"Facebook": {0, 0, 1, 0},
			},
			Failures: map[string][]int64{
				"Enrich": {1, 1, 0, 0},
				"Score":  {0, 0, 0, 1},
			},
			ProcessingTime: notify.ProcessingTimes{
				// 10799.999, 10800.001, 45000
				LastHour: notify.Percentiles{Count: 3, P50: 10800, P95: 41580, Max: 45000},
				// 3600, 10799.999, 10800.001, 45000
				LastDay: notify.Percentiles{Count: 4, P50: 10800, P95: 39870, Max: 45000},
			},
			// Live statuses: New ×2 and Disqualified (off the path, first
			// step only), Enriched, Qualified, SyncedToCrm ×4.
			Funnel: []notify.FunnelStep{
				{Status: "New", Leads: 9, Conversion: 100},
				{Status: "Enriching", Leads: 6, Conversion: 66.67},
				{Status: "Enriched", Leads: 6, Conversion: 100},
				{Status: "Scored", Leads: 5, Conversion: 83.33},
				{Status: "Vetted", Leads: 5, Conversion: 100},
				{Status: "Qualified", Leads: 5, Conversion: 100},
				{Status: "SyncedToCrm", Leads: 4, Conversion: 80},
			},
		}
		if !got.Start.Equal(want.Start.Time) {
			t.Errorf("start %v, want %v", got.Start.UTC(), want.Start.Time)
		}
		got.Start = want.Start
		if !reflect.DeepEqual(got, want) {
			g, _ := json.MarshalIndent(got, "", " ")
			w, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("analytics\n got %s\nwant %s", g, w)
		}
	})
}

// TestAnalyticsEmpty: an empty table gives empty series, zero percentiles
// and a funnel of zeros, with the default day of 5-minute buckets.
func TestAnalyticsEmpty(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db)
		now := time.Date(2026, time.March, 10, 0, 2, 0, 0, time.UTC)
		calc, err := metrics.New(db, metrics.WithTable(table), metrics.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		if err := calc.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		got, err := calc.Analytics(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// The last bucket starts at midnight, the first 287 × 5 min before.
		if start := now.Add(-2*time.Minute - 287*5*time.Minute); !got.Start.Equal(start) || got.Buckets != 288 || got.BucketSeconds != 300 {
			t.Errorf("grid %v, %d × %d s; want %v, 288 × 300 s", got.Start.UTC(), got.Buckets, got.BucketSeconds, start)
		}
		if len(got.Created)+len(got.Processed)+len(got.Failures) != 0 || got.ProcessingTime != (notify.ProcessingTimes{}) {
			t.Errorf("figures of an empty table: %+v", got)
		}
		if len(got.Funnel) != 7 {
			t.Fatalf("funnel %+v", got.Funnel)
		}
		for _, s := range got.Funnel {
			if s.Leads != 0 || s.Conversion != 0 {
				t.Errorf("funnel step of an empty table: %+v", s)
			}
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"created", "processed", "failures", "funnel", "processingTime"} {
			if back[k] == nil {
				t.Errorf("%s is null in %s", k, b)
			}
		}
	})
}
