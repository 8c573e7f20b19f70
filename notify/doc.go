// Package notify tells dashboards what happens to leads. It holds the wire
// contract shared with the TypeScript clients ([LeadUpdateMessage],
// [MetricsUpdateMessage], [AnalyticsUpdateMessage], the client method names) and the [Notifier], which
// sends those messages through a hub.Server to the LeadUpdates group and the
// lead's own group.
//
// A first program, with the hub:
//
//	// Salespeople see only the events of their own leads: the sender names
//	// the owner, each hub instance decides per connection.
//	srv, _ := hub.New(hub.WithAuthenticator(auth),
//		hub.WithFilter(notify.FilterName, func(owner string, p *hub.Principal) bool {
//			return p.HasRole("admin") || owner == p.ID
//		}))
//	n, err := notify.New(srv, notify.WithAudience(func(ev *notify.LeadUpdateMessage) string {
//		return ownerOf(ev.LeadID)
//	}))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer n.Close()
//	_ = n.NotifyLeadStatusUpdate(ctx, 42, "Enriched", "Scored")
//
// # Durable event log
//
// With [WithLog] lead events go through a durable event log
// (notify/eventlog) instead of the queue: a Notify call appends its event
// to the caller's transaction when ctx carries an eventlog.Batch (the
// interceptor's WithEventLog does this), so the event exists if and only if
// the write that caused it commits, or else appends it at once and returns
// the append's error. Every instance's Notifier tails the log and publishes
// each event to its own connections in one global order, with the event's
// position as sequence: the same number for the same event at every client,
// across instances, without a backplane. A [HubLog] given to the hub
// (hub.WithLog) lets a client catch up from the last position it saw with
// exactly the messages it missed, then live; delivery is at least once, and
// clients drop duplicates by sequence. Nothing committed is lost by a crash:
// a restarted instance's clients catch up from the log. Metrics and
// analytics keep the queue.
//
// # Concurrency
//
// A Notifier is safe for concurrent use and its calls never block: they
// validate their input (an error wrapping [ErrInvalid], nothing sent), queue
// the event and return; a full queue drops the event, counts and logs it. A
// call whose ctx is done returns ctx.Err() and sends nothing. [New] starts
// one goroutine that hands the queue to the hub in order, so a caller's
// events reach every client in call order with an increasing sequence;
// [Notifier.Close] delivers what is queued, stops it and waits for it, and
// later calls return [ErrClosed]. With [WithLog], lead events wait for
// the log's database instead (see above), and Close also stops the relay.
package notify
