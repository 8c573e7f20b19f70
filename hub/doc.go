// Package hub serves the LeadUpdatesHub over the ASP.NET Core SignalR
// protocol, so that unmodified @microsoft/signalr clients (browser and Node)
// negotiate, connect over WebSockets, Server-Sent Events or Long Polling,
// speak JSON or MessagePack, authenticate with a bearer token and reconnect
// as they would against ASP.NET Core. github.com/philippseith/signalr runs
// the hub methods; the HTTP layer, the transports, validation and delivery
// are this package's.
//
// Clients can call JoinLeadGroup(leadId), LeaveLeadGroup(leadId) and
// CatchUp(position), nothing else. Every connection is in [DefaultGroup];
// JoinLeadGroup adds it to [LeadGroup](leadId) if the [GroupAuthorizer]
// allows it. Several Servers act as one hub through a [Backplane]
// (hub/redisbackplane for Redis).
//
// Entries of an ordered log go out with [Server.Publish]; with the log
// given to [WithLog], CatchUp(position) replays to the caller every entry
// after position that it may see, in order, then hands it over to live
// delivery with no gap and no duplicate in between.
//
// A client built with withStatefulReconnect() loses nothing to a network
// blip: when its WebSocket drops, the connection keeps its id, principal
// and groups and buffers what is sent to it, the client re-attaches, and
// each side resends what the other has not acknowledged, so that every
// message arrives once and in order ([WithStatefulReconnect] sets the
// window and the buffer). With a [SessionStore] ([WithSessionStore],
// hub/pgsession) and a Log, a client that re-attaches to another instance
// resumes its connection there, and every entry of the log reaches it, in
// order, at least once (drop duplicates by position).
//
// A first program:
//
//	srv, err := hub.New(hub.WithAuthenticator(auth)) // e.g. a jwtauth.Authenticator
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer srv.Close()
//	mux := http.NewServeMux()
//	srv.Mount(mux) // /leadupdates and /leadupdates/negotiate
//	go http.ListenAndServe(":8080", mux)
//
//	srv.Group(hub.LeadGroup(42)).Send("ReceiveLeadUpdate", update)
//
// # Security
//
// Every request authenticates, and a connection is closed with
// allowReconnect when its [Principal] expires ([WithCloseOnExpiry]), so the
// client reconnects with a fresh token. Pending connections, hub method
// calls and request bodies are limited per user, per connection and per
// request, so that one client cannot lock others out; the README's Security
// section lists each limit and its default.
//
// # Concurrency
//
// A [Server] is safe for concurrent use, and sending never waits for a
// client: each connection has one ordered, bounded queue, and a client that
// falls behind is closed with allowReconnect ([WithSendQueue]). Hooks
// (Authenticator, GroupAuthorizer, WithOnConnected, WithOnDisconnected) may
// run concurrently for different connections; a panic in one ends only that
// connection. New starts the Server's goroutines; Close stops them and waits
// for every one, and Shutdown lets clients know to reconnect first. The
// package never listens and never logs unless given a logger.
package hub
