package scraper

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

// Starter starts the workflow on a lead; *workflow.Runner satisfies it.
type Starter interface {
	Start(ctx context.Context, leadID int64) error
}

// StarterFunc adapts a function, such as a workflow Runner's Submit, to a
// Starter.
type StarterFunc func(ctx context.Context, leadID int64) error

// Start calls f.
func (f StarterFunc) Start(ctx context.Context, leadID int64) error { return f(ctx, leadID) }

// jobNames name the scrapers by source, as logs and metrics show them.
var jobNames = map[string]string{
	lead.SourceGoogle:      "GoogleLeadJob",
	lead.SourceLinkedIn:    "LinkedInLeadJob",
	lead.SourceFacebook:    "FacebookLeadJob",
	lead.SourceYellowPages: "YellowPagesLeadJob",
}

// A Scraper runs the simulated lead harvesters. It is safe for concurrent
// use.
type Scraper struct {
	db      *gorm.DB
	starter Starter
	cfg     config
	tel     *telemetry
	active  atomic.Int64 // harvests in progress
	jobs    atomic.Int64 // job loops running

	randMu sync.Mutex
	rand   *rand.Rand
}

// New returns a Scraper that stores the leads it finds through db (where
// the interceptor reports them as NEW_LEAD) and starts the workflow on each
// through s.
func New(db *gorm.DB, s Starter, opts ...Option) (*Scraper, error) {
	if db == nil {
		return nil, errors.New("scraper: nil *gorm.DB")
	}
	if s == nil {
		return nil, errors.New("scraper: nil Starter")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case !(cfg.rate > 0) || cfg.rate > 1e6:
		return nil, fmt.Errorf("scraper: rate %v must be above 0 leads per minute (and sane)", cfg.rate)
	case cfg.batch < 1:
		return nil, fmt.Errorf("scraper: batch %d must be at least 1", cfg.batch)
	case len(cfg.jobs) == 0:
		return nil, errors.New("scraper: no jobs")
	case len(cfg.owners) == 0:
		return nil, errors.New("scraper: no owners (use \"\" for unassigned leads)")
	case cfg.logger == nil:
		return nil, errors.New("scraper: nil logger")
	}
	for i, j := range cfg.jobs {
		if _, ok := jobNames[j]; !ok {
			return nil, fmt.Errorf("scraper: unknown job %q (want Google, LinkedIn, Facebook or YellowPages)", j)
		}
		if slices.Contains(cfg.jobs[:i], j) {
			return nil, fmt.Errorf("scraper: job %q given twice", j)
		}
	}
	for _, o := range cfg.owners {
		if len(o) > 100 {
			return nil, fmt.Errorf("scraper: owner %q longer than 100 bytes", o)
		}
	}
	if cfg.rand == nil {
		cfg.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	tel, err := newTelemetry(cfg.registerer)
	if err != nil {
		return nil, err
	}
	sc := &Scraper{db: db, starter: s, cfg: cfg, tel: tel, rand: cfg.rand}
	if sc.cfg.fetch == nil {
		sc.cfg.fetch = sc.sleepFetch
	}
	return sc, nil
}

// Active returns how many harvests are in progress at this moment.
func (s *Scraper) Active() int64 { return s.active.Load() }

// Jobs returns how many harvester jobs are running: the dashboard's
// activeHarvesters. Each job is idle most of the time between harvests, so
// Active alone would read 0 on most snapshots.
func (s *Scraper) Jobs() int64 { return s.jobs.Load() }

// Run runs every job until ctx is done, then waits for them and returns
// ctx.Err(). A failed harvest is logged and counted and the job goes on.
// Each job harvests at random intervals averaging WithRate leads per
// minute, starting at a random offset so that jobs do not run in step.
func (s *Scraper) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, source := range s.cfg.jobs {
		wg.Go(func() { s.job(ctx, source) })
	}
	wg.Wait()
	return ctx.Err()
}

func (s *Scraper) job(ctx context.Context, source string) {
	s.jobs.Add(1)
	defer s.jobs.Add(-1)
	// A harvest finds (1+batch)/2 leads on average.
	period := time.Duration(float64(time.Minute) * float64(1+s.cfg.batch) / 2 / s.cfg.rate)
	wait := time.Duration(s.float64() * float64(period))
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		began := time.Now()
		_, _ = s.Harvest(ctx, source) // logged and counted
		// Uniform in [period/2, 3·period/2), measured from the harvest's
		// start, so that the average holds whatever the fetch takes.
		wait = max(0, time.Duration((0.5+s.float64())*float64(period))-time.Since(began))
	}
}

func (s *Scraper) float64() float64 {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rand.Float64()
}
