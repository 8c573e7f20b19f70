package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/leadupdates/leadupdates/notify"
)

// names are quoted identifiers.
type names struct {
	table, source, status, score, created, processed, deleted string
}

// groupQuery is the same on every dialect: counts, score counts and sums by
// (source, status) over the live leads.
const groupQuery = `SELECT CAST($src AS TEXT), CAST($st AS TEXT), COUNT(*), COUNT($sc), SUM(CAST($sc AS DOUBLE PRECISION))
FROM $t WHERE $d IS NULL GROUP BY $src, $st`

// replacer fills the (quoted) table and column names into a query template.
func (n names) replacer() *strings.Replacer {
	return strings.NewReplacer(
		"$t", n.table, "$src", n.source, "$st", n.status, "$sc", n.score,
		"$c", n.created, "$p", n.processed, "$d", n.deleted)
}

// buildSQL returns the two queries of a snapshot.
//
// The window query reads only recent rows: one range over created_at (the
// last 14 days at most) and one over processed_at (the last 24 hours at
// most), each answered from a partial index by EnsureIndexes, every figure of
// a range a FILTER of the same scan. The group query is the only one that
// must read every live lead; totals, qualified leads, the score average and
// both maps all come from its few (source, status) groups, so that scan
// happens once.
func buildSQL(n names) (window, group string) {
	r := n.replacer()
	window = r.Replace(`SELECT w.new_today, w.new_yesterday, w.last_week, w.prev_week, w.recent_sources,
	p.processed_today, p.processing_seconds
FROM (SELECT
	COUNT(*) FILTER (WHERE $c >= @today) AS new_today,
	COUNT(*) FILTER (WHERE $c >= @yesterday AND $c < @today) AS new_yesterday,
	COUNT(*) FILTER (WHERE $c > @week) AS last_week,
	COUNT(*) FILTER (WHERE $c > @fortnight AND $c <= @week) AS prev_week,
	COUNT(DISTINCT $src) FILTER (WHERE $c > @recent) AS recent_sources
	FROM $t WHERE $d IS NULL AND $c >= @created_from AND $c <= @now) w
CROSS JOIN (SELECT
	COUNT(*) FILTER (WHERE $p >= @today) AS processed_today,
	CAST(AVG(EXTRACT(EPOCH FROM $p - $c)) FILTER (WHERE $p > @day) AS DOUBLE PRECISION) AS processing_seconds
	FROM $t WHERE $d IS NULL AND $p >= @processed_from AND $p <= @now) p`)
	group = r.Replace(groupQuery)
	return window, group
}

// bounds are the instants a snapshot compares timestamps with, in UTC.
type bounds struct {
	now, today, yesterday, week, fortnight, recent, day time.Time
}

// boundsAt computes the windows for now, whose zone is the caller's: days
// start at local midnight and are calendar days (23 or 25 hours across a DST
// change); the week windows are rolling, (now−7 days, now] and the 7 days
// before; "recent" is the last 15 minutes, "day" the last 24 hours.
func boundsAt(now time.Time) bounds {
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, now.Location())
	return bounds{
		now:       now.UTC(),
		today:     today.UTC(),
		yesterday: today.AddDate(0, 0, -1).UTC(),
		week:      now.AddDate(0, 0, -7).UTC(),
		fortnight: now.AddDate(0, 0, -14).UTC(),
		recent:    now.Add(-15 * time.Minute).UTC(),
		day:       now.Add(-24 * time.Hour).UTC(),
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Snapshot computes the dashboard figures at the configured clock's now.
// Rates and averages are rounded to 2 decimals and are never NaN or
// infinite; the maps are never nil.
func (c *Calculator) Snapshot(ctx context.Context) (notify.Metrics, error) {
	b := boundsAt(c.now())
	d := notify.Metrics{LeadsBySource: map[string]int64{}, LeadsByStatus: map[string]int64{}}

	var (
		newToday, newYesterday, lastWeek, prevWeek, recentSources int64
		processing                                                sql.NullFloat64
	)
	a := c.dialect.arg
	err := c.db.WithContext(ctx).Raw(c.windowSQL, map[string]any{
		"now": a(b.now), "today": a(b.today), "yesterday": a(b.yesterday), "week": a(b.week),
		"fortnight": a(b.fortnight), "recent": a(b.recent), "day": a(b.day),
		"created_from":   a(earliest(b.yesterday, b.fortnight)),
		"processed_from": a(earliest(b.today, b.day)),
	}).Row().Scan(&newToday, &newYesterday, &lastWeek, &prevWeek, &recentSources,
		&d.ProcessedToday, &processing)
	if err != nil {
		return notify.Metrics{}, fmt.Errorf("metrics: recent leads: %w", err)
	}

	groups, err := c.groups(ctx)
	if err != nil {
		return notify.Metrics{}, fmt.Errorf("metrics: leads by source and status: %w", err)
	}
	var scored int64
	var scoreSum float64
	for _, g := range groups {
		scored += g.scored
		scoreSum += g.scoreSum
		if g.n == 0 { // every lead of the group left: no entry
			continue
		}
		// A NULL source or status is counted under "".
		d.LeadsBySource[g.source.String] += g.n
		d.LeadsByStatus[g.status.String] += g.n
		d.TotalLeads += g.n
		if c.qualified[g.status.String] {
			d.QualifiedLeads += g.n
		}
	}

	d.ActiveHarvesters = recentSources
	if c.cfg.harvesters != nil {
		if d.ActiveHarvesters, err = c.cfg.harvesters(ctx); err != nil {
			return notify.Metrics{}, fmt.Errorf("metrics: active harvesters: %w", err)
		}
	}
	d.NewLeadsToday = newToday
	d.ConversionRate = ratio(float64(d.QualifiedLeads)*100, float64(d.TotalLeads))
	d.ScoreAverage = ratio(scoreSum, float64(scored))
	d.ProcessingTime = round2(processing.Float64)
	d.DailyGrowth = ratio(float64(newToday-newYesterday)*100, float64(newYesterday))
	d.WeeklyGrowth = ratio(float64(lastWeek-prevWeek)*100, float64(prevWeek))
	return d, nil
}

// ratio returns num/den rounded to 2 decimals, and 0 when den is 0 so that
// no NaN or Inf reaches the JSON.
func ratio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return round2(num / den)
}

func round2(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*100) / 100
}
