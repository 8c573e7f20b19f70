package workflow

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Option configures a Runner.
type Option func(*config)

type config struct {
	failureRate float64
	stepDelay   time.Duration
	concurrency int
	threshold   float64
	rand        *rand.Rand
	logger      log.Logger
	registerer  prometheus.Registerer
	cleanup     time.Duration
	onFailure   func(ctx context.Context, leadID int64, activity string)
	withWrites  bool // WithEventsInTransactions
}

func defaults() config {
	return config{
		failureRate: 0.05,
		stepDelay:   300 * time.Millisecond,
		concurrency: 8,
		threshold:   60,
		logger:      log.NewNopLogger(),
		cleanup:     5 * time.Second,
	}
}

// WithFailureRate sets the probability, from 0 to 1, that each activity
// fails with a simulated, realistic reason, so that failures are visible on
// a dashboard. Defaults to 0.05; 0 disables failures.
func WithFailureRate(p float64) Option { return func(c *config) { c.failureRate = p } }

// WithStepDelay sets how long each simulated activity takes, so that a
// dashboard sees the steps one by one. Defaults to 300ms; 0 runs the
// workflow as fast as the database allows (tests).
func WithStepDelay(d time.Duration) Option { return func(c *config) { c.stepDelay = d } }

// WithConcurrency bounds how many workflows run at once. Beyond it Start and
// Process refuse with ErrBusy (HTTP 503) instead of queueing: a queue would
// hide overload from the caller and hold leads in New for an unbounded
// time, while a refusal lets the API answer 503 and a scraper log and move
// on. Defaults to 8.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithThreshold sets the score, from 0 to 100, at or above which Vet
// qualifies a lead; below it the lead is disqualified. Defaults to 60.
func WithThreshold(score float64) Option { return func(c *config) { c.threshold = score } }

// WithSeed makes the simulated randomness (failures, scores' jitter,
// enrichment data) reproducible: it comes from a PCG generator seeded with
// seed. Defaults to a random seed.
func WithSeed(seed uint64) Option {
	return func(c *config) { c.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithLogger sets where workflow failures and notification errors are
// logged. Defaults to log.NewNopLogger().
func WithLogger(l log.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegisterer registers the Runner's collectors on r:
// leadupdates_workflow_runs_total{outcome}, leadupdates_workflow_refused_total{reason},
// leadupdates_workflow_notify_errors_total and leadupdates_workflow_running.
// By default nothing is registered.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithOnFailure sets a function called, on the Runner's goroutine for the
// run, each time a workflow fails, with the activity that failed (Reset,
// Enrich, Score, Vet or ZohoUpsert): the example server records it for the
// failures of its processing analytics. It must not block for long.
func WithOnFailure(f func(ctx context.Context, leadID int64, activity string)) Option {
	return func(c *config) { c.onFailure = f }
}

// WithEventsInTransactions gives the workflow's own events to the
// interceptor's Sink with the workflow's writes (events.WithHooks) instead
// of sending them after: WORKFLOW_STARTED ahead of the changes of its first
// committed write, WORKFLOW_COMPLETED behind those of its last one, and
// WORKFLOW_FAILED behind those of the move to Failed. With
// interceptor.WithEventLog and a Notifier with notify.WithLog they are then
// logged in those transactions, so each exists if and only if its write
// committed, and a crash between a write and its event cannot lose the
// event. A WORKFLOW_FAILED with no write of its own (the lead was changed
// by someone else, or the database is away) is appended on its own,
// retried while the database is unavailable within the cleanup time;
// given up, it is logged and counted. The Sink must be an *events.Bridge.
// By default the events are sent after the writes.
func WithEventsInTransactions() Option { return func(c *config) { c.withWrites = true } }
