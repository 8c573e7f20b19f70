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
// before. Timestamp columns are expected to be timestamptz.
//
// # Cost
//
// A [Calculator.Snapshot] is two queries: one over the leads of the last 14
// days and the last 24 hours, answered from the indexes [Calculator.EnsureIndexes]
// creates, and one aggregate over every live lead grouped by (source,
// status) from which totals, qualified leads, the score average and both maps
// are derived. The second grows with the table: see BenchmarkSnapshot.
//
// # Concurrency
//
// A Calculator is safe for concurrent use.
//
// Only PostgreSQL is supported.
package metrics
