package metrics

import (
	"context"
	"errors"
	"time"
)

// config is what the options set; its zero values are replaced by the
// defaults of defaultConfig.
type config struct {
	clock      func() time.Time
	loc        *time.Location
	qualified  []string
	harvesters func(context.Context) (int64, error)

	direct       bool
	compactEvery time.Duration
	compactRows  int

	bucket  time.Duration
	buckets int
	funnel  []string

	table, source, status, score, createdAt, processedAt, deletedAt string
}

func defaultConfig() config {
	return config{
		clock:       time.Now,
		loc:         time.UTC,
		qualified:   []string{"Qualified", "SyncedToCrm"},
		table:       "leads",
		source:      "source",
		status:      "status",
		score:       "score",
		createdAt:   "created_at",
		processedAt: "processed_at",
		deletedAt:   "deleted_at",

		compactEvery: time.Minute,
		compactRows:  5000,
		bucket:       5 * time.Minute,
		buckets:      288,
		funnel:       defaultFunnel,
	}
}

func (c *config) validate() error {
	if c.clock == nil {
		return errors.New("metrics: nil clock")
	}
	if c.loc == nil {
		return errors.New("metrics: nil location")
	}
	if c.compactEvery < 0 || c.compactRows < 1 {
		return errors.New("metrics: negative compaction period or row threshold below 1")
	}
	if c.bucket < time.Second || c.bucket%time.Second != 0 || c.buckets < 1 || c.buckets > 10000 {
		return errors.New("metrics: buckets must be whole seconds, at least one, and 1 to 10,000 of them")
	}
	if len(c.funnel) == 0 {
		return errors.New("metrics: empty funnel")
	}
	for _, n := range []string{c.table, c.source, c.status, c.score, c.createdAt, c.processedAt, c.deletedAt} {
		if n == "" {
			return errors.New("metrics: empty table or column name")
		}
	}
	return nil
}

// Option configures a Calculator.
type Option func(*config)

// WithClock sets the clock that says what "now" is. Defaults to time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithLocation sets the time zone whose midnight starts "today" and
// "yesterday". Defaults to UTC.
func WithLocation(loc *time.Location) Option { return func(c *config) { c.loc = loc } }

// WithQualifiedStatuses sets the statuses counted as qualified. Defaults to
// "Qualified" and "SyncedToCrm".
func WithQualifiedStatuses(statuses ...string) Option {
	return func(c *config) { c.qualified = append([]string(nil), statuses...) }
}

// WithActiveHarvesters sets the function that reports activeHarvesters, for
// an application that knows how many scrapers are running. By default it is
// the number of distinct sources with a lead created in the last 15 minutes.
func WithActiveHarvesters(f func(context.Context) (int64, error)) Option {
	return func(c *config) { c.harvesters = f }
}

// WithTable sets the leads table, optionally schema-qualified. Defaults to
// "leads".
func WithTable(name string) Option { return func(c *config) { c.table = name } }

// Columns names the columns a Calculator reads; an empty field keeps the
// default shown.
type Columns struct {
	Source      string // "source", text
	Status      string // "status", compared as text
	Score       string // "score", numeric, nullable
	CreatedAt   string // "created_at", timestamptz
	ProcessedAt string // "processed_at", timestamptz, nullable
	DeletedAt   string // "deleted_at", timestamptz, nullable: soft deletion
}

// WithColumns renames the columns a Calculator reads.
func WithColumns(cols Columns) Option {
	return func(c *config) {
		set := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		set(&c.source, cols.Source)
		set(&c.status, cols.Status)
		set(&c.score, cols.Score)
		set(&c.createdAt, cols.CreatedAt)
		set(&c.processedAt, cols.ProcessedAt)
		set(&c.deletedAt, cols.DeletedAt)
	}
}

// WithCompaction sets when Snapshot compacts the delta table of the
// incremental aggregates (see [Calculator.EnsureAggregates]): when the
// previous snapshot read more than rows rows of it, or any row beyond one
// per (source, status) and every has passed since this Calculator last
// compacted. The compaction then takes the place of that snapshot's read.
// Defaults to every minute and 5,000 rows. every must not be negative nor
// rows below 1.
func WithCompaction(every time.Duration, rows int) Option {
	return func(c *config) { c.compactEvery, c.compactRows = every, rows }
}

// WithoutAggregates makes Snapshot read every live lead even when the
// incremental aggregates are installed: to check them, or on a replica
// where they lag.
func WithoutAggregates() Option { return func(c *config) { c.direct = true } }

// WithBuckets sets the intervals of Analytics' series: n buckets of every
// (whole seconds), aligned on midnight in the location of WithLocation, the
// last one holding now. Defaults to 288 buckets of 5 minutes, a day.
func WithBuckets(every time.Duration, n int) Option {
	return func(c *config) { c.bucket, c.buckets = every, n }
}

// WithFunnel sets the statuses of Analytics' funnel, in the order the
// workflow moves a lead through them. Defaults to New, Enriching, Enriched,
// Scored, Vetted, Qualified, SyncedToCrm.
func WithFunnel(statuses ...string) Option {
	return func(c *config) { c.funnel = append([]string(nil), statuses...) }
}
