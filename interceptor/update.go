package interceptor

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// Column aliases of the locked pre-image; prefixed so they cannot clash with
// the user's columns in SET or WHERE expressions.
const oldAlias = `"__ic_old"`

// updateState is what a before callback changed on a statement (update,
// delete, upsert) and the capture it armed. It travels in Statement.Context
// through its capture, so that the after callback finds it without a
// Settings entry.
type updateState struct {
	cp       capture
	c        *capture // &cp
	stmt     *gorm.Statement
	ctx      context.Context
	conn     gorm.ConnPool // Statement.ConnPool before bypassStmtCache
	plan     *updatePlan
	armed    bool
	where    clause.Clause
	hadWhere bool
}

// attach puts st's capture into stmt's context and makes the statement
// bypass the prepared-statement cache.
func (st *updateState) attach(stmt *gorm.Statement) {
	st.c, st.cp.st, st.stmt, st.ctx = &st.cp, st, stmt, stmt.Context
	stmt.Context = context.WithValue(stmt.Context, captureKey{}, st.c)
	bypassStmtCache(stmt, st)
}

// stateOf returns the state a before callback attached to stmt, or nil.
func stateOf(stmt *gorm.Statement) *updateState {
	c, _ := stmt.Context.Value(captureKey{}).(*capture)
	if c == nil || c.st == nil || c.st.stmt != stmt {
		return nil
	}
	return c.st
}

// updatePlan is the capture of one shape of update: the fields read (the
// id, then those of status, score and enrichment the statement assigns) and
// the SQL text that does not depend on the WHERE. Plans are cached per
// schema, table and shape.
type updatePlan struct {
	fields        []*schema.Field
	audience      int // index in fields, -1 when not read
	status, score int // index in fields, -1 when not read
	enrich        int // index of the first enrichment field, -1 when not read

	// PostgreSQL
	selectList string // `t.id AS "__ic_0", ...`
	join       string // `t.id = "__ic_old"."__ic_0"`
	// both: the suffix the pool appends. PostgreSQL returns the new values
	// of every field and the old values of all but the id (the join makes
	// them equal); SQLite the new values.
	returning string
	// SQLite
	lock, selectCols string
}

// What an update assigns, as a plan's shape.
const (
	setStatus = 1 << iota
	setScore
	setEnrich
	setAll = setStatus | setScore | setEnrich
)

// planCache holds the plans of one table by shape.
type planCache [setAll + 1]atomic.Pointer[updatePlan]

// assigned returns the shape of the statement's SET: which of status, score
// and enrichment it assigns. A SET that is not a clause.Set counts as all.
func (c *columns) assigned(stmt *gorm.Statement) int {
	set, ok := stmt.Clauses["SET"].Expression.(clause.Set)
	if !ok {
		return setAll
	}
	shape := 0
	for _, a := range set {
		name := a.Column.Name
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:] // "leads.status"
		}
		name = strings.Trim(name, "`\"")
		switch {
		case c.status != nil && name == c.status.DBName:
			shape |= setStatus
		case c.score != nil && name == c.score.DBName:
			shape |= setScore
		case shape&setEnrich == 0:
			for _, f := range c.enrich {
				if name == f.DBName {
					shape |= setEnrich
					break
				}
			}
		}
	}
	return shape
}

// plan returns the cached plan of the shape for stmt's table.
func (p *Plugin) plan(stmt *gorm.Statement, c *columns, shape int) *updatePlan {
	cache := &c.plans
	if stmt.Table != stmt.Schema.Table {
		v, _ := c.otherPlans.LoadOrStore(stmt.Table, &planCache{})
		cache = v.(*planCache)
	}
	if pl := cache[shape].Load(); pl != nil {
		return pl
	}
	pl := newPlan(stmt, c, shape)
	cache[shape].Store(pl)
	return pl
}

func newPlan(stmt *gorm.Statement, c *columns, shape int) *updatePlan {
	pl := &updatePlan{fields: []*schema.Field{c.id}, audience: -1, status: -1, score: -1, enrich: -1}
	if c.audience != nil {
		pl.audience = len(pl.fields)
		pl.fields = append(pl.fields, c.audience)
	}
	if c.status != nil && shape&setStatus != 0 {
		pl.status = len(pl.fields)
		pl.fields = append(pl.fields, c.status)
	}
	if c.score != nil && shape&setScore != 0 {
		pl.score = len(pl.fields)
		pl.fields = append(pl.fields, c.score)
	}
	if len(c.enrich) > 0 && shape&setEnrich != 0 {
		pl.enrich = len(pl.fields)
		pl.fields = append(pl.fields, c.enrich...)
	}
	tbl := stmt.Quote(stmt.Table)
	col := func(f *schema.Field) string { return tbl + "." + stmt.Quote(f.DBName) }
	alias := func(i int) string { return stmt.Quote("__ic_" + strconv.Itoa(i)) }
	var sel, ret, cols strings.Builder
	ret.WriteString(" RETURNING ")
	for i, f := range pl.fields {
		if i > 0 {
			sel.WriteString(", ")
			ret.WriteString(", ")
			cols.WriteString(", ")
		}
		sel.WriteString(col(f) + " AS " + alias(i))
		ret.WriteString(col(f))
		cols.WriteString(col(f))
	}
	if stmt.Dialector.Name() == "sqlite" {
		pl.selectCols = "SELECT " + cols.String() + " FROM " + tbl
		id := stmt.Quote(c.id.DBName)
		pl.lock = "UPDATE " + tbl + " SET " + id + " = " + id + " WHERE 0"
		pl.returning = ret.String()
		return pl
	}
	for i := 1; i < len(pl.fields); i++ {
		ret.WriteString(", " + oldAlias + "." + alias(i))
	}
	pl.selectList = "FROM (SELECT " + sel.String() + " FROM " + tbl
	pl.join = col(c.id) + " = " + oldAlias + "." + alias(0)
	pl.returning = ret.String()
	return pl
}

// beforeUpdate arranges for the UPDATE to read the previous values of the
// rows it changes, locked, in the same statement:
//
//	UPDATE t SET ... FROM (SELECT id, status, ... FROM t WHERE <where> FOR NO KEY UPDATE) AS __ic_old
//	WHERE (<where>) AND t.id = __ic_old.__ic_0 RETURNING t.id, t.status, ..., __ic_old.__ic_1, ...
//
// A plain subquery would report stale values under concurrent writers. The
// FROM is written by a clause builder because only at build time are the
// SET and the WHERE final (GORM adds the assignments, the primary key and
// soft-delete conditions inside gorm:update). Only the status, score and
// enrichment columns the SET assigns are read; an update assigning none of
// them is not captured at all.
func (p *Plugin) beforeUpdate(db *gorm.DB) {
	c, ok := p.watched(db)
	stmt := db.Statement
	if !ok || stmt.SQL.Len() != 0 {
		return
	}
	if p.refuseOutsideTx(db) {
		return
	}
	if _, ok := stmt.Clauses["FROM"]; ok {
		return // the user's own FROM: not captured
	}
	if _, ok := stmt.Clauses["RETURNING"]; ok {
		return // GORM would scan the rows itself: not captured
	}
	st := &updateState{}
	stmt.Clauses["FROM"] = clause.Clause{Name: "FROM", Builder: func(_ clause.Clause, b clause.Builder) {
		p.buildFrom(stmt, c, st)
	}}
	st.attach(stmt)
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
	shape := c.assigned(stmt)
	if shape == 0 {
		return // nothing to report can change: not captured
	}
	pl := p.plan(stmt, c, shape)
	st.plan = pl
	if stmt.Dialector.Name() == "sqlite" {
		buildSQLite(stmt, st, pl, w)
		st.where, st.hadWhere = where, hasWhere
		st.armed = true
		return
	}
	stmt.WriteString(pl.selectList)
	if len(w.Exprs) > 0 {
		stmt.WriteString(" WHERE ")
		clause.Where{Exprs: append([]clause.Expression(nil), w.Exprs...)}.Build(stmt)
	}
	stmt.WriteString(" FOR NO KEY UPDATE) AS " + oldAlias)

	join := clause.Expr{SQL: pl.join}
	exprs := []clause.Expression{join}
	if len(w.Exprs) > 0 {
		// Wrapped so that Or conditions keep their precedence.
		exprs = []clause.Expression{clause.AndConditions{Exprs: append([]clause.Expression(nil), w.Exprs...)}, join}
	}
	st.where, st.hadWhere = where, hasWhere
	stmt.Clauses["WHERE"] = clause.Clause{Name: "WHERE", Expression: clause.Where{Exprs: exprs}}
	st.c.returning = pl.returning
	st.armed = true
}

func (p *Plugin) afterUpdate(db *gorm.DB) {
	stmt := db.Statement
	st := stateOf(stmt)
	if st == nil {
		return
	}
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
	if db.Error != nil || !st.c.ran || st.plan == nil {
		return
	}
	pl := st.plan
	n := len(pl.fields)
	var cs []Change
	for _, row := range st.c.rows {
		if len(row) != 2*n-1 {
			continue
		}
		id, ok := toInt64(row[0])
		if !ok {
			continue
		}
		// old[i] is the previous value of fields[i], i >= 1.
		cur, old := row[:n], row[n-1:]
		audience := ""
		if i := pl.audience; i >= 0 {
			audience = toString(cur[i])
		}
		if i := pl.status; i >= 0 {
			ns, os := toString(cur[i]), toString(old[i])
			if ns != os {
				cs = append(cs, Change{Op: OpStatusUpdate, Table: stmt.Table, LeadID: id, PreviousStatus: os, NewStatus: ns, Audience: audience})
			}
		}
		if i := pl.score; i >= 0 && !sameValue(cur[i], old[i]) {
			nf, _ := toFloat64(cur[i])
			of, _ := toFloat64(old[i])
			cs = append(cs, Change{Op: OpScoreUpdate, Table: stmt.Table, LeadID: id, PreviousScore: of, NewScore: nf, Audience: audience})
		}
		if e := pl.enrich; e >= 0 {
			for j := e; j < n; j++ {
				if !sameValue(cur[j], old[j]) {
					enrich := make(map[string]any, n-e)
					for k, f := range pl.fields[e:] {
						enrich[f.DBName] = cur[e+k]
					}
					cs = append(cs, Change{Op: OpEnrichmentUpdate, Table: stmt.Table, LeadID: id, Enrichment: enrich, Audience: audience})
					break
				}
			}
		}
	}
	p.emit(db, cs)
}
