// Package eventlog is the durable, ordered log of lead events: an event is
// appended in the same database transaction as the change that caused it,
// so it exists if and only if that change committed, and every reader sees
// the events in one order, by [Event.Position], that all instances agree on.
// Readers resume from the last position they saw ([Log.Read], [Log.Tail]);
// a lead's history can be replayed ([Log.History]); events older than the
// retention are pruned in the background ([WithRetention]).
//
// It works on PostgreSQL and on SQLite, over the application's own
// *gorm.DB, and knows nothing of hubs or wire messages: the payload is the
// caller's JSON.
//
// A first program:
//
//	l, err := eventlog.Open(ctx, db) // creates the table lead_events unless it exists
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer l.Close()
//	err = db.Transaction(func(tx *gorm.DB) error {
//		if err := tx.Model(&lead).Update("status", "Scored").Error; err != nil {
//			return err
//		}
//		return l.Append(ctx, tx.Statement.ConnPool, eventlog.Event{
//			LeadID: lead.ID, Type: "STATUS_UPDATE", Payload: msg})
//	})
//	l.Committed() // position it now rather than at the next poll
//	go l.Tail(ctx, 0, func(evs []eventlog.Event) error { ...; return nil })
//
// # Ordering
//
// On PostgreSQL a writer inserts its events without a position, one row
// per Append (the events in arrays). A sequencer (one at a time across all
// instances, under an advisory lock) gives the committed rows' events the
// next positions, 1, 2, 3, ... with no gap, in the order the rows were
// inserted, and tells the other instances with pg_notify. Because only
// committed events get positions, a transaction that appended first and
// commits late is positioned late instead of being skipped by readers
// already past it; because a transaction appending for a lead holds a
// lock on it until COMMIT (the log's advisory lock, or the lead's row lock
// when it wrote the row: [WithLeadTable], [Batch.Wrote]), one lead's
// events are positioned in the order their transactions committed. On
// SQLite, with one writer at a time, the position is the row id.
//
// # Concurrency
//
// A Log is safe for concurrent use, and several Logs (in one process or in
// several) may share one table. [Open] starts the background work (on
// PostgreSQL a sequencer and a LISTEN connection; on both a pruner);
// [Log.Close] stops it and waits for it. Append never waits for readers; it
// waits only for another transaction appending for the same lead, or
// (with [WithLeadTable]) writing its row, to end.
// Tail delivers every event after its cursor exactly once, in order, and
// retries read errors with backoff, so consumers need de-duplicate only
// across their own restarts, by position.
package eventlog
