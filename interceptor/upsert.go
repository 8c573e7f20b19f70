package interceptor

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// insertedCol is the column the PostgreSQL upsert capture appends to
// GORM's RETURNING: true for a row the statement inserted.
const insertedCol = "__ic_inserted"

const upsertKey = "interceptor:upsert"

// upsertState is what beforeCreate changed on an upsert statement.
type upsertState struct {
	updateState
	gormCols []clause.Column // the RETURNING GORM would have added itself
	idCol    int             // index of the id among the returned columns
}

// beforeCreate arms the capture of a PostgreSQL upsert (a create with ON
// CONFLICT): it writes GORM's own RETURNING (the columns with database
// defaults), plus the id, plus (xmax = 0), which is true for a row the
// statement inserted and false for one it updated. The pool reads the rows,
// keeps the flags and hands GORM the rows without the extra column.
func (p *Plugin) beforeCreate(db *gorm.DB) {
	c, ok := p.watched(db)
	stmt := db.Statement
	if !ok || stmt.SQL.Len() != 0 {
		return
	}
	if p.refuseOutsideTx(db) {
		return
	}
	if _, ok := stmt.Clauses["ON CONFLICT"]; !ok {
		beforeCreateMaps(stmt)
		return
	}
	if stmt.Dialector.Name() != "postgres" {
		return
	}
	if _, ok := stmt.Clauses["RETURNING"]; ok {
		return // GORM scans the caller's RETURNING: not captured
	}
	st := &upsertState{idCol: -1}
	st.cp.upsert = true
	for _, f := range stmt.Schema.FieldsWithDefaultDBValue {
		if f.Readable {
			st.gormCols = append(st.gormCols, clause.Column{Name: f.DBName})
		}
	}
	cols := append([]clause.Column(nil), st.gormCols...)
	for i, col := range cols {
		if col.Name == c.id.DBName {
			st.idCol = i
		}
	}
	if st.idCol < 0 {
		st.idCol = len(cols)
		cols = append(cols, clause.Column{Name: c.id.DBName})
	}
	tbl := stmt.Quote(stmt.Table)
	stmt.Clauses["RETURNING"] = clause.Clause{Name: "RETURNING", Expression: clause.Returning{Columns: cols},
		Builder: func(_ clause.Clause, b clause.Builder) {
			b.WriteString("RETURNING ")
			for _, col := range cols {
				b.WriteQuoted(col)
				b.WriteString(", ")
			}
			b.WriteString("(" + tbl + ".xmax = 0) AS " + stmt.Quote(insertedCol))
		}}
	st.attach(stmt)
	stmt.Settings.Store(upsertKey, st)
}

// afterUpsert restores the statement and emits NEW_LEAD for the rows the
// upsert inserted; it reports whether the statement was an armed upsert.
func (p *Plugin) afterUpsert(db *gorm.DB) bool {
	stmt := db.Statement
	v, ok := stmt.Settings.LoadAndDelete(upsertKey)
	if !ok {
		return false
	}
	st := v.(*upsertState)
	st.restore(stmt)
	if st.c.replay != nil {
		_ = st.c.replay.Close()
	}
	if len(st.gormCols) > 0 {
		stmt.Clauses["RETURNING"] = clause.Clause{Name: "RETURNING", Expression: clause.Returning{Columns: st.gormCols}}
	} else {
		delete(stmt.Clauses, "RETURNING")
	}
	c, err := p.columns(stmt.Schema)
	if db.Error != nil || !st.c.ran || err != nil {
		return true
	}
	// The rows GORM scanned the ids into, by id.
	byID := map[int64]reflect.Value{}
	p.eachRow(stmt, c, func(v reflect.Value, id int64) { byID[id] = v })
	var cs []Change
	for _, row := range st.c.rows {
		if len(row) <= st.idCol+1 {
			continue
		}
		if ins, _ := row[len(row)-1].(bool); !ins {
			continue // updated: the previous values are unknown, see doc.go
		}
		id, ok := toInt64(row[st.idCol])
		if !ok {
			continue
		}
		ch := Change{Op: OpNewLead, Table: stmt.Table, LeadID: id}
		if v, ok := byID[id]; ok {
			ch.Lead = p.copyRow(v)
		} else if maps, _ := createdMaps(stmt.Dest); len(maps) == 1 && maps[0] != nil {
			// One map, one row; with several, skipped rows make the
			// rows and the maps impossible to pair: Lead is nil.
			ch.Lead = p.fromMap(stmt, c, maps[0], id)
		}
		cs = append(cs, ch)
	}
	p.emit(db, cs)
	return true
}

// queryCapture runs query on conn; when ctx carries an armed upsert capture
// it keeps the rows, whose last column is the inserted flag, and returns
// them to GORM without that column, replayed through c.replay.
func queryCapture(ctx context.Context, conn gorm.ConnPool, query string, args []any) (*sql.Rows, error) {
	c, _ := ctx.Value(captureKey{}).(*capture)
	if c == nil || c.used || !c.upsert {
		return conn.QueryContext(ctx, query, args...)
	}
	c.used = true
	cols, vals, err := queryColumns(ctx, conn, query, args)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 || cols[len(cols)-1] != insertedCol {
		return nil, errors.New("interceptor: upsert capture lost its RETURNING column")
	}
	c.rows, c.ran = vals, true
	c.replay = sql.OpenDB(replayConnector{})
	return c.replay.QueryContext(context.WithValue(context.Background(), replayKey{}, &replayRows{cols: cols[:len(cols)-1], rows: vals, drop: 1}), "replay")
}

// A replay connector serves, once, the rows in its query's context: it
// turns rows the plugin already read back into a *sql.Rows for GORM.
type replayConnector struct{}

type replayKey struct{}

func (replayConnector) Connect(context.Context) (driver.Conn, error) { return replayConn{}, nil }
func (replayConnector) Driver() driver.Driver                        { return replayDriver{} }

type replayDriver struct{}

func (replayDriver) Open(string) (driver.Conn, error) { return replayConn{}, nil }

type replayConn struct{}

func (replayConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("interceptor: replay: prepare not supported")
}
func (replayConn) Close() error { return nil }
func (replayConn) Begin() (driver.Tx, error) {
	return nil, errors.New("interceptor: replay: begin not supported")
}

func (replayConn) QueryContext(ctx context.Context, _ string, _ []driver.NamedValue) (driver.Rows, error) {
	r, ok := ctx.Value(replayKey{}).(*replayRows)
	if !ok {
		return nil, errors.New("interceptor: replay: no rows")
	}
	return r, nil
}

type replayRows struct {
	cols []string
	rows [][]any
	drop int
	i    int
}

func (r *replayRows) Columns() []string { return r.cols }
func (r *replayRows) Close() error      { return nil }
func (r *replayRows) Next(dest []driver.Value) error {
	if r.i >= len(r.rows) {
		return io.EOF
	}
	row := r.rows[r.i]
	r.i++
	for i := range dest {
		dest[i] = row[i]
	}
	return nil
}
