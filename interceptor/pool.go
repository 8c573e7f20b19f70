package interceptor

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// capture travels in Statement.Context from a callback to the pool: when
// returning is set, the pool runs the statement with that RETURNING suffix
// as a query and keeps the rows itself, so GORM never scans them into the
// caller's model.
type capture struct {
	returning string // " RETURNING ...", set when the statement may be captured
	// SQLite only (see buildSQLite): lock is a no-op write that takes the
	// write lock, pre selects the previous values with preVars.
	lock, pre string
	preVars   []any
	// upsert: the statement is an INSERT ... ON CONFLICT run as a query
	// (see beforeCreate); replay serves its rows back to GORM.
	upsert bool
	replay *sql.DB
	st     *updateState // the state this capture belongs to (update, delete, upsert)
	used   bool         // the pool consumed it; later statements on ctx are not captured
	ran    bool         // the statement ran through the pool with the suffix
	rows   [][]any
}

type captureKey struct{}

// pool wraps the ConnPool GORM was opened with. It implements
// gorm.ConnPoolBeginner (not TxBeginner, which must return *sql.Tx) so that
// every transaction GORM begins is a *tx that buffers changes until Commit.
// It does not implement gorm.TxCommitter: it is not a transaction.
type pool struct {
	gorm.ConnPool
	p *Plugin
	// conns, when set, is the *sql.DB underneath whose transactions run
	// on connections of their own (connTx): WithEventLog on PostgreSQL
	// through pgx.
	conns *sql.DB
}

var _ gorm.ConnPoolBeginner = (*pool)(nil)

func (c *pool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	if c.conns != nil {
		t, err := c.p.beginConn(ctx, c.conns, opts)
		if err != nil {
			return nil, err
		}
		return &tx{txConn: t, p: c.p, ctx: ctx}, nil
	}
	var inner txConn
	switch b := c.ConnPool.(type) {
	case gorm.TxBeginner:
		t, err := b.BeginTx(ctx, opts)
		if err != nil {
			return nil, err
		}
		inner = t
	case gorm.ConnPoolBeginner:
		t, err := b.BeginTx(ctx, opts)
		if err != nil {
			return nil, err
		}
		tc, ok := t.(txConn)
		if !ok {
			return nil, errors.New("interceptor: wrapped pool began a transaction without Commit/Rollback/StmtContext")
		}
		inner = tc
	default:
		return nil, gorm.ErrInvalidTransaction
	}
	return &tx{txConn: inner, p: c.p, ctx: ctx}, nil
}

// GetDBConn keeps db.DB() working.
func (c *pool) GetDBConn() (*sql.DB, error) {
	if g, ok := c.ConnPool.(gorm.GetDBConnector); ok {
		return g.GetDBConn()
	}
	if d, ok := c.ConnPool.(*sql.DB); ok {
		return d, nil
	}
	return nil, gorm.ErrInvalidDB
}

// Ping keeps gorm's pinging working.
func (c *pool) Ping() error {
	if p, ok := c.ConnPool.(interface{ Ping() error }); ok {
		return p.Ping()
	}
	return nil
}

// PrepareContext remembers the SQL of what it prepares: a transaction
// follows the savepoints among GORM's prepared statements (tx.StmtContext),
// and one on a connection of its own prepares them again (see
// connTx.StmtContext).
func (c *pool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	s, err := c.ConnPool.PrepareContext(ctx, query)
	if err == nil {
		c.p.queries.remember(s, query)
	}
	return s, err
}

func (c *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execCapture(ctx, c.ConnPool, query, args, false)
}

func (c *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryCapture(ctx, c.ConnPool, query, args)
}

type txConn interface {
	gorm.Tx
}

// tx is a transaction begun through pool. It must be a pointer type: GORM
// calls reflect.ValueOf(committer).IsNil() on it.
type tx struct {
	txConn
	p   *Plugin
	ctx context.Context // BeginTx's: the Sink's and the append's with WithEventLog

	mu    sync.Mutex
	buf   []Change
	marks []mark
	// unseen: a statement prepared outside the plugin ran through
	// StmtContext, whose SQL, and so whether it was a savepoint, is
	// unknown.
	unseen bool
}

// mark is a savepoint and how many changes were buffered when it was set.
type mark struct {
	name string
	n    int
}

var _ gorm.Tx = (*tx)(nil)

func (t *tx) add(cs []Change) {
	t.mu.Lock()
	if t.buf == nil {
		t.buf = cs // the first statement's changes: no copy (cs is the plugin's own)
	} else {
		t.buf = append(t.buf, cs...)
	}
	t.mu.Unlock()
}

// ExecContext also follows savepoints (see follow).
func (t *tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := execCapture(ctx, t.txConn, query, args, true)
	if err != nil || len(args) != 0 {
		return res, err
	}
	t.follow(query)
	return res, nil
}

// follow keeps the buffer in step with the savepoints, which
// gorm.io/driver/postgres sets and rolls back with plain Exec, and the
// application may run as its own SQL: ROLLBACK TO drops what came after
// the mark (the savepoint stays, as in PostgreSQL), RELEASE forgets the
// mark.
func (t *tx) follow(query string) {
	q := strings.TrimSpace(query)
	switch {
	case hasPrefixFold(q, "SAVEPOINT "):
		t.mu.Lock()
		t.marks = append(t.marks, mark{name: savepointName(q[len("SAVEPOINT "):]), n: len(t.buf)})
		t.mu.Unlock()
	case hasPrefixFold(q, "ROLLBACK TO SAVEPOINT "), hasPrefixFold(q, "ROLLBACK TO "):
		name := q[len("ROLLBACK TO "):]
		if hasPrefixFold(name, "SAVEPOINT ") {
			name = name[len("SAVEPOINT "):]
		}
		t.mu.Lock()
		if i := t.findMark(savepointName(name)); i >= 0 {
			t.buf = t.buf[:t.marks[i].n]
			t.marks = t.marks[:i+1]
		}
		t.mu.Unlock()
	case hasPrefixFold(q, "RELEASE "):
		name := q[len("RELEASE "):]
		if hasPrefixFold(name, "SAVEPOINT ") {
			name = name[len("SAVEPOINT "):]
		}
		t.mu.Lock()
		if i := t.findMark(savepointName(name)); i >= 0 {
			t.marks = t.marks[:i]
		}
		t.mu.Unlock()
	}
}

func (t *tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryCapture(ctx, t.txConn, query, args)
}

// PrepareContext remembers the SQL of what it prepares, for StmtContext.
func (t *tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	s, err := t.txConn.PrepareContext(ctx, query)
	if err == nil {
		t.p.queries.remember(s, query)
	}
	return s, err
}

// StmtContext is how a PrepareStmt session around the transaction runs
// its statements, savepoints among them. A statement's SQL is known when
// it was prepared through the plugin's pool or transaction; the
// savepoints of one that was not are not seen (see unseen). The statement
// runs right after: a savepoint is followed as if it succeeded (when it
// fails, so does the transaction).
func (t *tx) StmtContext(ctx context.Context, s *sql.Stmt) *sql.Stmt {
	if q, ok := t.p.queries.text(s); ok {
		t.follow(q)
	} else {
		t.mu.Lock()
		t.unseen = true
		t.mu.Unlock()
	}
	return t.txConn.StmtContext(ctx, s)
}

func (t *tx) findMark(name string) int {
	for i := len(t.marks) - 1; i >= 0; i-- {
		if t.marks[i].name == name {
			return i
		}
	}
	return -1
}

// Commit commits and then hands the buffer to the plugin, in commit order:
// the ticket is taken before COMMIT is sent, so a transaction that waited
// for another one's row lock is always emitted after it.
func (t *tx) Commit() error {
	t.mu.Lock()
	buf, unseen := t.buf, t.unseen
	t.buf, t.marks = nil, nil
	t.mu.Unlock()
	if len(buf) == 0 {
		return t.txConn.Commit()
	}
	if t.p.cfg.log != nil {
		return t.commitLogged(buf, unseen)
	}
	ticket := t.p.order.ticket()
	err := t.txConn.Commit()
	if err != nil {
		t.p.order.finish(ticket, nil) // an aborted transaction emits nothing
		return err
	}
	return t.p.order.finish(ticket, buf)
}

// Rollback drops the buffer.
func (t *tx) Rollback() error {
	t.mu.Lock()
	t.buf, t.marks = nil, nil
	t.mu.Unlock()
	return t.txConn.Rollback()
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func savepointName(s string) string {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";"))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return strings.ToLower(s)
}

// execCapture runs query on conn; when ctx carries an armed capture it runs
// the query with the RETURNING suffix instead and keeps the rows. inTx says
// whether conn is a transaction.
func execCapture(ctx context.Context, conn gorm.ConnPool, query string, args []any, inTx bool) (sql.Result, error) {
	c, _ := ctx.Value(captureKey{}).(*capture)
	if c == nil || c.used || c.returning == "" {
		return conn.ExecContext(ctx, query, args...)
	}
	c.used = true
	if c.pre != "" {
		return execLocked(ctx, conn, query, args, inTx, c)
	}
	rows, err := queryRows(ctx, conn, query+c.returning, args)
	if err != nil {
		return nil, err
	}
	c.rows, c.ran = rows, true
	return rowsAffected(len(rows)), nil
}

// queryRows runs query on conn and returns every row.
func queryRows(ctx context.Context, conn gorm.ConnPool, query string, args []any) ([][]any, error) {
	_, rows, err := queryColumns(ctx, conn, query, args)
	return rows, err
}

// queryColumns runs query on conn and returns its column names and every row.
func queryColumns(ctx context.Context, conn gorm.ConnPool, query string, args []any) ([]string, [][]any, error) {
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, nil, err
	}
	vals, err := scanAll(rows, len(cols))
	return cols, vals, err
}

// scanAll reads and closes rows of n columns.
func scanAll(rows *sql.Rows, n int) ([][]any, error) {
	defer rows.Close()
	var out [][]any
	ptrs := make([]any, n)
	for rows.Next() {
		vals := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

type rowsAffected int64

func (rowsAffected) LastInsertId() (int64, error) {
	return 0, errors.New("interceptor: LastInsertId is not supported")
}

func (r rowsAffected) RowsAffected() (int64, error) { return int64(r), nil }
