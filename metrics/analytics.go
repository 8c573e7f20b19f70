package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/leadupdates/leadupdates/notify"
	"gorm.io/gorm"
)

// The processing analytics ([Calculator.Analytics], a [notify.Analytics]).
// Definitions, at the instant now of the caller's clock:
//
//   - Buckets: Buckets consecutive intervals [start, start+interval) of
//     WithBuckets' interval (default 5 minutes, 288 of them: a day). They
//     are aligned on midnight, today, in the caller's location, and the
//     last one holds now; the first starts (Buckets−1) intervals before
//     it. Counts per bucket stop at now.
//   - Created: live leads (deleted_at NULL) by source, in the bucket of
//     their created_at.
//   - Processed: live leads whose processed_at is set (the workflow
//     finished with them: synced to the CRM or disqualified; a lead the
//     workflow reopens loses it), by source, in the bucket of processed_at.
//     Leads that never finish are never counted.
//   - Processing time: processed_at − created_at in seconds, over the live
//     leads processed in (now−1 h, now] and in (now−24 h, now]: count,
//     median and 95th percentile interpolated as percentile_cont does, and
//     maximum.
//   - Funnel: for each status of WithFunnel (default New, Enriching,
//     Enriched, Scored, Vetted, Qualified, SyncedToCrm), the live leads
//     whose current status is that one or a later one; leads in a status
//     off the path (Disqualified, Failed) count as having reached the first
//     step only, as the table does not say how far they went. Conversion is
//     a step's leads as a percentage of the previous step's.
//   - Failures: the workflow failures recorded with RecordFailure, by
//     activity, in the bucket of their time; a failure stays counted when
//     its lead is deleted.
//
// Leads and failures are read with one range scan each over the last day,
// through the partial indexes of EnsureIndexes (and the index of
// EnsureFailures), and bucketed in Go; the funnel comes from the same
// (source, status) groups as Snapshot, so from the incremental aggregates
// when they are installed. The cost grows with the leads of the last day,
// not with the table.

// analyticsSQL are the three range queries of Analytics.
type analyticsSQL struct {
	created, processed, failures string
}

// buildAnalyticsSQL returns the queries; epoch is the expression of a
// timestamp column in seconds since the Unix epoch, cmp that of a column
// compared with a bound.
func (c *Calculator) buildAnalyticsSQL() analyticsSQL {
	q := c.quote
	epoch := func(col string) string {
		return "CAST(EXTRACT(EPOCH FROM " + col + ") AS DOUBLE PRECISION)"
	}
	cmp := func(col string) string { return col }
	bound := func(name string) string { return "@" + name }
	if c.dialect.name == "sqlite" {
		epoch = func(col string) string { return "((julianday(" + col + ") - 2440587.5) * 86400.0)" }
		cmp = func(col string) string { return "julianday(" + col + ")" }
		bound = func(name string) string { return "julianday(@" + name + ")" }
	}
	cfg := c.cfg
	t, src, cr, pr, del := q(cfg.table), q(cfg.source), q(cfg.createdAt), q(cfg.processedAt), q(cfg.deletedAt)
	var s analyticsSQL
	s.created = "SELECT " + epoch(cr) + ", CAST(" + src + " AS TEXT) FROM " + t +
		" WHERE " + del + " IS NULL AND " + cmp(cr) + " >= " + bound("from") + " AND " + cmp(cr) + " <= " + bound("now")
	s.processed = "SELECT " + epoch(pr) + ", " + epoch(cr) + ", CAST(" + src + " AS TEXT) FROM " + t +
		" WHERE " + del + " IS NULL AND " + cmp(pr) + " > " + bound("day") + " AND " + cmp(pr) + " <= " + bound("now")
	f := q(c.failuresTable())
	s.failures = "SELECT " + epoch("failed_at") + ", activity FROM " + f +
		" WHERE " + cmp("failed_at") + " >= " + bound("from") + " AND " + cmp("failed_at") + " <= " + bound("now")
	return s
}

// analyticsGrid is the buckets of one computation, in milliseconds since
// the epoch.
type analyticsGrid struct {
	start, step, now int64
	n                int
}

// gridAt places the buckets for now (in the caller's zone).
func gridAt(now time.Time, step time.Duration, n int) analyticsGrid {
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, now.Location())
	last := midnight.Add(now.Sub(midnight).Truncate(step))
	start := last.Add(-time.Duration(n-1) * step)
	return analyticsGrid{start: start.UnixMilli(), step: step.Milliseconds(), now: now.UnixMilli(), n: n}
}

// bucket returns the index of the bucket of t (seconds since the epoch,
// rounded to the millisecond), or -1 outside the grid.
func (g analyticsGrid) bucket(t float64) int {
	ms := int64(math.Round(t * 1000))
	if ms < g.start || ms > g.now {
		return -1
	}
	i := int((ms - g.start) / g.step)
	if i >= g.n {
		return -1
	}
	return i
}

// count adds one to series[key] at bucket i, creating the series.
func (g analyticsGrid) count(series map[string][]int64, key string, i int) {
	s := series[key]
	if s == nil {
		s = make([]int64, g.n)
		series[key] = s
	}
	s[i]++
}

// Analytics computes the processing analytics at the configured clock's now
// (see the definitions above): three range queries over the last day and
// the (source, status) groups.
func (c *Calculator) Analytics(ctx context.Context) (notify.Analytics, error) {
	now := c.now()
	g := gridAt(now, c.cfg.bucket, c.cfg.buckets)
	a := notify.Analytics{
		Start:         notify.Timestamp{Time: time.UnixMilli(g.start).UTC()},
		BucketSeconds: int64(c.cfg.bucket / time.Second),
		Buckets:       g.n,
		Created:       map[string][]int64{},
		Processed:     map[string][]int64{},
		Failures:      map[string][]int64{},
	}
	arg := c.dialect.arg
	args := map[string]any{
		"from": arg(time.UnixMilli(g.start).UTC()),
		"now":  arg(now.UTC()),
		"day":  arg(now.Add(-24 * time.Hour).UTC()),
	}
	db := c.db.WithContext(ctx)

	err := eachRow(db, c.analytics.created, args, "leads created", func(rows *sql.Rows) error {
		var (
			t   float64
			src *string
		)
		if err := rows.Scan(&t, &src); err != nil {
			return err
		}
		if i := g.bucket(t); i >= 0 {
			g.count(a.Created, deref(src), i)
		}
		return nil
	})
	if err != nil {
		return notify.Analytics{}, err
	}

	hourAgo := float64(now.Add(-time.Hour).UnixMilli()) / 1000
	var hour, day []float64
	err = eachRow(db, c.analytics.processed, args, "leads processed", func(rows *sql.Rows) error {
		var (
			p, cr float64
			src   *string
		)
		if err := rows.Scan(&p, &cr, &src); err != nil {
			return err
		}
		if i := g.bucket(p); i >= 0 {
			g.count(a.Processed, deref(src), i)
		}
		d := math.Round((p-cr)*1000) / 1000
		day = append(day, d)
		if math.Round(p*1000) > math.Round(hourAgo*1000) {
			hour = append(hour, d)
		}
		return nil
	})
	if err != nil {
		return notify.Analytics{}, err
	}
	a.ProcessingTime.LastHour = percentiles(hour)
	a.ProcessingTime.LastDay = percentiles(day)

	err = eachRow(db, c.analytics.failures, args, "workflow failures", func(rows *sql.Rows) error {
		var (
			t        float64
			activity string
		)
		if err := rows.Scan(&t, &activity); err != nil {
			return err
		}
		if i := g.bucket(t); i >= 0 {
			g.count(a.Failures, activity, i)
		}
		return nil
	})
	if err != nil {
		return notify.Analytics{}, err
	}

	groups, err := c.groups(ctx)
	if err != nil {
		return notify.Analytics{}, fmt.Errorf("metrics: leads by status: %w", err)
	}
	a.Funnel = c.funnel(groups)
	return a, nil
}

// eachRow runs query and calls f with each row; errors say what was read.
func eachRow(db *gorm.DB, query string, args map[string]any, what string, f func(*sql.Rows) error) error {
	rows, err := db.Raw(query, args).Rows()
	if err != nil {
		return fmt.Errorf("metrics: %s: %w", what, err)
	}
	for rows.Next() {
		if err := f(rows); err != nil {
			rows.Close()
			return fmt.Errorf("metrics: %s: %w", what, err)
		}
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("metrics: %s: %w", what, err)
	}
	return nil
}

// funnel computes the funnel from the live leads by (source, status).
func (c *Calculator) funnel(groups []group) []notify.FunnelStep {
	steps := c.cfg.funnel
	at := make([]int64, len(steps)) // leads whose status is step i
	for _, gr := range groups {
		i := slices.Index(steps, gr.status.String)
		if i < 0 {
			i = 0 // off the path: reached the first step only
		}
		at[i] += gr.n
	}
	out := make([]notify.FunnelStep, len(steps))
	var reached int64
	for i := len(steps) - 1; i >= 0; i-- {
		reached += at[i]
		out[i] = notify.FunnelStep{Status: steps[i], Leads: reached}
	}
	for i := range out {
		if i == 0 {
			out[i].Conversion = 100
			if out[i].Leads == 0 {
				out[i].Conversion = 0
			}
			continue
		}
		out[i].Conversion = ratio(float64(out[i].Leads)*100, float64(out[i-1].Leads))
	}
	return out
}

// percentiles returns the count, median, 95th percentile (linear
// interpolation between the closest ranks, as percentile_cont) and maximum
// of ds, rounded to 2 decimals. It sorts ds.
func percentiles(ds []float64) notify.Percentiles {
	if len(ds) == 0 {
		return notify.Percentiles{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		pos := p * float64(len(ds)-1)
		lo := int(math.Floor(pos))
		hi := min(lo+1, len(ds)-1)
		return ds[lo] + (ds[hi]-ds[lo])*(pos-float64(lo))
	}
	return notify.Percentiles{
		Count: int64(len(ds)),
		P50:   round2(at(0.5)),
		P95:   round2(at(0.95)),
		Max:   round2(ds[len(ds)-1]),
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func closeRows(rows interface {
	Err() error
	Close() error
}) error {
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

// defaultFunnel is the workflow's path, from a new lead to one synced to the
// CRM.
var defaultFunnel = []string{"New", "Enriching", "Enriched", "Scored", "Vetted", "Qualified", "SyncedToCrm"}
