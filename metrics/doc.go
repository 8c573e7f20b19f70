// Package metrics computes the dashboard figures of a METRICS_UPDATE
// ([notify.Metrics]: total and qualified leads, conversion rate, score
// average, processing time, new and processed leads today, growth, leads by
// source and by status, active harvesters) from the leads table, through
// the application's *gorm.DB, and publishes them as leads change.
//
// A first program:
//
//	calc, err := metrics.New(db, metrics.WithLocation(paris))
//	if err != nil {
//		return err
//	}
//	if err := calc.Migrate(ctx); err != nil { // indexes and aggregates; cheap once done
//		return err
//	}
//	pub, err := metrics.NewPublisher(calc, notifier, metrics.PublisherConfig{Logger: logger})
//	if err != nil {
//		return err
//	}
//	defer pub.Close()
//	// on every committed change of a lead: pub.Trigger()
//
// A [Calculator.Snapshot] is two queries: the leads of the last two weeks,
// from the partial indexes [Calculator.EnsureIndexes] creates, and the live
// leads by (source, status), read on PostgreSQL from the incremental
// aggregates of [Calculator.EnsureAggregates] (a few rows, whatever the size
// of the table) or else by one GROUP BY over the table. "Today" is the
// calendar day in the location of [WithLocation], by the clock of
// [WithClock]; the week windows are rolling. PostgreSQL is the primary
// database; SQLite (github.com/glebarez/sqlite, 3.30 or later) gives the
// same figures, always reading the table. The README's benchmark section
// has the costs.
//
// [Calculator.Analytics] computes the processing analytics
// ([notify.Analytics]: leads created and processed per interval by source,
// processing-time percentiles over the last hour and day, the workflow
// funnel, failures per activity recorded with [Calculator.RecordFailure])
// from range scans over the last day and the same (source, status) groups;
// analytics.go defines each figure. A Publisher given
// PublisherConfig.Analytics computes them with the figures, in the same
// coalesced computation, and hands them to the sink's
// NotifyAnalyticsUpdate.
//
// # Concurrency
//
// A Calculator is safe for concurrent use and starts no goroutine. A
// Publisher is safe for concurrent use: [NewPublisher] starts its one
// goroutine, which computes at once and then as [Publisher.Trigger] (which
// never blocks) and the refresh period ask, at most once per interval;
// [Publisher.Close] stops it and waits for it.
package metrics
