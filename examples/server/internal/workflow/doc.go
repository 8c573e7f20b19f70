// Package workflow runs the example server's LeadProcessing workflow: the
// activities Enrich, Score, Vet and ZohoUpsert (a CRM sync), simulated, each
// updating the lead through GORM.
//
// A first program, with db carrying the interceptor and n a *notify.Notifier:
//
//	r, err := workflow.New(db, n, workflow.WithLogger(logger), workflow.WithRegisterer(reg))
//	if err != nil { ... }
//	defer r.Close(shutdownCtx)
//	if err := r.Start(req.Context(), leadID); err != nil {
//		var hs interface{ HTTPStatus() int }
//		if errors.As(err, &hs) { ... } // 404, 409 or 503
//	}
//
// # Events
//
// The Runner sends WORKFLOW_STARTED, WORKFLOW_COMPLETED and WORKFLOW_FAILED
// through its [Notifier]; everything else a client sees comes from the
// interceptor, because the activities only write the lead. A client sees,
// in this order:
//
//	WORKFLOW_STARTED
//	STATUS_UPDATE → New                                 (Failed or Disqualified leads only)
//	STATUS_UPDATE → Enriching                           Enrich
//	ENRICHMENT_UPDATE, STATUS_UPDATE → Enriched         Enrich, one transaction
//	SCORE_UPDATE, STATUS_UPDATE → Scored                Score, one transaction
//	STATUS_UPDATE → Vetted, then → Qualified or → Disqualified   Vet
//	STATUS_UPDATE → SyncedToCrm                         ZohoUpsert, qualified leads only
//	WORKFLOW_COMPLETED
//
// The last update (SyncedToCrm or Disqualified) also sets processed_at; the
// move back to New clears it.
//
// The order across the two paths holds when the interceptor hands each
// change on as its transaction commits (interceptor.WithStrict, with a sink
// that only queues and never fails, as the example server's bridge): the
// Runner sends WORKFLOW_COMPLETED or FAILED after its last write returned.
// With the interceptor's default asynchronous delivery the last
// STATUS_UPDATE may reach the notifier after WORKFLOW_COMPLETED. Under
// WithStrict a sink error fails the write that reported it, and so the
// workflow.
//
// # Failures
//
// Every update is conditional (WHERE id = ? AND status = <the status the
// workflow left>), so a concurrent change through the API, or a deletion,
// stops the workflow: WORKFLOW_FAILED is sent and the other writer's change
// stands. An activity that fails (at the rate of [WithFailureRate], with a
// realistic reason), a database error, or cancellation by [Runner.Close]
// moves the lead to Failed and sends WORKFLOW_FAILED with the reason. A
// notification that fails or panics is logged and counted and never fails
// the workflow.
//
// # Concurrency
//
// A Runner is safe for concurrent use. At most one workflow runs per lead
// and at most [WithConcurrency] in all; beyond that Start refuses with
// [ErrBusy] rather than queueing. Start runs the workflow on a goroutine of
// the Runner, detached from the caller's context; [Runner.Close] waits for
// them, or cancels them when its context is done, and returns only when
// all have returned.
package workflow
