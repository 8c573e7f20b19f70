// Package metrics computes the dashboard figures of a METRICS_UPDATE
// (total and qualified leads, conversion rate, score average, processing
// time, new and processed leads today, daily and weekly growth, leads by
// source and by status, active harvesters) from the leads table, through the
// application's *gorm.DB, over leads that are not soft-deleted.
//
// A first program:
//
//	calc, err := metrics.New(db, metrics.WithLocation(paris))
//	if err != nil {
//		return err
//	}
//	if err := calc.EnsureIndexes(ctx); err != nil { // once, in a migration
//		return err
//	}
//	d, err := calc.Snapshot(ctx)
//	if err != nil {
//		return err
//	}
//	notifier.NotifyMetricsUpdate(ctx, notify.Metrics(d)) // the application converts
//
// # Time
//
// "Today" and "yesterday" are calendar days in the location given with
// [WithLocation] (UTC by default), read from the clock given with [WithClock]
// (time.Now by default), so a test or a dashboard in another zone gets its
// own midnight. The week windows are rolling: the 7 days up to now and the 7
// before. Timestamp columns are expected to be timestamptz on PostgreSQL; on
// SQLite, the text GORM's SQLite driver writes for a time.Time (for example
// "2026-03-09 01:02:03.5-04:00", in the value's own zone), compared through
// julianday() so that mixed zones compare as instants, to the millisecond.
//
// # Cost
//
// A [Calculator.Snapshot] is two queries: one over the leads of the last 14
// days and the last 24 hours, answered from the indexes [Calculator.EnsureIndexes]
// creates, and one aggregate over every live lead grouped by (source,
// status) from which totals, qualified leads, the score average and both maps
// are derived. The second grows with the table: see BenchmarkSnapshot.
//
// # Publishing
//
// A [Publisher] pushes Dashboards to the clients: once when its Run starts,
// after changes reported with [Publisher.Trigger] (from the interceptor's
// sink, say) and every refresh period (30 s by default, so that "today"
// rolls over). Triggers coalesce: computations start at least one interval
// (1 s by default) apart, the first after a quiet interval at once and the
// triggers that arrive within the interval after it folded into one more
// when it ends. The application adapts the notifier and sends the latest
// figures to each client that connects:
//
//	pub, err := metrics.NewPublisher(calc, metrics.SinkFunc(
//		func(ctx context.Context, d metrics.Dashboard) error {
//			return notifier.NotifyMetricsUpdate(ctx, notify.Metrics(d))
//		}), metrics.WithLogger(logger), metrics.WithRegisterer(reg))
//	g.Go(func() error { return pub.Run(ctx) })
//	// in hub.WithOnConnected: if d, _, ok := pub.Latest(); ok { send d to that connection }
//
// # Concurrency
//
// A Calculator is safe for concurrent use. A Publisher is safe for
// concurrent use and its Trigger never blocks.
//
// PostgreSQL is the primary database. SQLite, through
// github.com/glebarez/sqlite (version 3.30 or later, for FILTER), is
// supported for an embedded default: the same figures, computed by the same
// two queries written for it; [Calculator.EnsureIndexes] there creates plain
// partial indexes. Other dialects are refused by [New].
package metrics
