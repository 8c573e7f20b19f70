package metrics

import (
	"context"
	"fmt"
)

// EnsureIndexes creates, if they do not exist, the partial indexes (over
// rows WHERE deleted_at IS NULL) that Snapshot's queries use:
//
//   - (created_at) INCLUDE (source): new leads today, yesterday, in the last
//     two weeks and the sources of the last 15 minutes, from an index-only
//     range scan;
//   - (processed_at) INCLUDE (created_at): processed today and the
//     processing time of the last 24 hours, likewise;
//   - (source, status) INCLUDE (score): lets PostgreSQL answer the one
//     full-table aggregate from the index rather than the table when its
//     visibility map is current (after VACUUM); with the incremental
//     aggregates of EnsureAggregates (see Migrate) that aggregate is not
//     run, and the index only serves a fallback.
//
// The indexes are built CONCURRENTLY so that writers are not blocked, which
// means EnsureIndexes must not run inside a transaction. Call it from a
// migration step, once; it is cheap when the indexes exist. Their names
// start with the table's name and end in _metrics_created, _metrics_processed
// and _metrics_source_status.
//
// On SQLite the same three partial indexes are created without INCLUDE
// (the included columns are dropped) and without CONCURRENTLY; a
// schema-qualified table's schema goes on the index names. Snapshot there
// compares julianday() of the timestamps, so the time indexes serve little
// beyond the (source, status) grouping.
func (c *Calculator) EnsureIndexes(ctx context.Context) error {
	q := c.quote
	cfg := c.cfg
	schema, base := splitTable(cfg.table)
	table, prefix := q(cfg.table), ""
	if c.dialect.schemaOnIndex && schema != "" {
		// SQLite: CREATE INDEX schema.name ON table.
		table, prefix = q(base), schema+"."
	}
	where := " WHERE " + q(cfg.deletedAt) + " IS NULL"
	stmts := []struct {
		name          string
		cols, include []string
	}{
		{"_metrics_created", []string{q(cfg.createdAt)}, []string{q(cfg.source)}},
		{"_metrics_processed", []string{q(cfg.processedAt)}, []string{q(cfg.createdAt)}},
		{"_metrics_source_status", []string{q(cfg.source), q(cfg.status)}, []string{q(cfg.score)}},
	}
	for _, s := range stmts {
		sql := c.dialect.index(q(prefix+base+s.name), table, s.cols, s.include, where)
		if err := c.db.WithContext(ctx).Exec(sql).Error; err != nil {
			return fmt.Errorf("metrics: create index %s: %w", base+s.name, err)
		}
	}
	return nil
}
