// Package signalrtest is a SignalR client for tests and load tools. It
// speaks the ASP.NET Core SignalR wire protocol byte by byte, with no client
// library in between, so that a test sees exactly what a hub sends and can
// send it anything, malformed input included: negotiate (negotiateVersion=1,
// bearer token), WebSockets and Server-Sent Events, the handshake, and the
// JSON and MessagePack framings. Long Polling needs nothing but HTTP
// requests; [Split] cuts what a poll returns into records.
//
// The hub's tests (package hub) and examples/hubbench use it.
//
// # First program
//
//	c := &signalrtest.Client{URL: ts.URL + "/leadupdates", HTTPClient: ts.Client()} // ts: an httptest.Server
//	conn, err := c.Connect(ctx, signalrtest.JSON)                                   // negotiate, dial, handshake
//	if err != nil {
//		return err
//	}
//	defer conn.Close()
//	err = conn.Write(ctx, websocket.MessageText, signalrtest.JSONInvocation("1", "JoinLeadGroup", 42))
//	rec, err := conn.ReadRecord(ctx) // the next record the hub sent
//	m, err := signalrtest.DecodeJSON(rec.Data)
//	fmt.Println(m.Type, m.InvocationID, m.Error == nil) // 3 1 true: the completion
//
// # Records
//
// The unit of everything here is the record: one hub message without its
// framing (the 0x1e separator of JSON, the VarInt length prefix of
// MessagePack). The handshake and its answer are JSON records in either
// protocol. A record may span WebSocket messages and one message may hold
// several records; [Conn.ReadRecord] reads the stream either way and says in
// which message each record ended.
//
// # Concurrency
//
// A [Client] holds no state: use one from any number of goroutines. A [Conn]
// may be written and closed from any goroutine, concurrently with its reader;
// [Conn.ReadRecord] is called by one goroutine at a time, and the record it
// returns is valid until the next call. An [EventStream] is read by one
// goroutine at a time and may be closed from any.
package signalrtest
