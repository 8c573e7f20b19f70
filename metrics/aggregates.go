package metrics

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The incrementally maintained aggregates (PostgreSQL only).
//
// EnsureAggregates creates, in the leads table's schema:
//
//   - the delta table <table>_metrics_counts (source text, status text,
//     n bigint, n_scored bigint, score_sum numeric), without index: every
//     row is a signed change of the live leads of one (source, status);
//     the figures are the sums per (source, status);
//   - the trigger function <table>_metrics_counts(), which appends one row
//     per (source, status) a statement changed, computed from the
//     statement's transition tables;
//   - four statement-level AFTER triggers on the leads table, named
//     metrics_counts_insert, _update, _delete and _truncate.
//
// Writers only append to the delta table, so concurrent writers never wait
// for each other there, and the rows of a transaction become visible when it
// commits, with the leads it changed (and not at all if it rolls back).

// triggerNames are the triggers EnsureAggregates creates, by event.
var triggerNames = []struct{ name, event, referencing string }{
	{"metrics_counts_insert", "INSERT", "REFERENCING NEW TABLE AS metrics_new"},
	{"metrics_counts_update", "UPDATE", "REFERENCING OLD TABLE AS metrics_old NEW TABLE AS metrics_new"},
	{"metrics_counts_delete", "DELETE", "REFERENCING OLD TABLE AS metrics_old"},
	{"metrics_counts_truncate", "TRUNCATE", ""},
}

// advisoryClass is the first key of the advisory lock that serializes
// compactions of one delta table ("metr"); the second is the hash of its
// name.
const advisoryClass = 0x6d657472

// aggSQL holds the statements of the aggregates of one table, built for its
// schema.
type aggSQL struct {
	delta, function string // quoted, schema-qualified
	lockKey         string // the delta table's qualified name, for the advisory lock
	create          []string
	backfill        string
	drop            []string
	fingerprint     string // the function's comment: a hash of create
	read, compact   string
}

// The statements of the aggregates, with {delta}, {table}, {src}, {st},
// {sc}, {live}, {lockclass} and {lockkey} filled in by aggregateSQL. Any
// change to the first two changes the fingerprint, and EnsureAggregates
// then reinstalls.
const (
	deltaTableSQL = `CREATE TABLE IF NOT EXISTS {delta} (
	source text, status text,
	n bigint NOT NULL, n_scored bigint NOT NULL, score_sum numeric NOT NULL)`

	// SECURITY DEFINER: writers need no privilege on the delta table (a
	// trigger function cannot be called directly). search_path is pinned,
	// as it must be then: every name is qualified, and a writer's
	// search_path must not change what the trigger does.
	triggerFunctionSQL = `CREATE OR REPLACE FUNCTION {delta}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $metrics$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO {delta} (source, status, n, n_scored, score_sum)
		SELECT {src}, {st}, count(*), count({sc}), COALESCE(sum({sc}), 0)
		FROM metrics_new WHERE {live} GROUP BY 1, 2;
	ELSIF TG_OP = 'UPDATE' THEN
		INSERT INTO {delta} (source, status, n, n_scored, score_sum)
		SELECT s, t, sum(n), sum(ns), COALESCE(sum(ss), 0) FROM (
			SELECT {src} AS s, {st} AS t, 1 AS n, CASE WHEN {sc} IS NULL THEN 0 ELSE 1 END AS ns, {sc} AS ss
			FROM metrics_new WHERE {live}
			UNION ALL
			SELECT {src}, {st}, -1, CASE WHEN {sc} IS NULL THEN 0 ELSE -1 END, -{sc}
			FROM metrics_old WHERE {live}) x
		GROUP BY s, t
		HAVING sum(n) <> 0 OR sum(ns) <> 0 OR COALESCE(sum(ss), 0) <> 0;
	ELSIF TG_OP = 'DELETE' THEN
		INSERT INTO {delta} (source, status, n, n_scored, score_sum)
		SELECT {src}, {st}, -count(*), -count({sc}), -COALESCE(sum({sc}), 0)
		FROM metrics_old WHERE {live} GROUP BY 1, 2;
	ELSIF TG_OP = 'TRUNCATE' THEN
		-- After any compaction in progress, so that this DELETE sees what
		-- it re-inserts.
		PERFORM pg_advisory_xact_lock({lockclass}, hashtext({lockkey}));
		DELETE FROM {delta};
	END IF;
	RETURN NULL;
END
$metrics$`

	backfillSQL = `INSERT INTO {delta} (source, status, n, n_scored, score_sum)
SELECT {src}, {st}, count(*), count({sc}), COALESCE(sum({sc}), 0)
FROM {table} WHERE {live} GROUP BY 1, 2`

	// readDeltaSQL and compactSQL return the groups as the group query
	// does, plus how many delta rows each group had.
	readDeltaSQL = `SELECT source, status, CAST(sum(n) AS bigint), CAST(sum(n_scored) AS bigint),
	CAST(sum(score_sum) AS double precision), count(*)
FROM {delta} GROUP BY source, status`

	compactSQL = `WITH gone AS (DELETE FROM {delta} RETURNING source, status, n, n_scored, score_sum),
kept AS (INSERT INTO {delta} (source, status, n, n_scored, score_sum)
	SELECT source, status, sum(n), sum(n_scored), sum(score_sum) FROM gone GROUP BY source, status
	HAVING sum(n) <> 0 OR sum(n_scored) <> 0 OR sum(score_sum) <> 0
	RETURNING source, status, n, n_scored, score_sum)
SELECT source, status, n, n_scored, CAST(score_sum AS double precision), 1 FROM kept`
)

// aggregateSQL builds the statements for the leads table in schema.
func (c *Calculator) aggregateSQL(schema string) aggSQL {
	cfg := c.cfg
	_, base := splitTable(cfg.table)
	q := c.quote
	var a aggSQL
	a.delta = q(schema) + "." + q(base+"_metrics_counts")
	a.function = a.delta // functions and tables have separate names
	a.lockKey = schema + "." + base + "_metrics_counts"
	table := q(schema) + "." + q(base)
	r := strings.NewReplacer(
		"{delta}", a.delta, "{table}", table,
		"{src}", "CAST("+q(cfg.source)+" AS text)",
		"{st}", "CAST("+q(cfg.status)+" AS text)",
		"{sc}", "CAST("+q(cfg.score)+" AS numeric)",
		"{live}", q(cfg.deletedAt)+" IS NULL",
		"{lockclass}", fmt.Sprint(advisoryClass),
		"{lockkey}", "'"+strings.ReplaceAll(a.lockKey, "'", "''")+"'",
	)
	a.create = []string{r.Replace(deltaTableSQL), r.Replace(triggerFunctionSQL)}
	for _, t := range triggerNames {
		a.create = append(a.create,
			"DROP TRIGGER IF EXISTS "+q(t.name)+" ON "+table,
			"CREATE TRIGGER "+q(t.name)+" AFTER "+t.event+" ON "+table+" "+t.referencing+
				" FOR EACH STATEMENT EXECUTE FUNCTION "+a.function+"()")
	}
	sum := sha256.Sum256([]byte(strings.Join(a.create, ";\n")))
	a.fingerprint = "metrics aggregates " + hex.EncodeToString(sum[:8])
	a.create = append(a.create, "COMMENT ON FUNCTION "+a.function+"() IS '"+a.fingerprint+"'")
	a.backfill = r.Replace(backfillSQL)
	for _, t := range triggerNames {
		a.drop = append(a.drop, "DROP TRIGGER IF EXISTS "+q(t.name)+" ON "+table)
	}
	a.drop = append(a.drop, "DROP FUNCTION IF EXISTS "+a.function+"()", "DROP TABLE IF EXISTS "+a.delta)
	a.read = r.Replace(readDeltaSQL)
	a.compact = r.Replace(compactSQL)
	return a
}

// aggState is what detection found: the aggregates are used when on.
type aggState struct {
	on  bool
	sql aggSQL
}

// ErrAggregatesUnsupported is returned by EnsureAggregates on a database
// other than PostgreSQL.
var ErrAggregatesUnsupported = fmt.Errorf("metrics: incremental aggregates need PostgreSQL: %w", errors.ErrUnsupported)

// detectSQL finds the leads table's schema and what of the aggregates exists
// in it; no row when the table does not exist.
const detectSQL = `SELECT n.nspname,
	COALESCE(obj_description(to_regprocedure(quote_ident(n.nspname) || '.' || quote_ident(@delta) || '()'), 'pg_proc'), ''),
	to_regclass(quote_ident(n.nspname) || '.' || quote_ident(@delta)) IS NOT NULL,
	(SELECT count(*) FROM pg_catalog.pg_trigger t
		WHERE t.tgrelid = c.oid AND t.tgenabled <> 'D' AND t.tgname IN
		('metrics_counts_insert', 'metrics_counts_update', 'metrics_counts_delete', 'metrics_counts_truncate'))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(@table)`

// detect reads the catalog: the aggregates are on when the delta table, the
// function with the fingerprint of this Calculator's configuration and the
// four triggers, enabled, exist. It returns nil, nil when the table does not
// exist.
func (c *Calculator) detect(ctx context.Context, db *gorm.DB) (*aggState, error) {
	if !c.dialect.aggregates {
		return &aggState{}, nil
	}
	_, base := splitTable(c.cfg.table)
	rows, err := db.WithContext(ctx).Raw(detectSQL, map[string]any{
		"delta": base + "_metrics_counts", "table": c.quote(c.cfg.table),
	}).Rows()
	if err != nil {
		return nil, fmt.Errorf("metrics: detect aggregates: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var (
		schema, comment string
		delta           bool
		triggers        int
	)
	if err := rows.Scan(&schema, &comment, &delta, &triggers); err != nil {
		return nil, fmt.Errorf("metrics: detect aggregates: %w", err)
	}
	s := c.aggregateSQL(schema)
	return &aggState{on: delta && comment == s.fingerprint && triggers == len(triggerNames), sql: s}, rows.Close()
}

// state returns the detected state, detecting it on first use.
func (c *Calculator) state(ctx context.Context) (*aggState, error) {
	if s := c.agg.Load(); s != nil {
		return s, nil
	}
	if c.cfg.direct {
		s := &aggState{}
		c.agg.Store(s)
		return s, nil
	}
	s, err := c.detect(ctx, c.db)
	if err != nil || s == nil {
		return &aggState{}, err // a missing table: the direct query reports it
	}
	c.agg.Store(s)
	return s, nil
}

// Aggregated reports whether Snapshot reads the incrementally maintained
// aggregates rather than every live lead. The answer is detected once (one
// catalog query) and then cached; EnsureAggregates and DropAggregates
// through this Calculator, and a failing read of the delta table, detect
// again.
func (c *Calculator) Aggregated(ctx context.Context) (bool, error) {
	s, err := c.state(ctx)
	return s.on, err
}

// Migrate runs EnsureIndexes, EnsureFailures and then, on PostgreSQL,
// EnsureAggregates: the whole migration a Calculator needs. On SQLite it
// only creates the indexes and the failures table.
// Like EnsureIndexes it must not run inside a transaction.
func (c *Calculator) Migrate(ctx context.Context) error {
	if err := c.EnsureIndexes(ctx); err != nil {
		return err
	}
	if err := c.EnsureFailures(ctx); err != nil {
		return err
	}
	if !c.dialect.aggregates {
		return nil
	}
	return c.EnsureAggregates(ctx)
}

// EnsureAggregates installs, on PostgreSQL, the incrementally maintained
// aggregates that let Snapshot read a few rows instead of every live lead:
// a delta table <table>_metrics_counts and statement-level triggers on the
// leads table that append to it the signed changes of every INSERT, UPDATE
// (including ON CONFLICT DO UPDATE), DELETE and TRUNCATE, whoever writes.
//
// It does nothing when they are installed for this Calculator's columns.
// Otherwise, in one transaction, it locks the leads table in SHARE ROW
// EXCLUSIVE mode (readers go on, writers wait: the lock CREATE TRIGGER
// takes anyway, taken first so that two migrations cannot deadlock),
// creates or replaces the table, function and triggers, and fills the delta
// table from the existing leads; the writers' wait is the time of one
// aggregate over the table. Give ctx a deadline if the table may be locked
// by long transactions: the lock request queues writers behind it while it
// waits.
//
// The triggers append one signed row per (source, status) a statement
// changed, from its transition tables: writers never wait for each other
// there, their rows commit or roll back with their leads, and every writer
// is counted (GORM or not, upserts included). Soft deletion (deleted_at set)
// leaves the live set. The function is SECURITY DEFINER with a pinned
// search_path, so writers need no privilege on the delta table. Writes under
// session_replication_role = replica (logical replication's apply, some
// bulk loaders) do not fire triggers: reinstall after such a load
// (DropAggregates, then EnsureAggregates). Snapshot compacts the delta
// table as it goes (see WithCompaction and Compact) and reads the table
// directly when the aggregates are not installed, or with
// WithoutAggregates; Aggregated reports which. The triggers are tested on
// plain, not partitioned, tables.
//
// On other databases it returns ErrAggregatesUnsupported; Snapshot there
// reads the table directly.
func (c *Calculator) EnsureAggregates(ctx context.Context) error {
	if !c.dialect.aggregates {
		return ErrAggregatesUnsupported
	}
	defer c.agg.Store(nil)
	s, err := c.detect(ctx, c.db)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("metrics: ensure aggregates: table %s does not exist", c.cfg.table)
	}
	if s.on {
		return nil
	}
	err = c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("LOCK TABLE " + c.quote(c.cfg.table) + " IN SHARE ROW EXCLUSIVE MODE").Error; err != nil {
			return err
		}
		s, err := c.detect(ctx, tx) // again, under the lock
		if err != nil || s.on {
			return err
		}
		for _, stmt := range s.sql.create {
			if err := tx.Exec(stmt).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec("DELETE FROM " + s.sql.delta).Error; err != nil {
			return err
		}
		return tx.Exec(s.sql.backfill).Error
	})
	if err != nil {
		return fmt.Errorf("metrics: ensure aggregates: %w", err)
	}
	return nil
}

// DropAggregates removes, in one transaction, what EnsureAggregates
// created: the triggers (DROP TRIGGER locks the leads table exclusively for
// an instant), the function and the delta table. Snapshot then reads the
// table directly, at once through this Calculator and, through others, from
// their next snapshot (their read of the delta table fails, they detect
// again). It does nothing on SQLite or when nothing is installed. Call it
// before dropping the leads table: DROP TABLE takes the triggers with it
// but leaves the delta table and the function.
func (c *Calculator) DropAggregates(ctx context.Context) error {
	if !c.dialect.aggregates {
		return nil
	}
	defer c.agg.Store(nil)
	s, err := c.detect(ctx, c.db)
	if err != nil || s == nil {
		return err
	}
	err = c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, stmt := range s.sql.drop {
			if err := tx.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("metrics: drop aggregates: %w", err)
	}
	return nil
}

// group is the live leads of one (source, status).
type group struct {
	source, status sql.NullString
	n, scored      int64
	scoreSum       float64
}

// readGroups runs a query returning (source, status, n, n_scored,
// score_sum[, delta rows]) and returns the groups and the delta rows.
func readGroups(db *gorm.DB, query string, withRows bool) ([]group, int64, error) {
	rows, err := db.Raw(query).Rows()
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var (
		gs    []group
		total int64
	)
	for rows.Next() {
		var (
			g   group
			sum sql.NullFloat64
			r   int64
		)
		dst := []any{&g.source, &g.status, &g.n, &g.scored, &sum}
		if withRows {
			dst = append(dst, &r)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, 0, err
		}
		g.scoreSum = sum.Float64
		total += r
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return gs, total, rows.Close()
}

// groups returns the live leads by (source, status): from the aggregates
// when they are installed (compacting them when due), from the table
// otherwise.
func (c *Calculator) groups(ctx context.Context) ([]group, error) {
	s, err := c.state(ctx)
	if err != nil {
		return nil, err
	}
	if !s.on {
		gs, _, err := readGroups(c.db.WithContext(ctx), c.groupSQL, false)
		return gs, err
	}
	var gs []group
	if c.compactDue() && c.compacting.TryLock() {
		gs, err = c.compact(ctx, s)
		c.compacting.Unlock()
	} else {
		var rows int64
		gs, rows, err = readGroups(c.db.WithContext(ctx), s.sql.read, true)
		if err == nil {
			c.observe(rows, int64(len(gs)), false)
		}
	}
	if err != nil {
		// Dropped by another process? Detect again and, if so, read the
		// table.
		c.agg.Store(nil)
		if s2, err2 := c.state(ctx); err2 == nil && !s2.on {
			gs, _, err = readGroups(c.db.WithContext(ctx), c.groupSQL, false)
		}
	}
	return gs, err
}

// Compact folds the rows of the delta table into one per (source, status),
// in one transaction, while writers go on appending. Snapshot does it on its
// own (see WithCompaction); Compact is for an application that prefers to
// schedule it. It does nothing when the aggregates are not installed.
func (c *Calculator) Compact(ctx context.Context) error {
	s, err := c.state(ctx)
	if err != nil || !s.on {
		return err
	}
	c.compacting.Lock()
	defer c.compacting.Unlock()
	_, err = c.compact(ctx, s)
	return err
}

// compact runs the compaction and returns the groups it leaves, which are
// the figures at its snapshot. Compactions of one table, from any process,
// take turns on an advisory lock; one that finds it taken reads instead.
// Writers are never blocked: they only append, and the DELETE removes only
// the rows committed before it started.
func (c *Calculator) compact(ctx context.Context, s *aggState) ([]group, error) {
	var (
		gs        []group
		rows      int64
		compacted bool
	)
	// READ COMMITTED whatever the server's default: each statement sees
	// what committed before it started.
	rc := &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	err := c.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw("SELECT pg_try_advisory_xact_lock(?, hashtext(?))", advisoryClass, s.sql.lockKey).
			Row().Scan(&compacted); err != nil {
			return err
		}
		// A new statement, hence a new snapshot in READ COMMITTED: it sees
		// the result of the compaction that held the lock before.
		q := s.sql.read
		if compacted {
			q = s.sql.compact
		}
		var err error
		gs, rows, err = readGroups(tx, q, true)
		return err
	}, rc)
	if err != nil {
		return nil, fmt.Errorf("metrics: compact aggregates: %w", err)
	}
	c.observe(rows, int64(len(gs)), compacted)
	return gs, nil
}

// observe records what a read of the delta table found.
func (c *Calculator) observe(rows, groups int64, compacted bool) {
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	c.deltaRows, c.deltaGroups = rows, groups
	if compacted {
		c.lastCompact = time.Now()
	}
}

// compactDue: the last read found more delta rows than the threshold, or
// any row beyond one per group and the period has passed since this
// Calculator's last compaction.
func (c *Calculator) compactDue() bool {
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	return c.deltaRows > int64(c.cfg.compactRows) ||
		c.deltaRows > c.deltaGroups && time.Since(c.lastCompact) >= c.cfg.compactEvery
}
