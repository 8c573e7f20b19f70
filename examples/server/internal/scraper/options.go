package scraper

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

// Option configures a Scraper.
type Option func(*config)

// A FetchFunc is a job's simulated call to its source, made at the start of
// every harvest. An error aborts the harvest (logged and counted).
type FetchFunc func(ctx context.Context, source string) error

type config struct {
	rate       float64
	batch      int
	jobs       []string
	owners     []string
	fetch      FetchFunc
	rand       *rand.Rand
	logger     log.Logger
	registerer prometheus.Registerer
}

func defaults() config {
	return config{
		rate:   6,
		batch:  3,
		jobs:   []string{lead.SourceGoogle, lead.SourceLinkedIn, lead.SourceFacebook, lead.SourceYellowPages},
		owners: []string{"alice", "bob", ""},
		logger: log.NewNopLogger(),
	}
}

// WithRate sets how many leads per minute each job finds on average.
// Defaults to 6.
func WithRate(perMinute float64) Option { return func(c *config) { c.rate = perMinute } }

// WithBatch sets the most leads one harvest finds; each finds from 1 to n.
// Defaults to 3.
func WithBatch(n int) Option { return func(c *config) { c.batch = n } }

// WithJobs sets which jobs run, by source: lead.SourceGoogle
// (GoogleLeadJob), lead.SourceLinkedIn, lead.SourceFacebook,
// lead.SourceYellowPages. Defaults to all four.
func WithJobs(sources ...string) Option { return func(c *config) { c.jobs = sources } }

// WithOwners sets the salespeople harvested leads are assigned to, one
// chosen at random per lead; "" leaves a lead unassigned. Defaults to
// "alice", "bob" and "".
func WithOwners(owners ...string) Option { return func(c *config) { c.owners = owners } }

// WithFetch replaces the simulated fetch of every harvest. Defaults to
// waiting 1–2 s (or until ctx is done), so that a harvest is visible in
// Active; tests pass a function they control.
func WithFetch(f FetchFunc) Option { return func(c *config) { c.fetch = f } }

// WithSeed makes the simulated data and timing reproducible: they come from
// a PCG generator seeded with seed. Defaults to a random seed.
func WithSeed(seed uint64) Option {
	return func(c *config) { c.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithLogger sets where failed harvests and refused workflow starts are
// logged. Defaults to log.NewNopLogger().
func WithLogger(l log.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegisterer registers the Scraper's collectors on r:
// leadupdates_scraper_leads_total{source},
// leadupdates_scraper_errors_total{source,stage} (stage fetch, insert or
// start) and leadupdates_scraper_active_harvests. By default nothing is
// registered.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// sleepFetch is the default FetchFunc.
func (s *Scraper) sleepFetch(ctx context.Context, _ string) error {
	s.randMu.Lock()
	d := time.Second + time.Duration(s.rand.Int64N(int64(time.Second)))
	s.randMu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
