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
// # Concurrency
//
// A Notifier is safe for concurrent use and its calls never block: they
// validate their input (an error wrapping [ErrInvalid], nothing sent), queue
// the event and return; a full queue drops the event, counts and logs it. A
// call whose ctx is done returns ctx.Err() and sends nothing. [New] starts
// one goroutine that hands the queue to the hub in order, so a caller's
// events reach every client in call order with an increasing sequence;
// [Notifier.Close] delivers what is queued, stops it and waits for it, and
// later calls return [ErrClosed].
package notify
