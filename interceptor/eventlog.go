package interceptor

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-kit/log/level"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// WithEventLog makes the plugin the writer of l, a durable event log, so
// that a change's events exist if and only if the change commits. By
// default there is no log and committed changes reach the Sink after
// COMMIT, from the plugin's goroutine.
//
// At the commit of a transaction that changed leads, the plugin calls the
// Sink synchronously, in the committing goroutine and before COMMIT, with
// a ctx (the transaction's, from BeginTx) carrying a new eventlog.Batch
// (eventlog.FromContext); a *notify.Notifier WithLog called with that ctx
// adds its events to the batch. The plugin then appends the batch to l in
// the same transaction, commits, and calls l.Committed. If the Sink fails
// or panics, or the append fails, the transaction is rolled back and
// Commit returns an error saying which: the write fails, and nothing is
// logged. The Sink of concurrent transactions may run concurrently; the
// log orders their events.
//
// The batch also says whose rows the transaction inserted, updated or
// deleted (eventlog.Batch.Wrote, by Change.Table and the Fields.ID
// column's values, only for changes that survived ROLLBACK TO SAVEPOINT):
// the transaction holds their row locks, which order their events, so with
// eventlog.WithLeadTable naming the watched table and that column (by
// default its primary key) the log takes no lock of its own for them.
//
// On PostgreSQL through pgx (gorm.io/driver/postgres), a transaction begun
// through the plugin's pool runs on a connection of its own, begun with
// BEGIN, so that the append and the COMMIT take one round trip
// (eventlog.Log.AppendCommit) where a *sql.Tx needs two. It behaves as a
// *sql.Tx does: its isolation level and READ ONLY are honoured (a level
// PostgreSQL lacks fails Begin), it is rolled back and its connection
// closed when its ctx ends, and a connection goes back to the pool only
// outside a transaction. Opened with PrepareStmt, and on other databases
// or drivers, transactions stay *sql.Tx (append, then COMMIT). A
// PrepareStmt session around a transaction prepares its statements again
// on the connection, as a *sql.Tx does on a new connection. A transaction
// that ran a statement prepared outside the plugin's pool (which might be
// a savepoint it cannot see) does not tell the log what it wrote.
//
// A write of the watched model outside a transaction begun through the
// plugin's pool — GORM's SkipDefaultTransaction without db.Transaction, or
// a transaction begun on another pool — is refused before it runs, with an
// error wrapping ErrNoTransaction: its change could not be logged in the
// same transaction. Run it in db.Transaction. (GORM's default transaction
// wraps every create, update and delete, so this only concerns
// SkipDefaultTransaction.)
//
// The plugin then starts no goroutine and has no queue; WithStrict and
// WithQueue do not apply.
func WithEventLog(l *eventlog.Log) Option { return func(c *config) { c.log = l } }

// ErrNoTransaction is wrapped by the error of a write refused under
// WithEventLog because it did not run in a transaction begun through the
// plugin's pool.
var ErrNoTransaction = errors.New("interceptor: a write outside a transaction cannot be logged with its change")

// refuseOutsideTx fails a watched write that cannot be logged atomically
// (WithEventLog, no transaction of the plugin), before it runs: GORM's
// create, update and delete callbacks skip a statement that has an error.
func (p *Plugin) refuseOutsideTx(db *gorm.DB) bool {
	if p.cfg.log == nil || txOf(db.Statement.ConnPool) != nil {
		return false
	}
	db.AddError(fmt.Errorf("%w: writing %s (use db.Transaction)", ErrNoTransaction, db.Statement.Table))
	return true
}

// txOf returns the plugin's transaction behind cp, or nil.
func txOf(cp gorm.ConnPool) *tx {
	if ps, ok := cp.(*gorm.PreparedStmtTX); ok {
		cp = ps.Tx
	}
	t, _ := cp.(*tx)
	return t
}

// commitLogged is Commit with WithEventLog: the Sink fills a batch, the
// batch is appended in the transaction, then COMMIT — in one round trip on
// a connTx. unseen: savepoints may have escaped the buffer (tx.unseen).
func (t *tx) commitLogged(buf []Change, unseen bool) error {
	p := t.p
	b := eventlog.NewBatch()
	if !unseen {
		wrote(b, buf)
	}
	ctx := eventlog.NewContext(t.ctx, b)
	if err := p.sinkLogged(ctx, buf); err != nil {
		p.tel.changes.WithLabelValues("failed").Add(float64(len(buf)))
		return t.rollbackFor(err)
	}
	if c, ok := t.txConn.(*connTx); ok {
		if err := c.appendCommit(ctx, p.cfg.log, b); err != nil {
			// appendCommit rolled back (or closed the connection, which
			// rolls back).
			p.tel.changes.WithLabelValues("failed").Add(float64(len(buf)))
			err = fmt.Errorf("interceptor: append %d events and commit: %w; transaction rolled back", b.Len(), err)
			level.Error(p.cfg.logger).Log("msg", "transaction rolled back: its changes could not be logged", "err", err)
			return err
		}
		p.tel.changes.WithLabelValues("published").Add(float64(len(buf)))
		return nil
	}
	if err := p.cfg.log.AppendBatch(ctx, t.txConn, b); err != nil {
		p.tel.changes.WithLabelValues("failed").Add(float64(len(buf)))
		return t.rollbackFor(fmt.Errorf("interceptor: append %d events: %w", b.Len(), err))
	}
	if err := t.txConn.Commit(); err != nil {
		return err
	}
	p.cfg.log.Committed()
	p.tel.changes.WithLabelValues("published").Add(float64(len(buf)))
	return nil
}

// wrote tells b whose rows the transaction inserted, updated or deleted:
// it holds their row locks until it ends, which order those leads' events
// without the log's own lock (eventlog.Batch.Wrote). Each change's lead id
// was read from the row written (RETURNING, or the created row), and buf
// holds only the changes that survived ROLLBACK TO SAVEPOINT, which
// releases the row locks taken after the savepoint.
func wrote(b *eventlog.Batch, buf []Change) {
	ids := make([]int64, 0, len(buf))
	table := buf[0].Table
	for _, c := range buf {
		if c.Table != table {
			b.Wrote(table, ids...)
			table, ids = c.Table, nil // Wrote may keep what it is given
		}
		if n := len(ids); c.LeadID > 0 && (n == 0 || ids[n-1] != c.LeadID) { // one row's changes are adjacent
			ids = append(ids, c.LeadID)
		}
	}
	b.Wrote(table, ids...)
}

// sinkLogged calls the Sink before COMMIT. A panic is an error like any
// other: the transaction has not committed, so failing it keeps the log
// and the data alike.
func (p *Plugin) sinkLogged(ctx context.Context, batch []Change) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("interceptor: sink panicked: %v", v)
		}
	}()
	if err := p.sink.Publish(ctx, batch); err != nil {
		return fmt.Errorf("interceptor: sink: %w", err)
	}
	return nil
}

// rollbackFor rolls the transaction back because of cause and returns the
// error Commit reports.
func (t *tx) rollbackFor(cause error) error {
	level.Error(t.p.cfg.logger).Log("msg", "transaction rolled back: its changes could not be logged", "err", cause)
	if err := t.txConn.Rollback(); err != nil {
		return fmt.Errorf("%w; transaction rolled back (rollback: %v)", cause, err)
	}
	return fmt.Errorf("%w; transaction rolled back", cause)
}
