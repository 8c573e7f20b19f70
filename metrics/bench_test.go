package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/metrics"
	"gorm.io/gorm"
)

// BenchmarkSnapshot compares Snapshot with a naive version (one query per
// figure) on 100,000 and then 1,000,000 leads spread over a year, in one
// table filled once and grown in place:
//
//	go test -run '^$' -bench Snapshot -benchtime 10x ./metrics/
//
// Each sub-benchmark reports ms/snapshot; the naive ones also report how
// many times slower they are, and the 1,000,000 ones how much slower they
// are than at 100,000.
func BenchmarkSnapshot(b *testing.B) {
	db := openDB(b)
	table := newTable(b, db)
	c, err := metrics.New(db, metrics.WithTable(table))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.EnsureIndexes(b.Context()); err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		snap func(context.Context) (metrics.Dashboard, error)
	}{
		{"calculator", c.Snapshot},
		{"naive", func(ctx context.Context) (metrics.Dashboard, error) { return naiveSnapshot(ctx, db, table) }},
	}
	msPer := map[string]float64{}
	now := time.Now()
	have := 0
	for _, size := range []int{100_000, 1_000_000} {
		seed(b, db, table, now, have, size)
		have = size
		for _, impl := range impls {
			b.Run(fmt.Sprintf("leads=%d/%s", size, impl.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := impl.snap(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
				msPer[fmt.Sprint(size, impl.name)] = ms
				b.ReportMetric(ms, "ms/snapshot")
				if fast := msPer[fmt.Sprint(size, "calculator")]; impl.name == "naive" && fast > 0 {
					b.ReportMetric(ms/fast, "x_slower_than_calculator")
				}
				if small := msPer[fmt.Sprint(100_000, impl.name)]; size == 1_000_000 && small > 0 {
					b.ReportMetric(ms/small, "x_of_100k")
				}
			})
		}
	}
}

// seed adds leads from+1..to, created over the year before now: 8 sources,
// 6 statuses, a fifth without score, two thirds processed within 10 minutes,
// one in twenty deleted. Then it refreshes statistics and the visibility map
// as autovacuum would in time.
func seed(b *testing.B, db *gorm.DB, table string, now time.Time, from, to int) {
	b.Helper()
	err := db.Exec(`INSERT INTO `+table+` (source, status, score, created_at, processed_at, deleted_at)
SELECT (ARRAY['LinkedIn','Website','Referral','Conference','ColdCall','Twitter','Facebook','Partner'])[1 + g % 8],
	(ARRAY['New','Enriched','Scored','Qualified','SyncedToCrm','Rejected'])[1 + (g / 8) % 6],
	CASE WHEN g % 5 = 0 THEN NULL ELSE (g * 7) % 100 END,
	c, CASE WHEN g % 3 = 0 THEN NULL ELSE c + (g % 600) * interval '1 second' END,
	CASE WHEN g % 20 = 0 THEN c + interval '1 day' END
FROM generate_series(?::int, ?::int) g,
	LATERAL (SELECT ?::timestamptz - ((g::bigint * 7919) % 31536000) * interval '1 second' AS c) t`,
		from+1, to, now).Error
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(`VACUUM ANALYZE ` + table).Error; err != nil {
		b.Fatal(err)
	}
}

// naiveSnapshot is the straightforward way: one query per figure.
func naiveSnapshot(ctx context.Context, db *gorm.DB, table string) (metrics.Dashboard, error) {
	now := time.Now().UTC()
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	live := ` FROM ` + table + ` WHERE deleted_at IS NULL`
	var (
		out                              = metrics.Dashboard{LeadsBySource: map[string]int64{}, LeadsByStatus: map[string]int64{}}
		newYesterday, lastWeek, prevWeek int64
		scoreAvg, processing             *float64
		bySource, byStatus               []struct {
			K string
			N int64
		}
	)
	qs := []struct {
		dst  any
		sql  string
		args []any
	}{
		{&out.TotalLeads, `SELECT count(*)` + live, nil},
		{&out.QualifiedLeads, `SELECT count(*)` + live + ` AND status IN ('Qualified', 'SyncedToCrm')`, nil},
		{&scoreAvg, `SELECT avg(score)::float8` + live, nil},
		{&processing, `SELECT avg(extract(epoch FROM processed_at - created_at))::float8` + live + ` AND processed_at > ? AND processed_at <= ?`, []any{now.Add(-24 * time.Hour), now}},
		{&out.NewLeadsToday, `SELECT count(*)` + live + ` AND created_at >= ? AND created_at <= ?`, []any{today, now}},
		{&newYesterday, `SELECT count(*)` + live + ` AND created_at >= ? AND created_at < ?`, []any{today.AddDate(0, 0, -1), today}},
		{&out.ProcessedToday, `SELECT count(*)` + live + ` AND processed_at >= ? AND processed_at <= ?`, []any{today, now}},
		{&lastWeek, `SELECT count(*)` + live + ` AND created_at > ? AND created_at <= ?`, []any{now.AddDate(0, 0, -7), now}},
		{&prevWeek, `SELECT count(*)` + live + ` AND created_at > ? AND created_at <= ?`, []any{now.AddDate(0, 0, -14), now.AddDate(0, 0, -7)}},
		{&out.ActiveHarvesters, `SELECT count(DISTINCT source)` + live + ` AND created_at > ? AND created_at <= ?`, []any{now.Add(-15 * time.Minute), now}},
		{&bySource, `SELECT source AS k, count(*) AS n` + live + ` GROUP BY source`, nil},
		{&byStatus, `SELECT status AS k, count(*) AS n` + live + ` GROUP BY status`, nil},
	}
	for _, q := range qs {
		if err := db.WithContext(ctx).Raw(q.sql, q.args...).Scan(q.dst).Error; err != nil {
			return metrics.Dashboard{}, err
		}
	}
	for _, r := range bySource {
		out.LeadsBySource[r.K] = r.N
	}
	for _, r := range byStatus {
		out.LeadsByStatus[r.K] = r.N
	}
	return out, nil
}
