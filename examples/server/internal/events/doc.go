// Package events connects the interceptor to the notifier: each committed
// lead change becomes the matching ReceiveLeadUpdate message, for the
// audience of the change (the owner the writing statement returned, see
// interceptor.Fields.Audience), and every batch asks the metrics publisher
// for a fresh snapshot.
//
//	bridge := events.New(notifier, publisher.Trigger, logger)
//	plugin, _ := interceptor.New(&lead.Lead{}, bridge, interceptor.WithStrict(),
//		interceptor.WithFields(interceptor.Fields{Audience: "Owner"}))
//	db.Use(plugin)
//
// With interceptor.WithEventLog the bridge runs before COMMIT and adds every
// event to the transaction's eventlog.Batch; an event it cannot add fails
// the write. A writer adds its own events ahead of or behind its changes
// with WithHooks (the workflow's WORKFLOW_* events). Without a log:
//
// With interceptor.WithStrict the bridge runs as the transaction commits, so
// a workflow's WORKFLOW_COMPLETED, sent after its last write returned, is
// queued after that write's STATUS_UPDATE. The bridge only queues (the
// notifier never blocks) and never returns an error, so strict mode cannot
// fail or slow a write.
package events
