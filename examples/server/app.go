package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kitlog "github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/examples/dashboard"
	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/examples/server/internal/api"
	"github.com/leadupdates/leadupdates/examples/server/internal/events"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/scraper"
	"github.com/leadupdates/leadupdates/examples/server/internal/workflow"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/jwtauth"
	"github.com/leadupdates/leadupdates/hub/pgsession"
	"github.com/leadupdates/leadupdates/hub/redisbackplane"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
)

// app is the wired system. build creates it; serve runs it until its
// context ends and then shuts it down in dependency order.
type app struct {
	cfg    config
	logger kitlog.Logger
	dbDesc string
	secret bool // the JWT secret is random for this run

	db       *gorm.DB
	log      *eventlog.Log // nil with -event-log=false
	signer   *jwtauth.Signer
	hub      *hub.Server
	notifier *notify.Notifier
	plugin   *interceptor.Plugin
	// publisher is set once build has made it, while the relay and new
	// connections may already read it.
	publisher atomic.Pointer[metrics.Publisher]
	calc      *metrics.Calculator
	runner    *workflow.Runner
	scrapers  *scraper.Scraper
	mux       *http.ServeMux
	metrics   http.Handler // /metrics

	closers []func() // run in reverse order by close
}

func build(ctx context.Context, c config, stderr io.Writer) (_ *app, err error) {
	a := &app{cfg: c, logger: newLogger(stderr, c.logLevel)}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	key, generated, err := jwtKey(c.secret)
	if err != nil {
		return nil, err
	}
	a.secret = generated
	auth, err := jwtauth.New(key)
	if err != nil {
		return nil, err
	}
	if a.signer, err = jwtauth.NewSigner(key); err != nil {
		return nil, err
	}

	if a.db, a.dbDesc, err = openDB(ctx, c); err != nil {
		return nil, err
	}
	if sqlDB, err := a.db.DB(); err == nil {
		a.closers = append(a.closers, func() { sqlDB.Close() })
	}
	if err := migrate(ctx, a.db); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The event log, on the same database: closed after everything that
	// writes to it or reads it (closers run newest first), before the
	// database.
	if c.eventLog {
		if a.log, err = openEventLog(ctx, a.db, c, a.logger, reg); err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { a.log.Close() })
	}
	// The notifier's options, which the hub's catch-up shares so that a
	// replayed event goes to whom the live one went: a salesperson's
	// connections receive only their leads. Every lead event is given with
	// its audience (notify.ForAudience): the owner the write that caused it
	// committed — returned by the interceptor's own statement, or read by
	// the workflow in its write's transaction — never a per-instance copy
	// another instance could make stale. An event given without one goes to
	// admins only.
	notifyOpts := []notify.Option{
		notify.WithAudience(func(*notify.LeadUpdateMessage) string { return "" }),
		notify.WithLogger(a.logger), notify.WithRegisterer(reg),
	}
	if a.log != nil {
		notifyOpts = append(notifyOpts, notify.WithLog(a.log))
	}

	// The hub: JWT on every request; a salesperson may join only the groups
	// of their own leads; a new connection gets the latest figures at once.
	hubOpts := []hub.Option{
		hub.WithAuthenticator(withRole(auth)),
		hub.WithGroupAuthorizer(hub.GroupAuthorizerFunc(func(ctx context.Context, p *hub.Principal, leadID int64) (bool, error) {
			if p.HasRole(access.RoleAdmin) {
				return true, nil
			}
			owner, err := access.LeadOwner(ctx, a.db, leadID)
			if errors.Is(err, access.ErrNotFound) {
				return false, nil
			}
			return err == nil && access.CanSee(p.ID, p.Roles, owner), err
		})),
		// A lead event carries its owner as committed (see the interceptor
		// below); every instance decides per connection from it.
		hub.WithFilter(notify.FilterName, func(owner string, p *hub.Principal) bool {
			return access.CanSee(p.ID, p.Roles, owner)
		}),
		hub.WithOnConnected(a.sendLatestMetrics),
		hub.WithLogger(a.logger),
		hub.WithRegisterer(reg),
	}
	if len(c.origins) > 0 {
		hubOpts = append(hubOpts, hub.WithAllowedOrigins(c.origins...))
	}
	if a.log != nil { // the hub method CatchUp replays the log
		hubOpts = append(hubOpts, hub.WithLog(notify.NewHubLog(a.log, notifyOpts...)))
		// On PostgreSQL the instances also share their stateful
		// connections' sessions: a client re-attaching to another instance
		// (no sticky sessions) resumes there, the log replaying what it missed.
		if c.dbURL != "" {
			sqlDB, err := a.db.DB()
			if err != nil {
				return nil, err
			}
			st, err := pgsession.New(ctx, sqlDB)
			if err != nil {
				return nil, err
			}
			hubOpts = append(hubOpts, hub.WithSessionStore(st))
		}
	}
	if c.redisURL != "" {
		bp, err := a.backplane(ctx, reg)
		if err != nil {
			return nil, err
		}
		hubOpts = append(hubOpts, hub.WithBackplane(bp))
	}
	if a.hub, err = hub.New(hubOpts...); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.hub.Close() })

	// The notifier. With the log it appends lead events to it and relays
	// the log, written by any instance, to this instance's connections;
	// each event it relays makes the metrics publisher look again (after
	// COMMIT, on every instance).
	var clients notify.Clients = a.hub
	if a.log != nil {
		clients = triggering{Server: a.hub, trigger: a.trigger}
	}
	if a.notifier, err = notify.New(clients, notifyOpts...); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { a.notifier.Close() })

	calc, err := metrics.New(a.db, metrics.WithActiveHarvesters(func(context.Context) (int64, error) {
		return a.scrapers.Jobs(), nil
	}))
	if err != nil {
		return nil, err
	}
	if err := calc.Migrate(ctx); err != nil { // indexes, and on PostgreSQL incrementally kept counts
		return nil, err
	}
	a.calc = calc

	// The workflow and the scrapers write through a.db, where the
	// interceptor (plugged in below, before anything runs) sees them.
	wfOpts := []workflow.Option{
		workflow.WithFailureRate(c.failureRate), workflow.WithStepDelay(c.stepDelay),
		workflow.WithLogger(a.logger), workflow.WithRegisterer(reg),
		workflow.WithOnFailure(func(ctx context.Context, id int64, activity string) {
			if err := calc.RecordFailure(ctx, id, activity, time.Now()); err != nil {
				level.Warn(a.logger).Log("msg", "could not record workflow failure", "lead_id", id, "err", err)
			}
		}),
	}
	if a.log != nil { // WORKFLOW_* logged in the transactions of the workflow's writes
		wfOpts = append(wfOpts, workflow.WithEventsInTransactions())
	}
	if a.runner, err = workflow.New(a.db, a.notifier, wfOpts...); err != nil {
		return nil, err
	}
	if a.scrapers, err = scraper.New(a.db, scraper.StarterFunc(a.runner.Submit), scraper.WithRate(c.scrapeRate),
		scraper.WithLogger(a.logger), scraper.WithRegisterer(reg)); err != nil {
		return nil, err
	}

	// The interceptor. With the log it is the log's writer: at the commit
	// of a transaction that changed leads, the bridge adds their events to
	// the transaction's batch, which is appended before COMMIT, so an
	// event exists if and only if its change committed; a failure rolls
	// the write back. Without it, strict, so that the bridge runs as a
	// transaction commits: events leave in commit order, before the
	// writer's next step, and each change triggers the metrics publisher
	// (with the log, the relay does). The publisher is started below once
	// a.db is complete (it reads at once); nothing writes before it exists.
	trigger := a.trigger
	icOpts := []interceptor.Option{interceptor.WithStrict(),
		interceptor.WithFields(interceptor.Fields{Audience: "Owner"}),
		interceptor.WithLogger(a.logger), interceptor.WithRegisterer(reg)}
	if a.log != nil {
		trigger = nil
		icOpts = append(icOpts, interceptor.WithEventLog(a.log))
	}
	bridge := events.New(a.notifier, trigger, a.logger)
	if a.plugin, err = interceptor.New(&lead.Lead{}, bridge, icOpts...); err != nil {
		return nil, err
	}
	if err := a.db.Use(a.plugin); err != nil {
		return nil, fmt.Errorf("interceptor: %w", err)
	}
	pub, err := metrics.NewPublisher(calc, a.notifier,
		metrics.PublisherConfig{Logger: a.logger, Registerer: reg, Analytics: calc})
	if err != nil {
		return nil, err
	}
	a.publisher.Store(pub)
	a.closers = append(a.closers, func() { pub.Close() })

	apiCfg := api.Config{DB: a.db, Auth: auth, Workflow: a.runner, Metrics: calc, Logger: a.logger}
	if a.log != nil {
		apiCfg.Log = a.log
	}
	rest, err := api.New(apiCfg)
	if err != nil {
		return nil, err
	}
	a.mux = http.NewServeMux()
	a.hub.Mount(a.mux)
	rest.Mount(a.mux)
	// /metrics: on its own address when -metrics-addr is set (for a
	// scraper on an internal network), else here, for admins only.
	a.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	if c.metricsAddr == "" {
		a.mux.Handle("GET /metrics", adminOnly(auth, a.metrics))
	} else {
		a.mux.Handle("GET /metrics", http.NotFoundHandler())
	}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	a.mux.HandleFunc("GET /readyz", a.ready)
	a.mux.Handle("/", dashboard.Handler()) // the dashboard's committed build
	return a, nil
}

// backplane connects to the configured Redis. An unreachable Redis at start
// is a configuration error; lost later, the hub keeps serving its own
// clients, retries, and /readyz reports it.
func (a *app) backplane(ctx context.Context, reg prometheus.Registerer) (hub.Backplane, error) {
	opt, err := redis.ParseURL(a.cfg.redisURL)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	a.closers = append(a.closers, func() { rdb.Close() })
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return nil, fmt.Errorf("redis %s unreachable: %w", redact(a.cfg.redisURL), err)
	}
	return redisbackplane.New(rdb, redisbackplane.WithChannel(a.cfg.redisChan),
		redisbackplane.WithLogger(a.logger), redisbackplane.WithRegisterer(reg))
}

// trigger asks the metrics publisher for fresh figures, once it exists.
func (a *app) trigger() {
	if p := a.publisher.Load(); p != nil {
		p.Trigger()
	}
}

// triggering is the hub as the notifier's Clients with the event log: every
// logged event it is given to publish is committed, so the figures it
// changed can be read now, on every instance.
type triggering struct {
	*hub.Server
	trigger func()
}

func (t triggering) Publish(e hub.Entry) {
	t.Server.Publish(e)
	t.trigger()
}

// sendLatestMetrics gives a new connection the current figures and
// analytics, so that a dashboard does not wait for the next change.
func (a *app) sendLatestMetrics(_ context.Context, info hub.ConnInfo) {
	pub := a.publisher.Load()
	if pub == nil {
		return
	}
	d, at, ok := pub.Latest()
	if !ok {
		return
	}
	a.hub.Client(info.ConnectionID).Send(notify.MethodMetricsUpdate, notify.MetricsUpdateMessage{
		Type: notify.TypeMetricsUpdate, Metrics: d, Timestamp: notify.Timestamp{Time: at},
	})
	if an, at, ok := pub.LatestAnalytics(); ok {
		a.hub.Client(info.ConnectionID).Send(notify.MethodAnalyticsUpdate, notify.AnalyticsUpdateMessage{
			Type: notify.TypeAnalyticsUpdate, Analytics: an, Timestamp: notify.Timestamp{Time: at},
		})
	}
}

// ready answers 200 when the database answers within a second and the hub
// can take clients (not shutting down; its backplane, if any, connected).
func (a *app) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	sqlDB, err := a.db.DB()
	if err == nil {
		err = sqlDB.PingContext(ctx)
	}
	if err != nil {
		level.Warn(a.logger).Log("msg", "not ready: database", "err", err)
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	if a.log != nil {
		// The log's table answers (the relay and catch-up read it).
		if _, err := a.log.Head(ctx); err != nil {
			level.Warn(a.logger).Log("msg", "not ready: event log", "err", err)
			http.Error(w, "event log unreadable", http.StatusServiceUnavailable)
			return
		}
	}
	if err := a.hub.Ready(ctx); err != nil {
		level.Warn(a.logger).Log("msg", "not ready: hub", "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// serve listens, starts the background work and, when ctx ends, shuts down:
// clients are told to reconnect, in-flight requests finish, background work
// stops, queued events drain — all within the shutdown timeout.
func (a *app) serve(ctx context.Context, stdout io.Writer, ready chan<- string) error {
	defer a.close()
	ln, err := net.Listen("tcp", a.cfg.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.addr, err)
	}
	// No ReadTimeout or WriteTimeout: they would cut SSE, Long Polling and
	// WebSockets. Request heads must arrive within ReadHeaderTimeout,
	// bodies at the minimum data rate; idle keep-alive connections close.
	httpSrv := &http.Server{Handler: minBodyRate(a.mux, a.hub.Path()),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	served := make(chan error, 2)
	go func() { served <- httpSrv.Serve(ln) }()
	var metricsSrv *http.Server
	if a.cfg.metricsAddr != "" {
		mln, err := net.Listen("tcp", a.cfg.metricsAddr)
		if err != nil {
			httpSrv.Close()
			<-served
			return fmt.Errorf("listen %s: %w", a.cfg.metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics)
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() { served <- metricsSrv.Serve(mln) }()
		defer metricsSrv.Close()
		fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", mln.Addr())
	}

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if a.cfg.simulate {
		wg.Go(func() { _ = a.scrapers.Run(bg) })
	}
	wg.Go(func() { a.pruneFailures(bg) })

	host := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = fmt.Sprintf("localhost:%d", tcp.Port)
	}
	fmt.Fprintf(stdout, "leadupdates example server on http://%s (database: %s)\n", host, a.dbDesc)
	if a.log != nil {
		retention := "kept forever"
		if a.cfg.eventRetention > 0 {
			retention = "kept " + a.cfg.eventRetention.String()
		}
		fmt.Fprintf(stdout, "event log: table lead_events, events %s; clients catch up with CatchUp(position)\n", retention)
	} else {
		fmt.Fprintln(stdout, "event log: off (in-memory delivery, no catch-up or history)")
	}
	fmt.Fprintf(stdout, "hub: http://%s%s\n", host, a.hub.Path())
	// A demo admin token only when the secret is this run's own (a token
	// for nothing else) or when asked for: with a configured secret it
	// would be a real credential in the terminal and the logs.
	if a.secret || a.cfg.printToken {
		demo, err := a.signer.Issue("demo", []string{access.RoleAdmin}, 24*time.Hour)
		if err != nil {
			stopBG()
			wg.Wait()
			return err
		}
		fmt.Fprintf(stdout, "dashboard: http://%s/#token=%s\n", host, demo)
		fmt.Fprintf(stdout, "demo token (admin, 24h): %s\n", demo)
	} else {
		fmt.Fprintf(stdout, "dashboard: http://%s/ (mint a token: server token -sub ... -role admin)\n", host)
	}
	if a.secret {
		fmt.Fprintln(stdout, "JWT secret: random for this run (set LEADUPDATES_JWT_SECRET to keep tokens valid across restarts)")
	}
	level.Info(a.logger).Log("msg", "listening", "addr", host, "database", a.dbDesc)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	level.Info(a.logger).Log("msg", "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.shutdown)
	defer cancel()
	// Scrapers and the publisher stop; running workflows get half the
	// budget to finish (their last events still reach connected clients);
	// then clients are told to reconnect (a Close with allowReconnect) and
	// in-flight requests finish.
	stopBG()
	wg.Wait()
	a.publisher.Load().Close()
	wctx, wcancel := context.WithTimeout(sctx, a.cfg.shutdown/2)
	if err := a.runner.Close(wctx); err != nil {
		level.Warn(a.logger).Log("msg", "workflows cut short by the shutdown", "err", err)
	}
	wcancel()
	_ = a.hub.Shutdown(sctx)
	if serr := httpSrv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		level.Warn(a.logger).Log("msg", "http shutdown", "err", serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// failureRetention is how long recorded workflow failures are kept: the
// analytics count the last day only.
const failureRetention = 48 * time.Hour

// pruneFailures deletes old workflow failures at start and then hourly,
// until ctx ends.
func (a *app) pruneFailures(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if _, err := a.calc.PruneFailures(ctx, time.Now().Add(-failureRetention)); err != nil && ctx.Err() == nil {
			level.Warn(a.logger).Log("msg", "could not prune workflow failures", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// close releases what build acquired, newest first.
func (a *app) close() {
	if a.plugin != nil {
		a.plugin.Close()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

func newLogger(w io.Writer, lvl string) kitlog.Logger {
	if w == nil {
		w = os.Stderr
	}
	l := kitlog.NewLogfmtLogger(kitlog.NewSyncWriter(w))
	l = kitlog.With(l, "ts", kitlog.DefaultTimestampUTC)
	return level.NewFilter(l, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
}

// withRole refuses, at the hub, a token with neither the admin nor the
// sales role, as the REST API does: such a user could see nothing anyway.
func withRole(auth hub.Authenticator) hub.Authenticator {
	return hub.AuthenticatorFunc(func(r *http.Request) (*hub.Principal, error) {
		p, err := auth.Authenticate(r)
		if err != nil {
			return nil, err
		}
		if p == nil || (!p.HasRole(access.RoleAdmin) && !p.HasRole(access.RoleSales)) {
			return nil, errors.New("the token has neither the admin nor the sales role")
		}
		return p, nil
	})
}

// adminOnly serves h to requests with an admin's token in the
// Authorization header.
func adminOnly(auth hub.Authenticator, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "missing token", http.StatusUnauthorized)
			return
		}
		p, err := auth.Authenticate(r)
		if err != nil || p == nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		if !p.HasRole(access.RoleAdmin) {
			http.Error(w, "admins only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
