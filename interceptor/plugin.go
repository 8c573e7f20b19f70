package interceptor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// Fields names the Go fields of the watched model that carry the lead id,
// status, score and enrichment data. Zero values take the defaults: the
// primary key, "Status", "Score", and every field whose name starts with
// "Enrich". A model without a status or score field simply emits no such
// changes.
type Fields struct {
	ID, Status, Score string
	Enrichment        []string
}

// Option configures a Plugin.
type Option func(*config)

type config struct {
	fields     Fields
	logger     log.Logger
	registerer prometheus.Registerer
	strict     bool
	queue      int
	timeout    time.Duration
}

// WithFields sets which fields carry the lead's id, status, score and
// enrichment. Defaults to Fields{}.
func WithFields(f Fields) Option { return func(c *config) { c.fields = f } }

// WithLogger sets where sink failures and dropped changes are logged.
// Defaults to log.NewNopLogger().
func WithLogger(l log.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegisterer registers the plugin's counter
// (leadupdates_interceptor_changes_total{outcome}) on r. By default nothing
// is registered.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithStrict calls the sink synchronously after commit and returns its error
// to the caller (from Commit, or from the statement in autocommit). The data
// is committed anyway. By default the sink runs on the plugin's goroutine
// and its errors are only logged and counted.
func WithStrict() Option { return func(c *config) { c.strict = true } }

// WithQueue sets how many committed batches may wait for the sink before
// new ones are dropped (and counted). Defaults to 1024.
func WithQueue(n int) Option { return func(c *config) { c.queue = n } }

// WithTimeout bounds the context passed to each Publish. Defaults to 5s.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// A Plugin is a gorm.Plugin that turns committed writes of one model into
// Changes for a Sink. It is safe for concurrent use. Close stops its
// delivery goroutine.
type Plugin struct {
	modelType reflect.Type
	model     any
	sink      Sink
	cfg       config
	tel       *telemetry
	order     *order

	queue   chan []Change
	stopped chan struct{}
	closed  bool // guarded by order.mu

	initOnce sync.Once
	cols     sync.Map // *schema.Schema -> *columns
}

var _ gorm.Plugin = (*Plugin)(nil)

type telemetry struct{ changes *prometheus.CounterVec }

// New returns a Plugin watching model (a struct or a pointer to one) and
// publishing its committed changes to sink; register it with db.Use. It
// starts the delivery goroutine; Close stops it.
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
	cfg := config{logger: log.NewNopLogger(), queue: 1024, timeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.queue < 1 {
		return nil, fmt.Errorf("interceptor: queue size %d must be at least 1", cfg.queue)
	}
	tel := &telemetry{changes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leadupdates_interceptor_changes_total",
		Help: "Committed lead changes by outcome: published, failed, panicked, dropped, unsafe (emitted from a transaction the plugin did not begin).",
	}, []string{"outcome"})}
	if cfg.registerer != nil {
		if err := cfg.registerer.Register(tel.changes); err != nil {
			return nil, fmt.Errorf("interceptor: register collectors: %w", err)
		}
	}
	p := &Plugin{
		modelType: t, model: reflect.New(t).Interface(), sink: sink, cfg: cfg, tel: tel,
		queue: make(chan []Change, cfg.queue), stopped: make(chan struct{}),
	}
	p.order = &order{p: p, pending: map[uint64][]Change{}, done: map[uint64]bool{}}
	go p.run()
	return p, nil
}

// Close stops taking changes, publishes those already queued and returns
// when the sink has seen them. Changes committed afterwards are dropped.
func (p *Plugin) Close() error {
	p.order.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.order.mu.Unlock()
	<-p.stopped
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

func (p *Plugin) afterCreate(db *gorm.DB) {
	c, ok := p.watched(db)
	if !ok || db.RowsAffected == 0 {
		return
	}
	// Upserts cannot be told apart from inserts here (Save of a slice,
	// OnConflict): they are not reported.
	if _, upsert := db.Statement.Clauses["ON CONFLICT"]; upsert {
		return
	}
	var cs []Change
	add := func(v reflect.Value) {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return
			}
			v = v.Elem()
		}
		if v.Type() != p.modelType {
			return
		}
		fv, zero := c.id.ValueOf(db.Statement.Context, v)
		id, ok := toInt64(fv)
		if zero || !ok {
			return
		}
		cp := reflect.New(p.modelType)
		cp.Elem().Set(v)
		cs = append(cs, Change{Op: OpNewLead, Table: db.Statement.Table, LeadID: id, Lead: cp.Interface()})
	}
	rv := db.Statement.ReflectValue
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			add(rv.Index(i))
		}
	default:
		add(rv)
	}
	p.emit(db, cs)
}

// Column aliases of the locked pre-image; prefixed so they cannot clash with
// the user's columns in SET or WHERE expressions.
const oldAlias = `"__ic_old"`

type updateState struct {
	c        *capture
	ctx      context.Context
	conn     gorm.ConnPool // Statement.ConnPool before bypassStmtCache
	armed    bool
	where    clause.Clause
	hadWhere bool
}

const stateKey = "interceptor:state"

// beforeUpdate arranges for the UPDATE to read the previous values of the
// rows it changes, locked, in the same statement:
//
//	UPDATE t SET ... FROM (SELECT id, status, ... FROM t WHERE <where> FOR UPDATE) AS __ic_old
//	WHERE (<where>) AND t.id = __ic_old.__ic_id RETURNING t.id, t.status, ..., __ic_old.__ic_status, ...
//
// A plain subquery would report stale values under concurrent writers. The
// FROM is written by a clause builder because only at build time is the
// WHERE final (GORM adds the primary key and soft-delete conditions inside
// gorm:update).
func (p *Plugin) beforeUpdate(db *gorm.DB) {
	c, ok := p.watched(db)
	stmt := db.Statement
	if !ok || stmt.SQL.Len() != 0 {
		return
	}
	if _, ok := stmt.Clauses["FROM"]; ok {
		return // the user's own FROM: not captured
	}
	if _, ok := stmt.Clauses["RETURNING"]; ok {
		return // GORM would scan the rows itself: not captured
	}
	st := &updateState{c: &capture{}, ctx: stmt.Context}
	stmt.Clauses["FROM"] = clause.Clause{Name: "FROM", Builder: func(_ clause.Clause, b clause.Builder) {
		p.buildFrom(stmt, c, st)
	}}
	stmt.Context = context.WithValue(stmt.Context, captureKey{}, st.c)
	bypassStmtCache(stmt, st)
	stmt.Settings.Store(stateKey, st)
}

// bypassStmtCache runs a captured statement on the pool or transaction
// underneath a PrepareStmt session: GORM's prepared-statement wrappers
// execute through *sql.Stmt and would skip the pool's capture.
func bypassStmtCache(stmt *gorm.Statement, st *updateState) {
	st.conn = stmt.ConnPool
	switch c := stmt.ConnPool.(type) {
	case *gorm.PreparedStmtTX:
		stmt.ConnPool = c.Tx
	case *gorm.PreparedStmtDB:
		stmt.ConnPool = c.ConnPool
	}
}

// restore undoes what the before callbacks changed on the statement.
func (st *updateState) restore(stmt *gorm.Statement) {
	stmt.Context = st.ctx
	stmt.ConnPool = st.conn
}

func (p *Plugin) buildFrom(stmt *gorm.Statement, c *columns, st *updateState) {
	where, hasWhere := stmt.Clauses["WHERE"]
	w, _ := where.Expression.(clause.Where)
	if !stmt.AllowGlobalUpdate {
		// Mirror checkMissingWhereConditions so that ErrMissingWhereClause
		// still fires: a capture condition must not make a global update look
		// conditional.
		withCondition := hasWhere
		if _, soft := stmt.Clauses["soft_delete_enabled"]; soft && hasWhere {
			withCondition = len(w.Exprs) > 1
		}
		if !withCondition {
			return
		}
	}
	fields := c.captured()
	tbl := stmt.Quote(stmt.Table)
	if stmt.Dialector.Name() == "sqlite" {
		buildSQLite(stmt, c, st, fields, w)
		st.where, st.hadWhere = where, hasWhere
		st.armed = true
		return
	}
	stmt.WriteString("FROM (SELECT ")
	for i, f := range fields {
		if i > 0 {
			stmt.WriteString(", ")
		}
		stmt.WriteString(tbl + "." + stmt.Quote(f.DBName) + " AS " + stmt.Quote(fmt.Sprintf("__ic_%d", i)))
	}
	stmt.WriteString(" FROM " + tbl)
	if len(w.Exprs) > 0 {
		stmt.WriteString(" WHERE ")
		clause.Where{Exprs: append([]clause.Expression(nil), w.Exprs...)}.Build(stmt)
	}
	stmt.WriteString(" FOR UPDATE) AS " + oldAlias)

	join := clause.Expr{SQL: tbl + "." + stmt.Quote(c.id.DBName) + " = " + oldAlias + `."__ic_0"`}
	exprs := []clause.Expression{join}
	if len(w.Exprs) > 0 {
		// Wrapped so that Or conditions keep their precedence.
		exprs = []clause.Expression{clause.AndConditions{Exprs: append([]clause.Expression(nil), w.Exprs...)}, join}
	}
	st.where, st.hadWhere = where, hasWhere
	stmt.Clauses["WHERE"] = clause.Clause{Name: "WHERE", Expression: clause.Where{Exprs: exprs}}

	var ret strings.Builder
	ret.WriteString(" RETURNING ")
	for _, f := range fields {
		ret.WriteString(tbl + "." + stmt.Quote(f.DBName) + ", ")
	}
	for i := range fields {
		if i > 0 {
			ret.WriteString(", ")
		}
		ret.WriteString(oldAlias + "." + stmt.Quote(fmt.Sprintf("__ic_%d", i)))
	}
	st.c.returning = ret.String()
	st.armed = true
}

// buildSQLite arranges the capture on SQLite, whose RETURNING cannot name
// the tables of an UPDATE ... FROM and which has no FOR UPDATE: the UPDATE
// itself is left as GORM built it (this builder writes no FROM) and returns
// the new values; the pool runs it after taking the database's write lock
// with a no-op write and then selecting the previous values with the same
// WHERE, all in one transaction. SQLite has one writer at a time, so no
// other transaction can change the rows between the SELECT and the UPDATE.
func buildSQLite(stmt *gorm.Statement, c *columns, st *updateState, fields []*schema.Field, w clause.Where) {
	tbl := stmt.Quote(stmt.Table)
	sub := &gorm.Statement{
		DB: stmt.DB, ConnPool: stmt.ConnPool, Context: stmt.Context,
		Table: stmt.Table, Schema: stmt.Schema, Clauses: map[string]clause.Clause{},
	}
	var ret strings.Builder
	ret.WriteString(" RETURNING ")
	sub.WriteString("SELECT ")
	for i, f := range fields {
		if i > 0 {
			sub.WriteString(", ")
			ret.WriteString(", ")
		}
		sub.WriteString(tbl + "." + stmt.Quote(f.DBName))
		ret.WriteString(tbl + "." + stmt.Quote(f.DBName))
	}
	sub.WriteString(" FROM " + tbl)
	if len(w.Exprs) > 0 {
		sub.WriteString(" WHERE ")
		clause.Where{Exprs: append([]clause.Expression(nil), w.Exprs...)}.Build(sub)
	}
	id := stmt.Quote(c.id.DBName)
	st.c.lock = "UPDATE " + tbl + " SET " + id + " = " + id + " WHERE 0"
	st.c.pre, st.c.preVars = sub.SQL.String(), sub.Vars
	st.c.returning = ret.String()
}

// captured lists id, status, score and enrichment, those present, in the
// order the capture returns them.
func (c *columns) captured() []*schema.Field {
	fs := []*schema.Field{c.id}
	if c.status != nil {
		fs = append(fs, c.status)
	}
	if c.score != nil {
		fs = append(fs, c.score)
	}
	return append(fs, c.enrich...)
}

func (p *Plugin) afterUpdate(db *gorm.DB) {
	stmt := db.Statement
	v, ok := stmt.Settings.LoadAndDelete(stateKey)
	if !ok {
		return
	}
	st := v.(*updateState)
	// Restore the statement as GORM left it, so a reused *gorm.DB builds the
	// same SQL as without the plugin.
	delete(stmt.Clauses, "FROM")
	if st.armed {
		if st.hadWhere {
			stmt.Clauses["WHERE"] = st.where
		} else {
			delete(stmt.Clauses, "WHERE")
		}
	}
	st.restore(stmt)
	if db.Error != nil || !st.c.ran {
		return
	}
	c, err := p.columns(stmt.Schema)
	if err != nil {
		return
	}
	n := len(c.captured())
	var cs []Change
	for _, row := range st.c.rows {
		if len(row) != 2*n {
			continue
		}
		id, ok := toInt64(row[0])
		if !ok {
			continue
		}
		cur, old := row[:n], row[n:]
		i := 1
		if c.status != nil {
			ns, os := toString(cur[i]), toString(old[i])
			if ns != os {
				cs = append(cs, Change{Op: OpStatusUpdate, Table: stmt.Table, LeadID: id, PreviousStatus: os, NewStatus: ns})
			}
			i++
		}
		if c.score != nil {
			nf, _ := toFloat64(cur[i])
			of, _ := toFloat64(old[i])
			if !sameValue(cur[i], old[i]) {
				cs = append(cs, Change{Op: OpScoreUpdate, Table: stmt.Table, LeadID: id, PreviousScore: of, NewScore: nf})
			}
			i++
		}
		for j := range c.enrich {
			if !sameValue(cur[i+j], old[i+j]) {
				enrich := make(map[string]any, len(c.enrich))
				for k, f := range c.enrich {
					enrich[f.DBName] = cur[i+k]
				}
				cs = append(cs, Change{Op: OpEnrichmentUpdate, Table: stmt.Table, LeadID: id, Enrichment: enrich})
				break
			}
		}
	}
	p.emit(db, cs)
}

func (p *Plugin) beforeDelete(db *gorm.DB) {
	c, ok := p.watched(db)
	stmt := db.Statement
	if !ok || stmt.SQL.Len() != 0 {
		return
	}
	if _, ok := stmt.Clauses["RETURNING"]; ok {
		return
	}
	st := &updateState{c: &capture{returning: " RETURNING " + stmt.Quote(stmt.Table) + "." + stmt.Quote(c.id.DBName)}, ctx: stmt.Context}
	stmt.Context = context.WithValue(stmt.Context, captureKey{}, st.c)
	bypassStmtCache(stmt, st)
	stmt.Settings.Store(stateKey, st)
}

func (p *Plugin) afterDelete(db *gorm.DB) {
	stmt := db.Statement
	v, ok := stmt.Settings.LoadAndDelete(stateKey)
	if !ok {
		return
	}
	st := v.(*updateState)
	st.restore(stmt)
	if db.Error != nil || !st.c.ran {
		return
	}
	_, soft := stmt.Clauses["soft_delete_enabled"]
	soft = soft && !stmt.Unscoped
	cs := make([]Change, 0, len(st.c.rows))
	for _, row := range st.c.rows {
		if id, ok := toInt64(row[0]); ok {
			cs = append(cs, Change{Op: OpLeadDeleted, Table: stmt.Table, LeadID: id, Soft: soft})
		}
	}
	p.emit(db, cs)
}

// emit buffers cs in the statement's transaction, or, when the statement
// ran outside one (autocommit), hands them on at once: they are committed.
func (p *Plugin) emit(db *gorm.DB, cs []Change) {
	if len(cs) == 0 {
		return
	}
	cp := db.Statement.ConnPool
	if ps, ok := cp.(*gorm.PreparedStmtTX); ok {
		cp = ps.Tx
	}
	if t, ok := cp.(*tx); ok {
		t.add(cs)
		return
	}
	if _, foreign := cp.(gorm.TxCommitter); foreign {
		// A transaction this plugin did not begin: its commit is invisible.
		p.tel.changes.WithLabelValues("unsafe").Add(float64(len(cs)))
		level.Warn(p.cfg.logger).Log("msg", "changes emitted before commit: transaction not begun through the plugin's pool", "changes", len(cs))
	}
	if err := p.order.finish(p.order.ticket(), cs); err != nil {
		db.AddError(err)
	}
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint:
		return int64(x), x <= math.MaxInt64
	case uint64:
		return int64(x), x <= math.MaxInt64
	case uint32:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint8:
		return int64(x), true
	case []byte:
		n, err := strconv.ParseInt(string(x), 10, 64)
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(rv.Uint()), rv.Uint() <= math.MaxInt64
	}
	return 0, false
}

func toFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case []byte:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case nil:
		return 0, true
	}
	if n, ok := toInt64(v); ok {
		return float64(n), true
	}
	return 0, false
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

func sameValue(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	if at, ok := a.(time.Time); ok {
		bt, ok := b.(time.Time)
		return ok && at.Equal(bt)
	}
	return reflect.DeepEqual(a, b)
}
