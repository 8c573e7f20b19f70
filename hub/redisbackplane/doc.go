// Package redisbackplane joins several instances of a hub.Server through
// Redis pub/sub, so that a client connected to any instance receives what
// any instance sends: the hub.Backplane of a service behind a load
// balancer. It is a package of its own so that a service without Redis
// never imports go-redis.
//
// A first program, the same on every instance:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	defer rdb.Close()
//	bp, err := redisbackplane.New(rdb, redisbackplane.WithChannel("leadupdates"))
//	if err != nil {
//		log.Fatal(err)
//	}
//	srv, err := hub.New(hub.WithBackplane(bp))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer srv.Close()
//	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
//		if err := srv.Ready(r.Context()); err != nil {
//			http.Error(w, err.Error(), http.StatusServiceUnavailable)
//		}
//	})
//	srv.Group(hub.DefaultGroup).Send("ReceiveLeadUpdate", update) // every instance's clients
//
// # Guarantees
//
// All instances of one hub share one channel; each instance publishes its
// sends there, batched, in order, from one goroutine, and ignores its own
// when they come back: it has already delivered them to its connections.
// So, per producer, every client receives events in send order whichever
// instance it is connected to, and once. A send is encoded once, for both
// protocols, on the instance that makes it; other instances only copy
// bytes into their connections' queues. Send never waits for Redis: the
// publish queue is bounded and what overflows is counted
// (leadupdates_hub_backplane_dropped_total).
//
// # Faults
//
// New does not contact Redis. While Redis is unreachable, at start or
// later, each instance keeps delivering its own sends to its own clients;
// Subscribe retries with backoff; Ready fails (for /readyz) and
// leadupdates_redisbackplane_subscribed is 0. Sends published meanwhile are
// lost for the other instances: the publishing instance counts them
// (leadupdates_hub_backplane_dropped_total{reason="error"}), the receiving
// instances count the gap in its sequence numbers
// (leadupdates_hub_backplane_lost_total{reason="gap"}), and both log it.
//
// # Concurrency
//
// A Backplane is safe for concurrent use and owns no goroutine: the hub
// runs Subscribe in its own. Give each hub.Server its own Backplane.
package redisbackplane
