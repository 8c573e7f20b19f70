package metrics

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Dashboard holds the figures of a METRICS_UPDATE: the fields of
// notify.Metrics, in the same order and of the same types, so that the
// application converts with notify.Metrics(d) (siblings do not import each
// other; keep the two in step). Rates and averages are rounded to 2 decimals and
// are never NaN or infinite; the maps are never nil.
type Dashboard struct {
	TotalLeads       int64
	QualifiedLeads   int64
	ConversionRate   float64 // QualifiedLeads / TotalLeads × 100
	ActiveHarvesters int64
	ProcessingTime   float64 // mean seconds from creation to processing, over the last 24 hours
	ScoreAverage     float64 // over leads that have a score
	DailyGrowth      float64 // % change of new leads, today against yesterday
	WeeklyGrowth     float64 // % change of new leads, last 7 days against the 7 before
	NewLeadsToday    int64
	ProcessedToday   int64
	LeadsBySource    map[string]int64
	LeadsByStatus    map[string]int64
}

// Calculator computes Dashboards from the leads table. A Calculator is safe
// for concurrent use; each Snapshot runs two queries (and, when a
// compaction of the incremental aggregates is due, a short transaction in
// place of the second).
type Calculator struct {
	db        *gorm.DB
	cfg       config
	qualified map[string]bool
	windowSQL string
	groupSQL  string
	dialect   dialect

	agg        atomic.Pointer[aggState] // nil until detected
	compacting sync.Mutex               // held while this Calculator compacts

	compactMu              sync.Mutex
	deltaRows, deltaGroups int64 // found by the last read of the delta table
	lastCompact            time.Time
}

// New returns a Calculator reading the leads table through db. It fails if
// an option is invalid or db's dialect is neither PostgreSQL ("postgres")
// nor SQLite ("sqlite", as github.com/glebarez/sqlite names it).
func New(db *gorm.DB, opts ...Option) (*Calculator, error) {
	if db == nil {
		return nil, errors.New("metrics: nil *gorm.DB")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dia, ok := dialects[db.Dialector.Name()]
	if !ok {
		return nil, fmt.Errorf("metrics: dialect %q is not supported", db.Dialector.Name())
	}
	c := &Calculator{db: db, cfg: cfg, qualified: make(map[string]bool, len(cfg.qualified)), dialect: dia}
	for _, s := range cfg.qualified {
		c.qualified[s] = true
	}
	q := func(name string) string {
		var b strings.Builder
		db.Dialector.QuoteTo(&b, name)
		return b.String()
	}
	c.windowSQL, c.groupSQL = dia.buildSQL(names{
		table:     q(cfg.table),
		source:    q(cfg.source),
		status:    q(cfg.status),
		score:     q(cfg.score),
		created:   q(cfg.createdAt),
		processed: q(cfg.processedAt),
		deleted:   q(cfg.deletedAt),
	})
	return c, nil
}

// now returns the caller's clock in the caller's zone.
func (c *Calculator) now() time.Time {
	return c.cfg.clock().In(c.cfg.loc)
}
