package redisbackplane

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/promreg"
	"github.com/redis/go-redis/v9"
)

var _ hub.Backplane = (*Backplane)(nil)

// ErrNotSubscribed is what Ready returns while the Backplane is not
// subscribed to Redis: at start before Redis answers, and while Redis is
// unreachable.
var ErrNotSubscribed = errors.New("redisbackplane: not subscribed to Redis")

// A Backplane joins the instances of one hub through one Redis pub/sub
// channel. Give each hub.Server its own Backplane (on a shared client), and
// the same channel to every instance of the same hub.
//
// A Backplane is safe for concurrent use. It never owns a goroutine:
// Subscribe runs in the caller's (the hub's).
type Backplane struct {
	rdb redis.UniversalClient
	cfg config
	tel *telemetry

	subscribed atomic.Bool
}

// New returns a Backplane publishing and subscribing through rdb, which the
// caller keeps and closes after the hub.
//
// New does not contact Redis: an instance whose Redis is unavailable at
// start runs degraded, serving its own clients, until Subscribe reaches
// Redis, retrying with backoff. Meanwhile Ready (and so hub.Server.Ready and
// the example's /readyz) fails and leadupdates_redisbackplane_subscribed is
// 0, so a load balancer sends clients to instances that hear the others. To
// refuse to start instead, ping rdb before New.
func New(rdb redis.UniversalClient, opts ...Option) (*Backplane, error) {
	if rdb == nil {
		return nil, errors.New("redisbackplane: nil Redis client")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	f := promreg.With("redisbackplane", cfg.registerer)
	tel := newTelemetry(f)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return &Backplane{rdb: rdb, cfg: cfg, tel: tel}, nil
}

// Publish publishes msg on the channel, once: a failure loses it and the hub
// counts it.
func (b *Backplane) Publish(ctx context.Context, msg []byte) error {
	if err := b.rdb.Publish(ctx, b.cfg.channel, msg).Err(); err != nil {
		return fmt.Errorf("redisbackplane: publish: %w", err)
	}
	return nil
}

// Ready returns nil while the Backplane is subscribed, ErrNotSubscribed
// otherwise.
func (b *Backplane) Ready(context.Context) error {
	if !b.subscribed.Load() {
		return ErrNotSubscribed
	}
	return nil
}

// Subscribe delivers every message published on the channel, in order, until
// ctx is done, and returns ctx.Err(). When the connection fails it logs,
// counts the reconnection (leadupdates_redisbackplane_reconnects_total) and
// subscribes again after a backoff that doubles from the minimum up to the
// maximum (see WithBackoff), back to the minimum once subscribed. A
// subscription that hears nothing for the health interval is pinged, and
// given up after a second silent interval.
func (b *Backplane) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	delay := b.cfg.minBackoff
	for {
		err := b.session(ctx, deliver, func() { delay = b.cfg.minBackoff })
		b.setSubscribed(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.tel.reconnects.Inc()
		level.Warn(b.cfg.logger).Log("msg", "Redis subscription lost; resubscribing", "channel", b.cfg.channel, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, b.cfg.maxBackoff)
	}
}

// session subscribes once and delivers until the connection fails or ctx is
// done; subscribed is called once the subscription is confirmed.
func (b *Backplane) session(ctx context.Context, deliver func([]byte), subscribed func()) error {
	ps := b.rdb.Subscribe(ctx)
	defer ps.Close()
	// go-redis does not watch ctx while it reads: closing the PubSub ends
	// the read at once.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	if err := ps.Subscribe(ctx, b.cfg.channel); err != nil {
		return err
	}
	pinged := false
	for {
		v, err := ps.ReceiveTimeout(ctx, b.cfg.health)
		if err != nil {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() || pinged {
				return err
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := v.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == b.cfg.channel {
				b.setSubscribed(true)
				subscribed()
				level.Info(b.cfg.logger).Log("msg", "subscribed to Redis", "channel", b.cfg.channel)
			}
		case *redis.Message:
			deliver([]byte(m.Payload))
		}
	}
}

func (b *Backplane) setSubscribed(on bool) {
	b.subscribed.Store(on)
	if on {
		b.tel.subscribed.Set(1)
	} else {
		b.tel.subscribed.Set(0)
	}
}
