package interceptor

import (
	"context"
	"database/sql"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// buildSQLite arranges the capture on SQLite, whose RETURNING cannot name
// the tables of an UPDATE ... FROM and which has no FOR UPDATE: the UPDATE
// itself is left as GORM built it (this builder writes no FROM) and returns
// the new values; the pool runs it after taking the database's write lock
// with a no-op write and then selecting the previous values with the same
// WHERE, all in one transaction. SQLite has one writer at a time, so no
// other transaction can change the rows between the SELECT and the UPDATE.
func buildSQLite(stmt *gorm.Statement, st *updateState, pl *updatePlan, w clause.Where) {
	sub := &gorm.Statement{
		DB: stmt.DB, ConnPool: stmt.ConnPool, Context: stmt.Context,
		Table: stmt.Table, Schema: stmt.Schema, Clauses: map[string]clause.Clause{},
	}
	sub.WriteString(pl.selectCols)
	if len(w.Exprs) > 0 {
		sub.WriteString(" WHERE ")
		clause.Where{Exprs: append([]clause.Expression(nil), w.Exprs...)}.Build(sub)
	}
	st.c.lock = pl.lock
	st.c.pre, st.c.preVars = sub.SQL.String(), sub.Vars
	st.c.returning = pl.returning
}

// execLocked runs a SQLite capture (see buildSQLite) in a transaction:
// conn's own, or one begun here for an autocommitted statement.
func execLocked(ctx context.Context, conn gorm.ConnPool, query string, args []any, inTx bool, c *capture) (sql.Result, error) {
	if !inTx {
		var t gorm.ConnPool
		var err error
		switch b := conn.(type) {
		case gorm.TxBeginner:
			t, err = b.BeginTx(ctx, nil)
		case gorm.ConnPoolBeginner:
			t, err = b.BeginTx(ctx, nil)
		}
		if err != nil {
			return nil, err
		}
		// A pool that cannot begin a transaction (none known) runs the
		// three statements unlocked below: the write still happens.
		if tc, ok := t.(gorm.TxCommitter); ok {
			res, err := runLocked(ctx, t, query, args, c)
			if err != nil {
				_ = tc.Rollback()
				c.ran = false
				return nil, err
			}
			if err := tc.Commit(); err != nil {
				c.ran = false
				return nil, err
			}
			return res, nil
		}
	}
	return runLocked(ctx, conn, query, args, c)
}

func runLocked(ctx context.Context, conn gorm.ConnPool, query string, args []any, c *capture) (sql.Result, error) {
	if _, err := conn.ExecContext(ctx, c.lock); err != nil {
		return nil, err
	}
	old, err := queryRows(ctx, conn, c.pre, c.preVars)
	if err != nil {
		return nil, err
	}
	cur, err := queryRows(ctx, conn, query+c.returning, args)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64][]any, len(old))
	for _, r := range old {
		if id, ok := toInt64(r[0]); ok {
			byID[id] = r
		}
	}
	c.rows = c.rows[:0]
	for _, r := range cur {
		id, ok := toInt64(r[0])
		if o, found := byID[id]; ok && found {
			c.rows = append(c.rows, append(r, o[1:]...)) // as on PostgreSQL: the old id is left out
		}
	}
	c.ran = true
	return rowsAffected(len(cur)), nil
}
