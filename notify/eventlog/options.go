package eventlog

import (
	"fmt"
	"regexp"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// An Option configures a Log.
type Option func(*config)

type config struct {
	table         string
	retention     time.Duration
	pollInterval  time.Duration
	pruneInterval time.Duration
	logger        log.Logger
	registerer    prometheus.Registerer
	leadTable     string // "" when not configured
	leadKey       string
}

func defaults() config {
	return config{
		table:         "lead_events",
		retention:     30 * 24 * time.Hour,
		pollInterval:  time.Second,
		pruneInterval: time.Minute,
		logger:        log.NewNopLogger(),
	}
}

// WithTable names the events table; the log also creates <table>_meta and
// indexes prefixed with the table's name. It must be a plain lowercase SQL
// identifier of at most 50 characters, optionally schema-qualified
// ("app.lead_events"). Defaults to "lead_events". On PostgreSQL the table's
// name (without schema) is also the pg_notify channel.
func WithTable(name string) Option { return func(c *config) { c.table = name } }

// WithRetention sets how long events are kept; older ones are pruned in the
// background. Zero or less keeps everything. Defaults to 30 days.
func WithRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// WithPollInterval sets how often the log looks for new events without
// being told (the fallback when a pg_notify or a Committed call is missed,
// or the LISTEN connection is down). Defaults to 1 second.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithPruneInterval sets how often old events are pruned. Defaults to 1
// minute.
func WithPruneInterval(d time.Duration) Option { return func(c *config) { c.pruneInterval = d } }

// WithLogger logs background failures (sequencer, listener, pruner, Tail
// retries), rate-limited. Defaults to no logging.
func WithLogger(l log.Logger) Option { return func(c *config) { c.logger = l } }

// WithRegisterer registers the log's Prometheus collectors with r. By
// default they are kept but not registered. A second Log on the same
// registry fails in Open: give each its own, e.g. with
// prometheus.WrapRegistererWith.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithLeadTable names the application's leads table and its key column
// (PostgreSQL). A transaction that wrote a lead's row holds its lock until
// it ends, which orders that lead's events as well as the log's own lock
// would: events whose leads a Batch says were written (Batch.Wrote) then
// cost no lock, and events of other leads take, besides the log's lock, a
// FOR SHARE lock on the lead's row, so that they wait for its writers.
// Without it every event takes the log's lock. Batch.Wrote must name the
// table exactly as given here (a schema-qualified name does not match an
// unqualified one: those events then take both locks, which is safe).
// table is validated as
// WithTable's name (optionally schema-qualified), key as a plain lowercase
// identifier. SQLite, with one writer at a time, ignores it.
func WithLeadTable(table, key string) Option {
	return func(c *config) { c.leadTable, c.leadKey = table, key }
}

var (
	tableName  = regexp.MustCompile(`^([a-z_][a-z0-9_]{0,49}\.)?[a-z_][a-z0-9_]{0,49}$`)
	columnName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

func (c *config) validate() error {
	if !tableName.MatchString(c.table) {
		return fmt.Errorf("eventlog: table name %q: want a lowercase SQL identifier of at most 50 characters, optionally schema-qualified", c.table)
	}
	if c.leadTable != "" || c.leadKey != "" {
		if !tableName.MatchString(c.leadTable) {
			return fmt.Errorf("eventlog: lead table %q: want a lowercase SQL identifier of at most 50 characters, optionally schema-qualified", c.leadTable)
		}
		if !columnName.MatchString(c.leadKey) {
			return fmt.Errorf("eventlog: lead table's key %q: want a lowercase SQL identifier", c.leadKey)
		}
	}
	if c.pollInterval <= 0 {
		return fmt.Errorf("eventlog: poll interval %v: must be positive", c.pollInterval)
	}
	if c.pruneInterval <= 0 {
		return fmt.Errorf("eventlog: prune interval %v: must be positive", c.pruneInterval)
	}
	if c.logger == nil {
		c.logger = log.NewNopLogger()
	}
	return nil
}
