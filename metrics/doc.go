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
//	if err := calc.Migrate(ctx); err != nil { // in a migration step; cheap once done
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
// A [Calculator.Snapshot] is two queries. One reads the leads of the last 14
// days and the last 24 hours, answered from the partial indexes
// [Calculator.EnsureIndexes] creates. The other gives the live leads by
// (source, status), from which totals, qualified leads, the score average
// and both maps are derived: read from the incremental aggregates when they
// are installed, a few rows whatever the size of the table; otherwise one
// GROUP BY over every live lead, which grows with the table.
//
// [Calculator.Migrate] runs EnsureIndexes and, on PostgreSQL,
// [Calculator.EnsureAggregates]. Measured here with BenchmarkSnapshot
// (go test -run '^$' -bench Snapshot -benchtime 5x ./metrics/), all in one
// run, ms per snapshot:
//
//	                            100,000 leads   1,000,000 leads   growth
//	aggregates (compacted)              2.4              6.9         ×2.9
//	aggregates, 5,000 delta rows        5.0             11.2         ×2.2
//	direct GROUP BY                      60              371         ×6.2
//	naive, one query per figure         162             1465         ×9.1
//
// The machine (2 vCPUs) was shared with other jobs, load average 9 to 14:
// over five runs the aggregates took 6 to 11 ms at 1,000,000 leads (27 ms at
// most with 5,000 delta rows), the direct query 370 to 1340 ms. With the
// aggregates the cost no longer follows the size of the table but the leads
// of the last two weeks, which the window query reads (and the delta rows not
// yet compacted, a few ms for 5,000).
//
// # Incremental aggregates (PostgreSQL)
//
// [Calculator.EnsureAggregates] creates, next to the leads table, a delta
// table <table>_metrics_counts (source, status, n, n_scored, score_sum) and
// four statement-level AFTER triggers (INSERT, UPDATE, DELETE, TRUNCATE)
// calling one plpgsql function. From the statement's transition tables
// (REFERENCING OLD TABLE / NEW TABLE) the function appends one signed row
// per (source, status) the statement changed: +1 per live lead inserted, −1
// per live lead deleted, −old +new per lead updated, where soft deletion
// (deleted_at set) leaves the live set and undeletion enters it, and a NULL
// score counts in n but not in n_scored nor score_sum (numeric, so that sums
// of signed deltas stay exact). An UPDATE that changes none of the counted
// columns appends nothing. TRUNCATE empties the delta table (after any
// compaction in progress). The function
// is SECURITY DEFINER with a pinned search_path, so writers need no
// privilege on the delta table.
//
// The rows are only appended, so concurrent writers never wait for each
// other there; they become visible when the writer's transaction commits,
// together with its leads, and vanish with it if it rolls back. Every
// writer is counted, GORM or not, this process or another (bulk loads, raw
// SQL, psql), upserts (INSERT ... ON CONFLICT DO UPDATE) included. Snapshot
// sums the delta table by (source, status); at any MVCC snapshot those sums
// equal the direct GROUP BY at the same snapshot.
//
// Compaction keeps the delta table small: in one transaction, under a
// transaction-level advisory lock that makes compactions of the table take
// turns across processes, one statement deletes the rows it sees,
// re-inserts their sums per (source, status) and returns them as that
// snapshot's figures. Rows that concurrent writers commit meanwhile are not
// seen, hence neither deleted nor lost, and writers never wait for it.
// Snapshot compacts instead of reading when its previous read found more
// than 5,000 rows, or any row beyond one per group a minute after this
// Calculator's last compaction ([WithCompaction] changes both);
// [Calculator.Compact] does it on demand.
//
// Installing is one transaction that takes the leads table in SHARE ROW
// EXCLUSIVE mode (the mode CREATE TRIGGER needs anyway, taken first so that
// two migrations cannot deadlock upgrading their locks): readers go on,
// writers wait while the triggers are created and the delta table is
// filled from the existing leads, the time of one GROUP BY over the table
// (0.7 to 0.9 s per million leads here). Give ctx a deadline: while the
// lock request waits for long transactions, writers queue behind it.
// EnsureAggregates is a no-op when the aggregates are installed for the
// Calculator's columns (a fingerprint in the function's comment says so)
// and reinstalls them otherwise, as after a version of this package that
// changes the function: until then Snapshot reads the table directly.
// [Calculator.DropAggregates] removes them in one transaction (DROP TABLE of
// the leads would leave the delta table and the function behind).
//
// Snapshot detects once, with one catalog query, whether the aggregates are
// installed (delta table, function with the expected fingerprint, four
// enabled triggers), and reads the table directly when they are not, on
// SQLite, or with [WithoutAggregates]; [Calculator.Aggregated] reports
// which. EnsureAggregates and DropAggregates detect again; a Calculator
// whose read of the delta table fails (dropped by another process) detects
// again and falls back within the same Snapshot. Disabling or dropping a
// trigger by hand is not noticed until the next detection: use
// DropAggregates.
//
// Writes cost more with the triggers (BenchmarkWriteCost: single-row
// statements on 100,000 leads, alternated between a table with them and
// one without; go test -run '^$' -bench WriteCost -benchtime 3s
// ./metrics/), over three runs. With durable commits (synchronous_commit
// on, the default) the flush of each commit, 4 to 10 ms on this machine's
// disk, dominates and the difference is within the noise (ratios 0.93 to
// 1.24). The execution alone (synchronous_commit off) costs 30 to 130 µs
// more per statement: ×1.14 to ×1.19 for an INSERT, ×1.19 to ×1.41 for an
// UPDATE of the status, ×1.16 to ×1.40 for an UPDATE of a column no figure
// of the aggregates reads (the trigger runs and appends nothing).
// A bulk statement fires the trigger once, which aggregates its rows in one
// query. Writes under
// session_replication_role = replica (logical replication's apply, some
// bulk loaders) do not fire the triggers, as for any ordinary trigger:
// replicate the delta table along with the leads, or reinstall after such a
// load (DropAggregates then EnsureAggregates). The triggers are tested on
// plain (not partitioned) tables.
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
// two queries written for it, always reading the table directly (an
// embedded database is small: [Calculator.EnsureAggregates] returns
// [ErrAggregatesUnsupported] and [Calculator.Migrate] only creates the
// indexes); [Calculator.EnsureIndexes] there creates plain partial indexes.
// Other dialects are refused by [New].
package metrics
