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

// Calculator computes the dashboard figures from the leads table. A Calculator is safe
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
	analytics analyticsSQL

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
	c.windowSQL, c.groupSQL = dia.buildSQL(names{
		table:     c.quote(cfg.table),
		source:    c.quote(cfg.source),
		status:    c.quote(cfg.status),
		score:     c.quote(cfg.score),
		created:   c.quote(cfg.createdAt),
		processed: c.quote(cfg.processedAt),
		deleted:   c.quote(cfg.deletedAt),
	})
	c.analytics = c.buildAnalyticsSQL()
	return c, nil
}

// now returns the caller's clock in the caller's zone.
func (c *Calculator) now() time.Time {
	return c.cfg.clock().In(c.cfg.loc)
}

// quote returns name quoted as an identifier of c's database, each part of
// a schema-qualified name on its own.
func (c *Calculator) quote(name string) string {
	var b strings.Builder
	c.db.Dialector.QuoteTo(&b, name)
	return b.String()
}

// splitTable splits a possibly schema-qualified table name, "s.leads", into
// its schema ("s", or "" when unqualified) and its own name ("leads").
func splitTable(name string) (schema, base string) {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}
