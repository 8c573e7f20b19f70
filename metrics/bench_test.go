package metrics_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
	"gorm.io/gorm"
)

// BenchmarkSnapshot compares three ways of computing a snapshot on 100,000
// and then 1,000,000 leads spread over a year, in one table filled once and
// grown in place:
//
//		go test -run '^$' -bench Snapshot -benchtime 5x ./metrics/
//
//	  - naive: one query per figure;
//	  - direct: Snapshot reading every live lead in one GROUP BY (the
//	    Calculator with WithoutAggregates, or without EnsureAggregates);
//	  - aggregates: Snapshot reading the incremental aggregates, compacted;
//	  - aggregates_5000_deltas: the same with 5,000 uncompacted delta rows
//	    (2,500 status updates since the last compaction), the most the default
//	    WithCompaction lets accumulate before a snapshot compacts.
//
// The triggers are installed before the leads are inserted, so the seed's
// bulk INSERTs go through them. Each sub-benchmark reports ms/snapshot, the
// others also how many times slower they are than aggregates, and the
// 1,000,000 ones how much slower they are than at 100,000.
func BenchmarkSnapshot(b *testing.B) {
	db := openDB(b)
	table := newTable(b, db)
	agg, err := metrics.New(db, metrics.WithTable(table))
	if err != nil {
		b.Fatal(err)
	}
	if err := agg.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	direct, err := metrics.New(db, metrics.WithTable(table), metrics.WithoutAggregates())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	// Never compacts on its own.
	lazy, err := metrics.New(db, metrics.WithTable(table), metrics.WithCompaction(time.Hour, 1<<30))
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name  string
		snap  func(context.Context) (notify.Metrics, error)
		setup func(b *testing.B)
	}{
		{name: "aggregates", snap: agg.Snapshot, setup: func(b *testing.B) {
			if err := agg.Compact(b.Context()); err != nil {
				b.Fatal(err)
			}
		}},
		{name: "aggregates_5000_deltas", snap: lazy.Snapshot, setup: func(b *testing.B) {
			if err := agg.Compact(b.Context()); err != nil {
				b.Fatal(err)
			}
			// 2,500 single-row INSERTs then 2,500 single-row DELETEs of
			// leads older than the windows, in one transaction (one
			// flush): a delta row each, and the leads as before.
			err := db.Transaction(func(tx *gorm.DB) error {
				statuses := []string{"New", "Enriched", "Scored", "Qualified", "SyncedToCrm", "Rejected"}
				for i := range 2500 {
					err := tx.Exec(`INSERT INTO `+table+` (source, status, score, created_at) VALUES ('Extra', ?, ?, ?)`,
						statuses[i%6], i%100, now.AddDate(-2, 0, 0)).Error
					if err != nil {
						return err
					}
				}
				for range 2500 {
					if err := tx.Exec(`DELETE FROM ` + table + ` WHERE id = (SELECT max(id) FROM ` + table + `)`).Error; err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}},
		{name: "direct", snap: direct.Snapshot},
		{name: "naive", snap: func(ctx context.Context) (notify.Metrics, error) { return naiveSnapshot(ctx, db, table) }},
	}
	msPer := map[string]float64{}
	have := 0
	for _, size := range []int{100_000, 1_000_000} {
		seed(b, db, table, now, have, size)
		have = size
		for _, impl := range impls {
			if impl.setup != nil {
				impl.setup(b)
			}
			b.Run(fmt.Sprintf("leads=%d/%s", size, impl.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := impl.snap(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
				msPer[fmt.Sprint(size, impl.name)] = ms
				b.ReportMetric(ms, "ms/snapshot")
				if fast := msPer[fmt.Sprint(size, "aggregates")]; impl.name != "aggregates" && fast > 0 {
					b.ReportMetric(ms/fast, "x_of_aggregates")
				}
				if small := msPer[fmt.Sprint(100_000, impl.name)]; size == 1_000_000 && small > 0 {
					b.ReportMetric(ms/small, "x_of_100k")
				}
			})
		}
	}
	// Same figures both ways at the end.
	a, err := agg.Snapshot(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	d, err := direct.Snapshot(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if !reflect.DeepEqual(a, d) {
		b.Fatalf("aggregates %+v\ndirect %+v", a, d)
	}
}

// BenchmarkWriteCost measures what the triggers of EnsureAggregates cost the
// writers: single-row INSERTs and single-row UPDATEs (of the status, a
// counted column, and of processed_at, which no figure of the aggregates
// reads) on two tables of 100,000 leads with the same indexes, one with the
// aggregates and one without, in the same run, each statement in its own
// transaction (autocommit):
//
//	go test -run '^$' -bench WriteCost -benchtime 3s ./metrics/
//
// "commit" waits for each commit to reach the disk, as a default server
// does: the flush dominates. "nosync" sets synchronous_commit = off for the
// session, which leaves the cost of executing the statement, where the
// triggers' share shows. Each iteration runs the statement once on each
// table, alternately first, and reports the mean µs per statement on each
// and the ratio.
func BenchmarkWriteCost(b *testing.B) {
	db := openDB(b)
	now := time.Now()
	tables := map[bool]string{}
	for _, withAgg := range []bool{false, true} {
		table := newTable(b, db)
		tables[withAgg] = table
		c, err := metrics.New(db, metrics.WithTable(table))
		if err != nil {
			b.Fatal(err)
		}
		if withAgg {
			err = c.Migrate(b.Context())
		} else {
			err = c.EnsureIndexes(b.Context())
		}
		if err != nil {
			b.Fatal(err)
		}
		seed(b, db, table, now, 0, 100_000)
	}
	statuses := []string{"New", "Enriched", "Scored", "Qualified", "SyncedToCrm", "Rejected"}
	ops := []struct {
		name string
		exec func(db *gorm.DB, table string, i int) error
	}{
		{"insert", func(db *gorm.DB, table string, i int) error {
			return db.Exec(`INSERT INTO `+table+` (source, status, score, created_at) VALUES (?, ?, ?, ?)`,
				"Website", statuses[i%6], i%100, now).Error
		}},
		{"update_status", func(db *gorm.DB, table string, i int) error {
			return db.Exec(`UPDATE `+table+` SET status = ? WHERE id = ?`, statuses[i%6], 1+(i*7919)%100_000).Error
		}},
		{"update_processed_at", func(db *gorm.DB, table string, i int) error {
			return db.Exec(`UPDATE `+table+` SET processed_at = ? WHERE id = ?`, now, 1+(i*7919)%100_000).Error
		}},
	}
	for _, mode := range []string{"commit", "nosync"} {
		for _, op := range ops {
			b.Run(mode+"/"+op.name, func(b *testing.B) {
				var spent [2]time.Duration // without, with the aggregates
				// One connection, so that the session setting holds.
				err := db.Connection(func(conn *gorm.DB) error {
					sync := "on"
					if mode == "nosync" {
						sync = "off"
					}
					if err := conn.Exec("SET synchronous_commit = " + sync).Error; err != nil {
						return err
					}
					for k, withAgg := range []bool{false, true} { // compile the trigger
						if err := op.exec(conn, tables[withAgg], k); err != nil {
							return err
						}
					}
					i := 0
					for b.Loop() {
						// Alternately, so that both see the same
						// background load.
						for k, withAgg := range []bool{i%2 == 0, i%2 != 0} {
							start := time.Now()
							if err := op.exec(conn, tables[withAgg], 2*i+k); err != nil {
								return err
							}
							spent[boolIndex(withAgg)] += time.Since(start)
						}
						i++
					}
					return conn.Exec("RESET synchronous_commit").Error
				})
				if err != nil {
					b.Fatal(err)
				}
				plain := float64(spent[0].Nanoseconds()) / 1000 / float64(b.N)
				with := float64(spent[1].Nanoseconds()) / 1000 / float64(b.N)
				b.ReportMetric(plain, "µs_plain")
				b.ReportMetric(with, "µs_aggregates")
				b.ReportMetric(with/plain, "x_of_plain")
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
func naiveSnapshot(ctx context.Context, db *gorm.DB, table string) (notify.Metrics, error) {
	now := time.Now().UTC()
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	live := ` FROM ` + table + ` WHERE deleted_at IS NULL`
	var (
		out                              = notify.Metrics{LeadsBySource: map[string]int64{}, LeadsByStatus: map[string]int64{}}
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
			return notify.Metrics{}, err
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

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
