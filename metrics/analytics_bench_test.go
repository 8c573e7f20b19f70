package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/metrics"
	"gorm.io/gorm"
)

// BenchmarkAnalytics measures Calculator.Analytics on PostgreSQL at
// 1,000,000 leads spread over a year (about 2,700 created and 1,800
// processed in the last day) and 50,000 recorded failures, beside the
// direct way of computing the same figures in the same run:
//
//		go test -run '^$' -bench Analytics -benchtime 20x ./metrics/
//
//	  - analytics: Calculator.Analytics after Migrate: three index range
//	    scans over the last day, bucketed in Go, and the funnel from the
//	    incremental aggregates;
//	  - direct: the same figures by GROUP BY in PostgreSQL over the whole
//	    table (date_bin buckets, percentile_cont, leads by status), with the
//	    same indexes present.
//
// Then it adds 100,000 leads created in the last 24 hours (busy_day) and
// measures both again. Each reports ms/analytics; direct also how many
// times slower it is.
func BenchmarkAnalytics(b *testing.B) {
	db := openDB(b)
	table := newTable(b, db)
	now := time.Now()
	calc, err := metrics.New(db, metrics.WithTable(table), metrics.WithClock(func() time.Time { return now }))
	if err != nil {
		b.Fatal(err)
	}
	if err := calc.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	const size = 1_000_000
	seed(b, db, table, now, 0, size)
	err = db.Exec(`INSERT INTO `+table+`_workflow_failures (failed_at, activity, lead_id)
SELECT ?::timestamptz - ((g::bigint * 7919) % 31536000) * interval '1 second',
	(ARRAY['Enrich','Score','Vet','ZohoUpsert'])[1 + g % 4], g
FROM generate_series(1, ?::int) g`, now, size/20).Error
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`VACUUM ANALYZE ` + table + `_workflow_failures`).Error; err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"analytics", func(ctx context.Context) error { _, err := calc.Analytics(ctx); return err }},
		{"direct", func(ctx context.Context) error { return directAnalytics(ctx, db, table, now) }},
	}
	for _, phase := range []string{"year", "busy_day"} {
		if phase == "busy_day" {
			// 100,000 more leads, all created in the last 24 hours (two
			// thirds processed): the cost follows the day's leads.
			err := db.Exec(`INSERT INTO `+table+` (source, status, score, created_at, processed_at)
SELECT (ARRAY['LinkedIn','Website','Referral','Conference'])[1 + g % 4], 'SyncedToCrm', g % 100,
	c, CASE WHEN g % 3 = 0 THEN NULL ELSE c + (g % 600) * interval '1 second' END
FROM generate_series(1, 100000) g,
	LATERAL (SELECT ?::timestamptz - interval '10 minutes' - ((g::bigint * 7919) % 85000) * interval '1 second' AS c) t`, now).Error
			if err != nil {
				b.Fatal(err)
			}
			if err := db.Exec(`VACUUM ANALYZE ` + table).Error; err != nil {
				b.Fatal(err)
			}
		}
		var fast float64
		for _, impl := range impls {
			b.Run(fmt.Sprintf("leads=%d/%s/%s", size, phase, impl.name), func(b *testing.B) {
				for b.Loop() {
					if err := impl.run(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
				b.ReportMetric(ms, "ms/analytics")
				if impl.name == "analytics" {
					fast = ms
				} else if fast > 0 {
					b.ReportMetric(ms/fast, "x_of_analytics")
				}
			})
		}
	}
}

// directAnalytics computes the analytics the straightforward way, in SQL.
func directAnalytics(ctx context.Context, db *gorm.DB, table string, now time.Time) error {
	start := now.Truncate(5 * time.Minute).Add(-287 * 5 * time.Minute)
	var rows []struct {
		B      time.Time
		Source string
		N      int64
	}
	var pct []struct{ P50, P95, Max float64 }
	var funnel []struct {
		Status string
		N      int64
	}
	qs := []struct {
		dst  any
		sql  string
		args []any
	}{
		{&rows, `SELECT date_bin('5 minutes', created_at, ?) AS b, source, count(*) AS n FROM ` + table +
			` WHERE deleted_at IS NULL AND created_at >= ? AND created_at <= ? GROUP BY 1, 2`, []any{start, start, now}},
		{&rows, `SELECT date_bin('5 minutes', processed_at, ?) AS b, source, count(*) AS n FROM ` + table +
			` WHERE deleted_at IS NULL AND processed_at >= ? AND processed_at <= ? GROUP BY 1, 2`, []any{start, start, now}},
		{&rows, `SELECT date_bin('5 minutes', failed_at, ?) AS b, activity AS source, count(*) AS n FROM ` + table +
			`_workflow_failures WHERE failed_at >= ? AND failed_at <= ? GROUP BY 1, 2`, []any{start, start, now}},
		{&pct, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY d) AS p95, max(d) AS max
FROM (SELECT extract(epoch FROM processed_at - created_at) AS d FROM ` + table +
			` WHERE deleted_at IS NULL AND processed_at > ? AND processed_at <= ?) x`, []any{now.Add(-time.Hour), now}},
		{&pct, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY d) AS p95, max(d) AS max
FROM (SELECT extract(epoch FROM processed_at - created_at) AS d FROM ` + table +
			` WHERE deleted_at IS NULL AND processed_at > ? AND processed_at <= ?) x`, []any{now.Add(-24 * time.Hour), now}},
		{&funnel, `SELECT status, count(*) AS n FROM ` + table + ` WHERE deleted_at IS NULL GROUP BY status`, nil},
	}
	for _, q := range qs {
		if err := db.WithContext(ctx).Raw(q.sql, q.args...).Scan(q.dst).Error; err != nil {
			return err
		}
	}
	return nil
}
