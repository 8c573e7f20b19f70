// Package scraper runs the example server's simulated lead harvesters:
// GoogleLeadJob and its LinkedIn, Facebook and Yellow Pages siblings. Each job periodically "fetches" a small batch of plausible
// leads (names, companies, emails, phones, websites from built-in word
// lists, an owner from a configurable list), stores them through GORM —
// where the interceptor reports each as NEW_LEAD — and starts the
// LeadProcessing workflow on each through a [Starter].
//
// A first program, with db carrying the interceptor and runner a
// *workflow.Runner:
//
//	s, err := scraper.New(db, runner, scraper.WithRate(6), scraper.WithLogger(logger), scraper.WithRegisterer(reg))
//	if err != nil { ... }
//	g.Go(func() error { return s.Run(ctx) })
//	// activeHarvesters of the dashboard:
//	metrics.WithActiveHarvesters(func(context.Context) (int64, error) { return s.Active(), nil })
//
// # Failures
//
// Nothing a harvest meets stops a job: a failed fetch or insert (e.g. the
// database is down or closed) and a refused workflow start (the runner is
// busy) are logged and counted, and the job harvests again later. A lead
// whose workflow was refused stays New.
//
// # Concurrency
//
// A Scraper is safe for concurrent use. Run blocks until its context is
// done and waits for its jobs; the caller owns the goroutine. [Scraper.Active]
// counts the harvests in progress, from the start of the fetch to the last
// workflow start.
package scraper
