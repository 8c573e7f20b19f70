// Package hub serves the LeadUpdatesHub over the ASP.NET Core SignalR
// protocol, so that unmodified @microsoft/signalr clients (browser and Node)
// negotiate, connect over WebSockets, Server-Sent Events or Long Polling,
// speak JSON or MessagePack, authenticate with a bearer token, join groups and
// reconnect as they would against ASP.NET Core.
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
//	srv.Group(hub.DefaultGroup).Send("ReceiveLeadUpdate", update)
//	srv.Group(hub.LeadGroup(42)).Send("ReceiveLeadUpdate", update)
//
// The library never listens and never logs unless given a logger.
//
// # Wire API
//
// Clients call JoinLeadGroup(leadId) and LeaveLeadGroup(leadId); nothing else
// is callable. Every connection joins [DefaultGroup] ("LeadUpdates") when it
// connects; JoinLeadGroup adds it to [LeadGroup] ("Lead_{id}") if the
// [GroupAuthorizer] allows it. A rejected call fails the client's invoke with
// a clear message and leaves the connection open.
//
// # Delivery
//
// Each connection has one ordered, bounded queue: messages reach a client in
// the order they were sent, a message addressed to several groups reaches a
// connection once, and a broadcast is encoded once per protocol. Send never
// waits for a client; a client whose queue overflows is closed with
// allowReconnect, so it reconnects and catches up (see [WithSendQueue]).
//
// With a [Backplane] ([WithBackplane]; hub/redisbackplane for Redis) several
// Servers act as one hub: each delivers its own sends to its own connections
// at once and publishes them, encoded, for the others, which deliver them to
// theirs; per sender, order holds across instances. Group membership stays
// with the instance that holds the connection. Per-user filters travel as a
// name and an argument ([Server.GroupsFiltered], [WithFilter]).
//
// # How it uses philippseith/signalr
//
// github.com/philippseith/signalr is the hub protocol engine: handshake and
// dispatch of hub methods through Server.Serve, with this package's
// HubLifetimeManager. The HTTP layer (negotiate, the three transports,
// authentication, CORS), the per-connection queues, keep-alive and timeouts
// are this package's. Between each transport and the engine sits a filter
// that enforces the message size limit per hub message, answers malformed
// input, unknown methods and bad arguments itself, runs one invocation per
// connection at a time, and never lets the engine's own defects (unordered
// sends, connection-dropping completions, leaked panic text, mis-encoded
// MessagePack Close) reach a client.
//
// # Concurrency
//
// A [Server] is safe for concurrent use. Hooks (Authenticator,
// GroupAuthorizer, WithOnConnected, WithOnDisconnected) may run concurrently
// for different connections; a panic in one ends only that connection.
package hub
