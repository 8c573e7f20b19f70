// Package interceptor is a GORM plugin that turns committed writes of a lead
// model into [Change]s: new leads, status, score and enrichment updates with
// the exact previous and new values, and deletions — only after the
// surrounding transaction commits, never for a rolled-back one.
//
// A first program, with a *notify.Notifier n behind a small adapter:
//
//	sink := interceptor.SinkFunc(func(ctx context.Context, cs []interceptor.Change) error {
//		for _, c := range cs {
//			switch c.Op {
//			case interceptor.OpNewLead:
//				n.NotifyNewLead(ctx, c.LeadID, c.Lead, "db")
//			case interceptor.OpStatusUpdate:
//				n.NotifyLeadStatusUpdate(ctx, c.LeadID, c.PreviousStatus, c.NewStatus)
//			case interceptor.OpLeadDeleted:
//				n.NotifyLeadDeleted(ctx, c.LeadID)
//			}
//		}
//		return nil
//	})
//	p, err := interceptor.New(&Lead{}, sink, interceptor.WithLogger(logger))
//	if err != nil { ... }
//	defer p.Close()
//	if err := db.Use(p); err != nil { ... }
//
// # Transactions
//
// GORM runs after-callbacks before COMMIT inside db.Transaction and Begin
// (go-gorm/gorm#7367), so Initialize wraps db's connection pool: every
// transaction GORM begins through it buffers its changes, hands them on only
// after Commit succeeds, drops them on Rollback or a failed Commit (a
// transaction aborted by a failed statement), and truncates them on ROLLBACK
// TO SAVEPOINT (nested db.Transaction, SavePoint/RollbackTo). A statement
// outside a transaction (SkipDefaultTransaction) is committed when it
// returns, and its changes are handed on at once. A transaction's changes
// reach the Sink as one batch in statement order; batches arrive in commit
// order. PrepareStmt sessions are supported; captured updates and deletes
// bypass the prepared-statement cache.
//
// # Creates
//
// Creates of structs (one, a slice, CreateInBatches, FirstOrCreate, Save of
// a new row) emit NEW_LEAD per row with a pointer to a copy of the row.
// Creates from maps, db.Model(&Lead{}).Create(m) with a map[string]any,
// *map[string]any or *[]map[string]any, emit NEW_LEAD per created row with
// the id the database returned (RETURNING, or LastInsertId where GORM uses
// it); Change.Lead is then a new *Lead (the watched model) holding the
// map's values for the keys that name a field (by column or Go name) and
// that the statement wrote (Select and Omit apply), plus the id. Values GORM
// writes as SQL (gorm.Expr, clause.Expr) and columns the database fills by
// its own defaults are zero in it: a map create writes only its keys. GORM
// 1.31 cannot create from a non-pointer []map[string]any on PostgreSQL or
// SQLite (it fails scanning the returned ids and the implicit transaction
// rolls back, so nothing is emitted); pass a *[]map[string]any.
//
// # Previous values
//
// Updates (Save, Update, Updates, UpdateColumn(s), by model or by Where, with
// a struct or a map) read the previous values in the same statement, with
// the rows locked:
//
//	UPDATE leads SET ... FROM (SELECT ... FROM leads WHERE <where> FOR NO KEY UPDATE) AS __ic_old
//	WHERE (<where>) AND leads.id = __ic_old.__ic_0 RETURNING ...
//
// so the previous status is the one actually overwritten, even under
// concurrent writers. FOR NO KEY UPDATE is the lock the UPDATE takes
// anyway: other writers of the row wait, as they would for the UPDATE,
// and inserts whose foreign keys reference it do not. Only the columns the
// statement assigns are read (the id and those of status, score and the
// enrichment fields in its SET), and an update that assigns none of them
// (say Update("name", ...)) runs exactly as without the plugin; a column
// changed by a database trigger alone is not seen. An update that changes
// nothing emits nothing.
//
// # SQLite
//
// SQLite (3.35+, e.g. the pure-Go github.com/glebarez/sqlite) is supported
// and tested with the same behaviours. Its RETURNING cannot name the tables
// of an UPDATE ... FROM and it has no FOR UPDATE, so there an update is
// captured in three statements in one transaction (the caller's, or one the
// plugin begins for an autocommitted statement): a no-op write that takes
// the database's single write lock, a SELECT of the previous values with the
// same WHERE, and GORM's UPDATE with RETURNING of the new values. SQLite has
// one writer at a time, so the previous values are the ones overwritten.
// Use a busy timeout (e.g. _pragma=busy_timeout(5000)) so that concurrent
// writers wait for the lock. Other differences are SQLite's own: a failed
// statement does not abort the transaction (the rest commits and is
// emitted), and ids of rolled-back inserts are reused.
// ErrMissingWhereClause and Or precedence are as without the plugin, and the
// caller's model is not written by the capture.
//
// # Upserts
//
// An upsert is a create with clause.OnConflict, Save of a slice, or Save of
// a struct whose non-zero id matched no row (GORM then inserts with ON
// CONFLICT). On PostgreSQL the plugin adds (xmax = 0) to the statement's
// RETURNING, which is true for a row the statement inserted and false for
// one that ON CONFLICT DO UPDATE updated (a widely used property of
// PostgreSQL's row versions, not a documented guarantee), and:
//
//   - a row the upsert inserted emits NEW_LEAD with the row, like a create
//     (from one map: a *Model filled from it; from several maps: Lead is
//     nil, since skipped rows make rows and maps impossible to pair);
//   - a row it updated emits nothing: its new values are known, but the
//     previous ones are not without a read before the statement, and a
//     Change with a guessed or empty previous status would look like a real
//     transition; update such rows with Update/Updates/Save to be notified;
//   - a row DO NOTHING skipped emits nothing (it is not returned).
//
// An upsert with the caller's own Returning clause is not captured and emits
// nothing. On SQLite nothing reliable tells the two apart (RETURNING
// returns inserted and updated rows alike, changes() counts both, and
// last_insert_rowid is one value per statement), so upserts there emit
// nothing at all.
//
// # Delivery
//
// A Plugin is safe for concurrent use. The Sink runs on the plugin's own
// goroutine: a failing, slow or panicking Sink never fails or blocks a write;
// failures are logged (WithLogger) and counted (WithRegisterer), and when
// WithQueue batches are waiting, new ones are dropped and counted. With
// WithStrict the Sink runs synchronously after commit and its error is
// returned to the caller, although the data is committed.
//
// # Cost
//
// On inserts the plugin adds nothing to the SQL: it reads the ids GORM
// already returns, copies the rows of a statement in one allocation and
// builds their Changes in another. A captured update is one statement, as
// without the plugin, whose SQL text (all but the WHERE) is cached per
// table and per set of assigned columns; the pre-image lock and the second
// index probe are the remaining cost, paid in the database. A transaction's
// first batch is buffered without a copy and a batch at the head of the
// commit order is delivered without touching the ordering maps. Measured
// against plain GORM on the same table (README.md): about 1.0 on inserts
// and about 0.9 on single-row and 4-writer updates, on a noisy 2-core VM.
//
// # Not seen
//
// Only GORM's create, update and delete paths on the watched model are seen.
// Writes through db.Exec or db.Raw, other processes and transactions begun
// outside the wrapped pool (db.Connection, a *sql.Tx of your own; the latter
// emit before commit and are counted as "unsafe") are not. Upserts are
// reported only in part (see Upserts). A statement can opt out with
// db.Clauses(interceptor.Skip). A crash between COMMIT and the Sink loses
// the changes: they are in memory only.
package interceptor
