package interceptor

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

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
