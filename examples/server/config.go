package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is the server's configuration: flags, each with an environment
// fallback, validated before anything starts.
type config struct {
	addr        string
	dbURL       string // PostgreSQL URL; empty: SQLite at sqlitePath
	sqlitePath  string
	secret      string
	origins     []string
	simulate    bool
	scrapeRate  float64 // leads per minute per scraper
	failureRate float64 // probability that one workflow activity fails
	stepDelay   time.Duration
	redisURL    string
	redisChan   string
	logLevel    string
	shutdown    time.Duration
	metricsAddr string // serve /metrics there, unauthenticated; empty: on addr, for admins
	printToken  bool   // print a demo admin token even with a configured secret

	eventLog       bool          // lead events through the durable log (notify/eventlog)
	eventRetention time.Duration // how long logged events are kept; 0: forever
	eventPrune     time.Duration // how often expired events are pruned
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	var e env
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", envOr("LEADUPDATES_ADDR", ":8080"), "listen address (env LEADUPDATES_ADDR)")
	fs.StringVar(&c.dbURL, "db", os.Getenv("DATABASE_URL"), "PostgreSQL URL, e.g. postgres://user@host:5432/db (env DATABASE_URL); empty: embedded SQLite")
	fs.StringVar(&c.sqlitePath, "sqlite", envOr("LEADUPDATES_SQLITE", "leadupdates.db"), "SQLite file used when -db is empty (env LEADUPDATES_SQLITE)")
	fs.StringVar(&c.secret, "jwt-secret", os.Getenv("LEADUPDATES_JWT_SECRET"), "HMAC secret for tokens, at least 32 bytes (env LEADUPDATES_JWT_SECRET); random for the run when empty")
	origins := fs.String("origins", os.Getenv("LEADUPDATES_ORIGINS"), "comma-separated browser origins allowed cross-origin (env LEADUPDATES_ORIGINS)")
	fs.BoolVar(&c.simulate, "simulate", e.bool("LEADUPDATES_SIMULATE", true), "run the simulated scrapers (env LEADUPDATES_SIMULATE)")
	fs.Float64Var(&c.scrapeRate, "scrape-rate", e.float("LEADUPDATES_SCRAPE_RATE", 6), "leads per minute per simulated scraper (env LEADUPDATES_SCRAPE_RATE)")
	fs.Float64Var(&c.failureRate, "failure-rate", e.float("LEADUPDATES_FAILURE_RATE", 0.03), "probability that a workflow activity fails, 0-1 (env LEADUPDATES_FAILURE_RATE)")
	fs.DurationVar(&c.stepDelay, "step-delay", e.duration("LEADUPDATES_STEP_DELAY", 300*time.Millisecond), "simulated duration of each workflow activity (env LEADUPDATES_STEP_DELAY)")
	fs.StringVar(&c.redisURL, "redis", os.Getenv("REDIS_URL"), "Redis URL of the backplane that joins several instances, e.g. redis://127.0.0.1:6379 (env REDIS_URL); empty: one instance")
	fs.StringVar(&c.redisChan, "redis-channel", envOr("LEADUPDATES_REDIS_CHANNEL", "leadupdates"), "Redis channel of the backplane; instances of one deployment share it (env LEADUPDATES_REDIS_CHANNEL)")
	fs.StringVar(&c.logLevel, "log-level", envOr("LEADUPDATES_LOG_LEVEL", "info"), "debug, info, warn or error (env LEADUPDATES_LOG_LEVEL)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", os.Getenv("LEADUPDATES_METRICS_ADDR"), "serve /metrics on this address without authentication, e.g. 127.0.0.1:9090 (env LEADUPDATES_METRICS_ADDR); empty: on -addr, for admin tokens only")
	fs.BoolVar(&c.printToken, "print-token", e.bool("LEADUPDATES_PRINT_TOKEN", false), "print a 24 h demo admin token at start even when the JWT secret is configured (env LEADUPDATES_PRINT_TOKEN); with a random secret it is always printed")
	fs.BoolVar(&c.eventLog, "event-log", e.bool("LEADUPDATES_EVENT_LOG", true), "append lead events to a durable log in the database, in the transaction of their change, so that clients catch up after a disconnect or a crash and instances share one order without Redis (env LEADUPDATES_EVENT_LOG); false: in-memory delivery")
	fs.DurationVar(&c.eventRetention, "event-retention", e.duration("LEADUPDATES_EVENT_RETENTION", 720*time.Hour), "how long logged events are kept for catch-up and history; 0 keeps them forever (env LEADUPDATES_EVENT_RETENTION)")
	fs.DurationVar(&c.eventPrune, "event-prune-interval", e.duration("LEADUPDATES_EVENT_PRUNE_INTERVAL", time.Minute), "how often events older than the retention are deleted (env LEADUPDATES_EVENT_PRUNE_INTERVAL)")
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (the only subcommand is token)", fs.Arg(0))
	}
	c.origins = splitComma(*origins)
	return c, errors.Join(append(e.errs, c.validate())...)
}

func (c *config) validate() error {
	var errs []error
	if c.dbURL != "" {
		u, err := url.Parse(c.dbURL)
		switch {
		case err != nil:
			errs = append(errs, errors.New("-db: not a URL")) // the parse error would repeat it, password and all
		case u.Scheme != "postgres" && u.Scheme != "postgresql":
			errs = append(errs, fmt.Errorf("-db: scheme %q: want postgres:// or postgresql:// (leave it empty for SQLite)", u.Scheme))
		case u.Host == "" && u.Query().Get("host") == "":
			errs = append(errs, errors.New("-db: the URL names no host"))
		}
	} else if c.sqlitePath == "" {
		errs = append(errs, errors.New("-sqlite: empty path"))
	}
	if c.secret != "" && len(c.secret) < 32 {
		errs = append(errs, fmt.Errorf("-jwt-secret: %d bytes; it needs at least 32", len(c.secret)))
	}
	if c.scrapeRate <= 0 || c.scrapeRate > 6000 {
		errs = append(errs, fmt.Errorf("-scrape-rate: %g: want more than 0 and at most 6000 per minute", c.scrapeRate))
	}
	if c.failureRate < 0 || c.failureRate > 1 {
		errs = append(errs, fmt.Errorf("-failure-rate: %g: want 0 to 1", c.failureRate))
	}
	if c.stepDelay < 0 {
		errs = append(errs, fmt.Errorf("-step-delay: %v is negative", c.stepDelay))
	}
	if c.redisURL != "" {
		if u, err := url.Parse(c.redisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			errs = append(errs, fmt.Errorf("-redis: %q: want redis://host:port or rediss://", redact(c.redisURL)))
		}
	}
	if c.redisChan == "" {
		errs = append(errs, errors.New("-redis-channel: empty"))
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("-log-level: %q: want debug, info, warn or error", c.logLevel))
	}
	if c.eventRetention < 0 {
		errs = append(errs, fmt.Errorf("-event-retention: %v is negative (0 keeps events forever)", c.eventRetention))
	}
	if c.eventPrune <= 0 {
		errs = append(errs, errors.New("-event-prune-interval: must be positive"))
	}
	if c.shutdown <= 0 {
		errs = append(errs, errors.New("-shutdown-timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// env reads typed environment variables, remembering the ones that are set
// but do not parse, so that a typo fails the start instead of being ignored.
type env struct{ errs []error }

func (e *env) parse(name string, parse func(string) error) {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		if err := parse(v); err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s=%q: %v", name, v, err))
		}
	}
}

func (e *env) bool(name string, def bool) bool {
	e.parse(name, func(v string) (err error) { def, err = strconv.ParseBool(v); return })
	return def
}

func (e *env) float(name string, def float64) float64 {
	e.parse(name, func(v string) (err error) { def, err = strconv.ParseFloat(v, 64); return })
	return def
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	e.parse(name, func(v string) (err error) { def, err = time.ParseDuration(v); return })
	return def
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
