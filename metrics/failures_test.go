package metrics_test

import (
	"strconv"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/metrics"
)

// TestPruneFailures deletes exactly the failures recorded before the
// cutoff, across several of its batches, and Analytics still counts the
// ones kept.
func TestPruneFailures(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db)
		now := time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)
		calc, err := metrics.New(db, metrics.WithTable(table), metrics.WithLocation(time.UTC),
			metrics.WithClock(func() time.Time { return now }), metrics.WithBuckets(time.Hour, 4))
		if err != nil {
			t.Fatal(err)
		}
		if err := calc.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		cutoff := now.Add(-24 * time.Hour)
		// 25,001 old ones (three batches): one recorded, copied 25,000
		// times; then the boundary cases and two recent ones.
		ft := table + "_workflow_failures"
		if err := calc.RecordFailure(t.Context(), 1, "Enrich", cutoff.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("INSERT INTO " + ft + " (failed_at, activity, lead_id) SELECT failed_at, activity, lead_id FROM " +
			ft + ", (" + series(db, 25000) + ") AS s").Error; err != nil {
			t.Fatal(err)
		}
		for _, at := range []time.Time{cutoff.Add(-time.Millisecond), cutoff, now.Add(-30 * time.Minute), now} {
			if err := calc.RecordFailure(t.Context(), 1, "Score", at); err != nil {
				t.Fatal(err)
			}
		}
		n, err := calc.PruneFailures(t.Context(), cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if n != 25002 {
			t.Errorf("pruned %d, want 25002 (every failure before the cutoff)", n)
		}
		var left int64
		if err := db.Raw("SELECT count(*) FROM " + ft).Scan(&left).Error; err != nil {
			t.Fatal(err)
		}
		if left != 3 {
			t.Errorf("%d failures left, want 3 (at the cutoff and after)", left)
		}
		if n, err := calc.PruneFailures(t.Context(), cutoff); err != nil || n != 0 {
			t.Errorf("second prune: %d, %v; want 0, nil", n, err)
		}
		a, err := calc.Analytics(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Failures["Score"]; len(got) != 4 || got[2] != 1 || got[3] != 1 {
			t.Errorf("Score failures per bucket %v, want one in each of the last two buckets (the cutoff is outside the window)", got)
		}
	})
}

// series is a query of n rows on either database.
func series(db *gorm.DB, n int) string {
	if db.Dialector.Name() == "sqlite" {
		return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < " + strconv.Itoa(n) + ") SELECT x FROM c"
	}
	return "SELECT generate_series(1, " + strconv.Itoa(n) + ")"
}
