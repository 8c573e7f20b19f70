package redistest_test

import (
	"context"
	"testing"

	"github.com/leadupdates/leadupdates/hub/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestPrivateRestarts: a private server answers, is gone once stopped, and
// answers again once started.
func TestPrivateRestarts(t *testing.T) {
	p := redistest.StartPrivate(t)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	p.Stop()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatalf("%s answers after Stop", p)
	}
	p.Start()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s after Start: %v", p, err)
	}
	if a, b := redistest.Channel(t), redistest.Channel(t); a == b {
		t.Errorf("two channels named %q", a)
	}
	if err := redistest.Shared(t).Ping(ctx).Err(); err != nil {
		t.Error(err)
	}
}
