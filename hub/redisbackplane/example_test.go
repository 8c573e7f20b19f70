package redisbackplane_test

import (
	"context"
	"fmt"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/redisbackplane"
	"github.com/redis/go-redis/v9"
)

// Two instances of one hub, as two processes behind a load balancer would
// run them: the same Redis, the same channel, one Backplane each. A send on
// either reaches the clients of both.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	channel := fmt.Sprintf("example:%d", time.Now().UnixNano()) // in production: one name per hub, e.g. "leadupdates"

	var instances []*hub.Server
	for range 2 {
		bp, err := redisbackplane.New(rdb, redisbackplane.WithChannel(channel))
		if err != nil {
			fmt.Println(err)
			return
		}
		srv, err := hub.New(hub.WithBackplane(bp))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer srv.Close()
		instances = append(instances, srv)
	}
	// Ready is what /readyz asks: nil once the instance hears the others.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, srv := range instances {
		for srv.Ready(ctx) != nil && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Printf("instance %d ready: %v\n", i, srv.Ready(ctx) == nil)
	}
	instances[0].Group(hub.DefaultGroup).Send("ReceiveLeadUpdate", map[string]any{"leadId": 42, "type": "NEW_LEAD"})
	// Output:
	// instance 0 ready: true
	// instance 1 ready: true
}
