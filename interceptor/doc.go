// Package interceptor is a GORM plugin that turns committed writes of a lead
// model into [Change]s — new leads, status, score and enrichment updates
// with the exact previous and new values, deletions — and hands them to a
// [Sink] only after the surrounding transaction commits, never for a
// rolled-back one.
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
// Initialize wraps db's connection pool, because GORM runs after-callbacks
// before COMMIT: a transaction begun through it buffers its changes, hands
// them on once Commit succeeds, drops them on Rollback and truncates them on
// ROLLBACK TO SAVEPOINT. A transaction's changes reach the Sink as one
// batch in statement order; batches arrive in commit order. Previous values
// are read in the UPDATE statement itself, with the rows locked, so they are
// exact under concurrent writers. PostgreSQL and SQLite 3.35+ are
// supported. Writes through db.Exec or db.Raw, other processes and
// transactions begun outside the wrapped pool are not seen; a statement can
// opt out with db.Clauses(interceptor.Skip). interceptor/README.md details
// creates from maps, upserts, SQLite and the cost.
//
// # Durable event log
//
// With [WithEventLog] the plugin writes a durable event log
// (notify/eventlog) in the application's own transactions, so that an
// event exists if and only if the change that caused it committed: at
// Commit it calls the Sink synchronously, before COMMIT, with a ctx
// carrying an eventlog.Batch (a *notify.Notifier WithLog adds its events
// to it), appends the batch in the same transaction, commits, and wakes
// the log's readers. On PostgreSQL through pgx the append and the COMMIT
// take one round trip: the transaction runs on a connection of its own
// rather than a *sql.Tx. The batch names the leads whose rows the
// transaction wrote, whose row locks order their events. A failing Sink or
// append rolls the transaction back and fails the write; a crash at any
// point loses nothing committed.
// Writes of the watched model outside a transaction of the plugin are
// refused ([ErrNoTransaction]); GORM's default transaction covers every
// create, update and delete unless SkipDefaultTransaction is set.
//
// # Concurrency
//
// A Plugin is safe for concurrent use. By default [New] starts one
// goroutine that calls the Sink, so a failing, slow or panicking Sink never
// fails or blocks a write: failures are logged and counted, and batches
// beyond [WithQueue] are dropped and counted. With [WithStrict] there is no
// goroutine: the Sink runs in the committing goroutine and its error is
// returned to the caller, although the data is committed. [Plugin.Close]
// delivers what is queued and waits for the goroutine; changes committed
// after it are dropped. With [WithEventLog] there is no goroutine either,
// the Sink runs before COMMIT as described above, and Close has nothing to
// stop.
package interceptor
