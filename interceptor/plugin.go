package interceptor

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/go-kit/log"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/leadupdates/leadupdates/internal/promreg"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// Fields names the Go fields of the watched model that carry the lead id,
// status, score and enrichment data. Zero values take the defaults: the
// primary key, "Status", "Score", and every field whose name starts with
// "Enrich". A model without a status or score field simply emits no such
// changes.
//
// Audience, when set, names a field (for example "Owner") whose committed
// value every Change carries in Change.Audience: read by the same statement
// that made the change (an UPDATE or DELETE returns it), so that who may see
// a change is decided from the row as committed, never from a copy that
// another writer may have made stale. There is no default.
type Fields struct {
	ID, Status, Score string
	Enrichment        []string
	Audience          string
}

// Option configures a Plugin.
type Option func(*config)

type config struct {
	fields     Fields
	logger     log.Logger
	registerer prometheus.Registerer
	strict     bool
	queue      int
	log        *eventlog.Log
}

// WithFields sets which fields carry the lead's id, status, score and
// enrichment. Defaults to Fields{}.
func WithFields(f Fields) Option { return func(c *config) { c.fields = f } }

// WithLogger sets where sink failures and dropped changes are logged.
// Defaults to log.NewNopLogger().
func WithLogger(l log.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegisterer registers the plugin's counter
// (leadupdates_interceptor_changes_total{outcome}) on r. By default nothing
// is registered. A second Plugin on the same registry fails in New: give
// each its own, e.g. with prometheus.WrapRegistererWith.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithStrict calls the sink synchronously after commit, in the committing
// goroutine, and returns its error to the caller (from Commit, or from the
// statement in autocommit). The data is committed anyway. The Plugin then
// starts no goroutine and has no queue. By default the sink runs on the
// plugin's goroutine and its errors are only logged and counted.
func WithStrict() Option { return func(c *config) { c.strict = true } }

// WithQueue sets how many committed batches may wait for the sink before
// new ones are dropped (and counted), without WithStrict. Defaults to 1024.
func WithQueue(n int) Option { return func(c *config) { c.queue = n } }

// A Plugin is a gorm.Plugin that turns committed writes of one model into
// Changes for a Sink. It is safe for concurrent use.
type Plugin struct {
	modelType reflect.Type
	model     any
	sink      Sink
	cfg       config
	tel       *telemetry
	order     *order

	// Without WithStrict, committed batches wait in queue for the delivery
	// goroutine: the one thing it buys is that a slow or stuck Sink never
	// delays a writer whose data is committed (TestSlowSinkDoesNotBlock).
	// With a quick Sink, such as a *notify.Notifier's calls, it costs a
	// writer nothing measurable either way (README, Benchmarks).
	queue   chan []Change // nil with WithStrict or WithEventLog
	stopped chan struct{}
	closed  bool // guarded by order.mu

	initOnce sync.Once
	cols     sync.Map // *schema.Schema -> *columns

	queries queries // SQL of prepared statements, for connTx
	failMu  sync.Mutex
	failDB  *sql.DB // serves failed (see failedStmt)
	failed  map[error]*sql.Stmt
}

var _ gorm.Plugin = (*Plugin)(nil)

type telemetry struct{ changes *prometheus.CounterVec }

// New returns a Plugin watching model (a struct or a pointer to one) and
// publishing its committed changes to sink; register it with db.Use.
// Without WithStrict or WithEventLog it starts the delivery goroutine;
// Close stops it.
func New(model any, sink Sink, opts ...Option) (*Plugin, error) {
	if sink == nil {
		return nil, errors.New("interceptor: nil Sink")
	}
	t := reflect.TypeOf(model)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("interceptor: model must be a struct, got %T", model)
	}
	cfg := config{logger: log.NewNopLogger(), queue: 1024}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.queue < 1 {
		return nil, fmt.Errorf("interceptor: queue size %d must be at least 1", cfg.queue)
	}
	f := promreg.With("interceptor", cfg.registerer)
	tel := &telemetry{changes: f.NewCounterVec(prometheus.CounterOpts{
		Name: "leadupdates_interceptor_changes_total",
		Help: "Committed lead changes by outcome: published, failed, panicked, dropped, unsafe (emitted from a transaction the plugin did not begin).",
	}, []string{"outcome"})}
	if err := f.Err(); err != nil {
		return nil, err
	}
	p := &Plugin{
		modelType: t, model: reflect.New(t).Interface(), sink: sink, cfg: cfg, tel: tel,
		stopped: make(chan struct{}),
	}
	p.order = &order{p: p, pending: map[uint64][]Change{}, done: map[uint64]bool{}}
	if cfg.strict || cfg.log != nil {
		close(p.stopped)
	} else {
		p.queue = make(chan []Change, cfg.queue)
		go p.run()
	}
	return p, nil
}

// Close stops taking changes, publishes those already queued and returns
// when the sink has seen them and the delivery goroutine has returned.
// Changes committed afterwards are dropped. Close is idempotent and safe to
// call concurrently.
func (p *Plugin) Close() error {
	p.order.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.queue != nil {
			close(p.queue)
		}
	}
	p.order.mu.Unlock()
	<-p.stopped
	p.failMu.Lock()
	if p.failDB != nil {
		_ = p.failDB.Close() // failed now fails with "database is closed"
	}
	p.failMu.Unlock()
	return nil
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return "interceptor" }

// Initialize implements gorm.Plugin: it wraps db's connection pool so that
// transactions buffer changes until they commit, and registers the
// callbacks. A Plugin can be used with one *gorm.DB only.
func (p *Plugin) Initialize(db *gorm.DB) error {
	first := false
	p.initOnce.Do(func() { first = true })
	if !first {
		return errors.New("interceptor: plugin already initialized")
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(p.model); err != nil {
		return fmt.Errorf("interceptor: parse model: %w", err)
	}
	if _, err := p.columns(stmt.Schema); err != nil {
		return err
	}
	if _, ok := db.ConnPool.(*pool); !ok {
		w := &pool{ConnPool: db.ConnPool, p: p}
		// Under WithEventLog on PostgreSQL through pgx, transactions run on
		// connections of their own, so that the events are appended with
		// COMMIT in one round trip. PrepareStmt (db.ConnPool a
		// *gorm.PreparedStmtDB) keeps *sql.Tx, whose StmtContext reuses
		// the statements prepared on each connection.
		if d, ok := db.ConnPool.(*sql.DB); ok && p.cfg.log != nil && db.Dialector.Name() == "postgres" {
			if _, pgx := d.Driver().(*stdlib.Driver); pgx {
				w.conns = d
			}
		}
		db.ConnPool = w
		if db.Statement != nil {
			db.Statement.ConnPool = w
		}
	}
	cb := db.Callback()
	// Each callback is pinned on both sides: After alone would put it after
	// gorm:commit_or_rollback_transaction (GORM appends a callback whose
	// After target is already sorted), when Statement.ConnPool is no longer
	// the transaction the changes must be buffered in.
	regs := []error{
		cb.Create().After("gorm:save_before_associations").Before("gorm:create").
			Register("interceptor:before_create", p.beforeCreate),
		// After gorm:create, GORM has scanned the generated ids into the model.
		cb.Create().After("gorm:create").Before("gorm:save_after_associations").
			Register("interceptor:after_create", p.afterCreate),
		// After the BeforeUpdate hooks and associations, so that only the
		// UPDATE itself carries the capture context.
		cb.Update().After("gorm:save_before_associations").Before("gorm:update").
			Register("interceptor:before_update", p.beforeUpdate),
		cb.Update().After("gorm:update").Before("gorm:save_after_associations").
			Register("interceptor:after_update", p.afterUpdate),
		cb.Delete().After("gorm:delete_before_associations").Before("gorm:delete").
			Register("interceptor:before_delete", p.beforeDelete),
		cb.Delete().After("gorm:delete").Before("gorm:after_delete").
			Register("interceptor:after_delete", p.afterDelete),
	}
	return errors.Join(regs...)
}

// columns are the resolved fields of one schema of the watched model.
type columns struct {
	id, status, score *schema.Field
	enrich            []*schema.Field
	audience          *schema.Field // nil unless Fields.Audience

	plans      planCache // update plans of the schema's own table
	otherPlans sync.Map  // table name -> *planCache, for db.Table(...)
}

func (p *Plugin) columns(s *schema.Schema) (*columns, error) {
	if c, ok := p.cols.Load(s); ok {
		return c.(*columns), nil
	}
	f := p.cfg.fields
	c := &columns{}
	lookup := func(name, what string, def bool) (*schema.Field, error) {
		fd := s.LookUpField(name)
		if fd == nil && !def {
			return nil, fmt.Errorf("interceptor: model %s has no %s field %q", s.Name, what, name)
		}
		if fd != nil && fd.DBName == "" {
			return nil, fmt.Errorf("interceptor: %s field %q of %s is not a column", what, name, s.Name)
		}
		return fd, nil
	}
	var err error
	if f.ID == "" {
		c.id = s.PrioritizedPrimaryField
		if c.id == nil {
			return nil, fmt.Errorf("interceptor: model %s has no single primary key; set Fields.ID", s.Name)
		}
	} else if c.id, err = lookup(f.ID, "id", false); err != nil {
		return nil, err
	}
	status, score := f.Status, f.Score
	if c.status, err = lookup(or(status, "Status"), "status", status == ""); err != nil {
		return nil, err
	}
	if c.score, err = lookup(or(score, "Score"), "score", score == ""); err != nil {
		return nil, err
	}
	if f.Audience != "" {
		if c.audience, err = lookup(f.Audience, "audience", false); err != nil {
			return nil, err
		}
	}
	if f.Enrichment == nil {
		for _, fd := range s.Fields {
			if strings.HasPrefix(fd.Name, "Enrich") && fd.DBName != "" {
				c.enrich = append(c.enrich, fd)
			}
		}
	} else {
		for _, name := range f.Enrichment {
			fd, err := lookup(name, "enrichment", false)
			if err != nil {
				return nil, err
			}
			c.enrich = append(c.enrich, fd)
		}
	}
	p.cols.Store(s, c)
	return c, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// watched reports whether the statement writes the watched model and may be
// captured.
func (p *Plugin) watched(db *gorm.DB) (*columns, bool) {
	s := db.Statement
	if db.Error != nil || db.DryRun || s.Schema == nil || s.Schema.ModelType != p.modelType {
		return nil, false
	}
	if v, ok := s.Settings.Load(skipKey); ok && v == true {
		return nil, false
	}
	c, err := p.columns(s.Schema)
	if err != nil {
		return nil, false
	}
	return c, true
}
