// Package notify tells dashboards what happens to leads: it holds the wire
// contract shared with the TypeScript clients (LeadUpdateMessage,
// MetricsUpdateMessage, the client method and group names) and the Notifier,
// the port of the seed's ILeadNotificationService.
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
// # Guarantees
//
// Calls never block and never fail the caller's work because of delivery:
// they validate their input (returning an error wrapping [ErrInvalid] and
// sending nothing when it is wrong), queue the event and return. One
// goroutine hands the queue to the hub in order, so a caller's events reach
// every client in call order, with an increasing sequence number. A full
// queue drops the new event, counts and logs it; after [Notifier.Close],
// calls return [ErrClosed].
//
// # Concurrency
//
// A Notifier is safe for concurrent use.
package notify
