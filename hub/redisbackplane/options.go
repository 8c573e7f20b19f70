package redisbackplane

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// An Option configures a Backplane.
type Option func(*config)

type config struct {
	channel                string
	logger                 log.Logger
	registerer             prometheus.Registerer
	minBackoff, maxBackoff time.Duration
	health                 time.Duration
}

func defaults() config {
	return config{
		channel:    "leadupdates",
		logger:     log.NewNopLogger(),
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second,
		health:     15 * time.Second,
	}
}

func (c *config) validate() error {
	switch {
	case c.channel == "":
		return errors.New("redisbackplane: empty channel")
	case c.minBackoff <= 0 || c.maxBackoff < c.minBackoff:
		return fmt.Errorf("redisbackplane: backoff %v..%v must be positive and increasing", c.minBackoff, c.maxBackoff)
	case c.health <= 0:
		return fmt.Errorf("redisbackplane: health interval %v must be positive", c.health)
	}
	return nil
}

// WithChannel sets the Redis pub/sub channel. Every instance of one hub uses
// the same; different hubs (or environments) sharing a Redis use different
// ones. Defaults to "leadupdates".
func WithChannel(name string) Option { return func(c *config) { c.channel = name } }

// WithLogger logs subscriptions and their failures. Defaults to no logging.
func WithLogger(l log.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = log.NewNopLogger()
		}
		c.logger = l
	}
}

// WithRegisterer registers the Backplane's Prometheus collectors
// (leadupdates_redisbackplane_*) with r; a second Backplane on the same r
// makes New fail, so give each its own (prometheus.WrapRegistererWith).
// Defaults to none: the collectors count but are not registered.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithBackoff sets the wait before resubscribing after a failure: min at
// first, doubling up to max. Defaults to 100 ms and 5 s.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.minBackoff, c.maxBackoff = min, max }
}

// WithHealthInterval sets how long a subscription may stay silent before it
// is pinged; one more silent interval ends it and it resubscribes. Defaults
// to 15 s.
func WithHealthInterval(d time.Duration) Option { return func(c *config) { c.health = d } }
