package interceptor

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"weak"

	"github.com/go-kit/log/level"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// connTx is a transaction on a connection of its own (sql.DB.Conn) begun
// with BEGIN, which the pool uses instead of a *sql.Tx under WithEventLog
// on PostgreSQL through pgx: the log can then append the transaction's
// events and COMMIT in one round trip (eventlog.Log.AppendCommit), which
// database/sql cannot do on a *sql.Tx. Like a *sql.Tx, it ends when its
// BeginTx ctx ends, and it never hands its connection back to the pool
// inside a transaction: pgx says without a round trip whether the
// connection is idle, and one that is not, or whose state is in doubt, is
// closed (PostgreSQL then rolls back).
type connTx struct {
	c    *sql.Conn
	p    *Plugin
	ctx  context.Context // BeginTx's
	stop func() bool     // cancels the abort on ctx's end

	// Statements hold mu shared; ending the transaction holds it
	// exclusively, so that no statement reaches the connection after the
	// transaction's COMMIT or ROLLBACK, where it would autocommit.
	mu   sync.RWMutex
	done bool

	smu   sync.Mutex
	stmts map[string]*sql.Stmt // prepared on c (PrepareStmt sessions), closed at the end
	err   error                // a statement StmtContext could not prepare: Commit fails with it
}

// beginConn begins a transaction on a connection of db, as
// (*stdlib.Conn).BeginTx maps opts.
func (p *Plugin) beginConn(ctx context.Context, db *sql.DB, opts *sql.TxOptions) (*connTx, error) {
	begin := "BEGIN"
	if opts != nil {
		switch opts.Isolation {
		case sql.LevelDefault:
		case sql.LevelReadUncommitted:
			begin += " ISOLATION LEVEL READ UNCOMMITTED"
		case sql.LevelReadCommitted:
			begin += " ISOLATION LEVEL READ COMMITTED"
		case sql.LevelRepeatableRead, sql.LevelSnapshot:
			begin += " ISOLATION LEVEL REPEATABLE READ"
		case sql.LevelSerializable:
			begin += " ISOLATION LEVEL SERIALIZABLE"
		default:
			return nil, fmt.Errorf("interceptor: isolation level %v is not supported by PostgreSQL", opts.Isolation)
		}
		if opts.ReadOnly {
			begin += " READ ONLY"
		}
	}
	// A connection that broke while idle in the pool fails before BEGIN is
	// sent (driver.ErrBadConn); database/sql's BeginTx retries on another
	// one, and so does this.
	var err error
	for range 3 {
		var c *sql.Conn
		if c, err = db.Conn(ctx); err != nil {
			return nil, err
		}
		if _, err = c.ExecContext(ctx, begin); err == nil {
			t := &connTx{c: c, p: p, ctx: ctx}
			t.stop = context.AfterFunc(ctx, t.abort)
			return t, nil
		}
		discard(c)
		if !errors.Is(err, driver.ErrBadConn) {
			break
		}
	}
	return nil, err
}

// abort ends the transaction when its ctx ends, as database/sql does for a
// *sql.Tx: the connection is closed, which rolls it back. It is closed
// after mu is released: closing waits for open rows, whose reader may be
// about to run a statement (which then fails without reaching it).
func (t *connTx) abort() {
	t.mu.Lock()
	done := t.done
	t.done = true
	t.mu.Unlock()
	if !done {
		discard(t.c)
	}
}

func (t *connTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.done {
		return nil, sql.ErrTxDone
	}
	return t.c.ExecContext(ctx, query, args...)
}

func (t *connTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.done {
		return nil, sql.ErrTxDone
	}
	return t.c.QueryContext(ctx, query, args...)
}

func (t *connTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.done {
		return t.p.failedStmt(sql.ErrTxDone).QueryRowContext(ctx)
	}
	return t.c.QueryRowContext(ctx, query, args...)
}

func (t *connTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.done {
		return nil, sql.ErrTxDone
	}
	return t.prepare(ctx, query)
}

// StmtContext returns s prepared on the transaction's connection, as
// (*sql.Tx).StmtContext does; GORM's PrepareStmt sessions call it with the
// statements they cache. It cannot return an error: a statement that
// cannot be prepared (the transaction failed, ctx ended) is logged, the
// returned statement fails every use, and Commit fails with the error.
func (t *connTx) StmtContext(ctx context.Context, s *sql.Stmt) *sql.Stmt {
	t.mu.RLock()
	defer t.mu.RUnlock()
	err := sql.ErrTxDone
	if !t.done {
		query, ok := t.p.queries.text(s)
		if !ok {
			err = errors.New("interceptor: a statement prepared outside the plugin's pool was used in its transaction")
		} else if ps, perr := t.prepare(ctx, query); perr == nil {
			return ps
		} else {
			err = perr
		}
	}
	t.smu.Lock()
	if t.err == nil {
		t.err = fmt.Errorf("interceptor: prepare in the transaction: %w", err)
	}
	t.smu.Unlock()
	level.Error(t.p.cfg.logger).Log("msg", "statement could not be prepared in the transaction; it fails, and so will Commit", "err", err)
	if errors.Is(err, sql.ErrTxDone) {
		return t.p.failedStmt(sql.ErrTxDone)
	}
	return t.p.failedStmt(errStmtFailed)
}

// prepare runs under mu (shared).
func (t *connTx) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	t.smu.Lock()
	defer t.smu.Unlock()
	if s := t.stmts[query]; s != nil {
		return s, nil
	}
	s, err := t.c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.p.queries.remember(s, query)
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = s
	return s, nil
}

// Commit sends COMMIT. A transaction that a failed statement aborted is
// rolled back and Commit says so, as pgx does for a *sql.Tx.
func (t *connTx) Commit() error {
	return t.end(func(ctx context.Context) error {
		if !t.idle(pgconnOpen) {
			return pgx.ErrTxCommitRollback
		}
		_, err := t.c.ExecContext(ctx, "COMMIT")
		return err
	})
}

// appendCommit appends b to l and commits, in one round trip.
func (t *connTx) appendCommit(ctx context.Context, l *eventlog.Log, b *eventlog.Batch) error {
	return t.end(func(context.Context) error {
		if !t.idle(pgconnOpen) {
			return pgx.ErrTxCommitRollback
		}
		return l.AppendCommit(ctx, t.c, b)
	})
}

// Rollback sends ROLLBACK.
func (t *connTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	t.stop()
	_, err := t.c.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
	t.release()
	return err
}

// end commits with commit and releases the connection; when commit fails
// the transaction is rolled back. Once ctx has ended it commits nothing
// and returns ctx's error, as (*sql.Tx).Commit does (also when abort
// came first, where a *sql.Tx may say ErrTxDone).
func (t *connTx) end(commit func(ctx context.Context) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		return sql.ErrTxDone
	}
	t.done = true
	t.stop()
	if err := t.ctx.Err(); err != nil {
		discard(t.c)
		return err
	}
	t.smu.Lock()
	err := t.err
	t.smu.Unlock()
	released := false
	defer func() {
		if !released { // commit panicked: the transaction's state is unknown
			discard(t.c)
		}
	}()
	if err == nil {
		err = commit(t.ctx)
	}
	if err != nil {
		// COMMIT may have ended the transaction already; ROLLBACK then
		// only warns. A connection it cannot bring back is closed.
		_, _ = t.c.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
	}
	released = true
	t.release()
	return err
}

// release closes the statements prepared on the connection and hands it
// back to the pool if it is idle, or closes it.
func (t *connTx) release() {
	for _, s := range t.stmts {
		_ = s.Close()
	}
	t.stmts = nil
	if err := t.c.Raw(func(dc any) error {
		if !idleConn(dc, 'I') {
			return driver.ErrBadConn
		}
		return nil
	}); err != nil {
		return // Raw closed the connection
	}
	_ = t.c.Close()
}

// pgconnOpen is the transaction status of a connection inside a
// transaction that can still commit ('E': a statement failed).
const pgconnOpen = 'T'

// idle reports whether the connection is free for a statement, in
// transaction status want.
func (t *connTx) idle(want byte) bool {
	ok := false
	_ = t.c.Raw(func(dc any) error {
		ok = idleConn(dc, want)
		return nil
	})
	return ok
}

func idleConn(dc any, want byte) bool {
	c, ok := dc.(*stdlib.Conn)
	if !ok {
		return false
	}
	pc := c.Conn().PgConn()
	return !pc.IsClosed() && !pc.IsBusy() && pc.TxStatus() == want
}

// discard closes c's connection instead of returning it to the pool.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}

// queries remembers the SQL of the statements prepared through the
// plugin's pool and its connTxs (GORM's PrepareStmt sessions cache them):
// a *sql.Stmt does not say its SQL, and a connTx must prepare it again on
// its own connection. An entry goes when its statement is collected.
type queries struct{ m sync.Map } // weak.Pointer[sql.Stmt] -> string

func (q *queries) remember(s *sql.Stmt, query string) {
	k := weak.Make(s)
	if _, loaded := q.m.LoadOrStore(k, query); !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[sql.Stmt]) { q.m.Delete(k) }, k)
	}
}

func (q *queries) text(s *sql.Stmt) (string, bool) {
	v, ok := q.m.Load(weak.Make(s))
	if !ok {
		return "", false
	}
	return v.(string), true
}

// errStmtFailed is the error of the statement StmtContext returns when it
// cannot prepare one.
var errStmtFailed = errors.New("interceptor: the statement could not be prepared in the transaction (see the plugin's log; Commit fails with the cause)")

// failedStmt returns a statement whose every use fails with err (one of
// sql.ErrTxDone and errStmtFailed): StmtContext and QueryRowContext cannot
// return an error. Both are prepared on a database of their own, opened
// when first needed, that Close closes (they then fail saying so).
func (p *Plugin) failedStmt(err error) *sql.Stmt {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	if p.failDB == nil {
		p.failDB = sql.OpenDB(failConnector{})
		p.failed = map[error]*sql.Stmt{}
		for _, e := range []error{sql.ErrTxDone, errStmtFailed} {
			p.failed[e], _ = p.failDB.Prepare(e.Error()) // failConn.Prepare cannot fail
		}
		p.order.mu.Lock()
		if p.closed {
			_ = p.failDB.Close()
		}
		p.order.mu.Unlock()
	}
	return p.failed[err]
}

type failConnector struct{}

func (failConnector) Connect(context.Context) (driver.Conn, error) { return failConn{}, nil }
func (failConnector) Driver() driver.Driver                        { return failDriver{} }

type failDriver struct{}

func (failDriver) Open(string) (driver.Conn, error) { return failConn{}, nil }

type failConn struct{}

func (failConn) Prepare(query string) (driver.Stmt, error) {
	if query == sql.ErrTxDone.Error() {
		return failStmt{sql.ErrTxDone}, nil
	}
	return failStmt{errStmtFailed}, nil
}
func (failConn) Close() error              { return nil }
func (failConn) Begin() (driver.Tx, error) { return nil, errStmtFailed }

type failStmt struct{ err error }

func (failStmt) Close() error                                 { return nil }
func (failStmt) NumInput() int                                { return -1 }
func (s failStmt) Exec([]driver.Value) (driver.Result, error) { return nil, s.err }
func (s failStmt) Query([]driver.Value) (driver.Rows, error)  { return nil, s.err }
