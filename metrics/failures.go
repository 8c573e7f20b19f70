package metrics

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// failuresTable is the (unquoted) name of the table of RecordFailure:
// <table>_workflow_failures, in the leads table's schema.
func (c *Calculator) failuresTable() string { return c.cfg.table + "_workflow_failures" }

// EnsureFailures creates, if it does not exist, the table where
// RecordFailure records workflow failures, <table>_workflow_failures
// (failed_at, activity, lead_id), with an index on failed_at. Migrate calls
// it.
func (c *Calculator) EnsureFailures(ctx context.Context) error {
	ts, idx := "timestamptz", "CREATE INDEX IF NOT EXISTS "
	schema, base := splitTable(c.failuresTable())
	table, index := c.quote(c.failuresTable()), c.quote(base+"_at")
	if c.dialect.name == "sqlite" {
		ts = "datetime"
		if schema != "" {
			table, index = c.quote(base), c.quote(schema+"."+base+"_at")
		}
	}
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS " + c.quote(c.failuresTable()) +
			" (failed_at " + ts + " NOT NULL, activity text NOT NULL, lead_id bigint)",
		idx + index + " ON " + table + " (failed_at)",
	}
	for _, s := range stmts {
		if err := c.db.WithContext(ctx).Exec(s).Error; err != nil {
			return fmt.Errorf("metrics: ensure failures table: %w", err)
		}
	}
	return nil
}

// RecordFailure records that the workflow failed at activity for lead
// leadID at time at, for the failures of Analytics. The application calls
// it where its workflow fails; the table must exist (EnsureFailures,
// Migrate). Analytics reads the last day only: delete older rows with
// PruneFailures.
func (c *Calculator) RecordFailure(ctx context.Context, leadID int64, activity string, at time.Time) error {
	err := c.db.WithContext(ctx).Exec("INSERT INTO "+c.quote(c.failuresTable())+" (failed_at, activity, lead_id) VALUES (?, ?, ?)",
		c.dialect.arg(at.UTC()), activity, leadID).Error
	if err != nil {
		return fmt.Errorf("metrics: record failure: %w", err)
	}
	return nil
}

// pruneFailuresBatch is how many rows one PruneFailures statement deletes
// at most, so that each is short and RecordFailure never waits long.
const pruneFailuresBatch = 10000

// PruneFailures deletes the failures recorded before cutoff, in batches of
// short statements, and returns how many it deleted. Analytics counts the
// last day only, so a cutoff a day or more ago changes no figure. Run it
// now and then (e.g. hourly): nothing else removes rows.
func (c *Calculator) PruneFailures(ctx context.Context, cutoff time.Time) (int64, error) {
	row := "ctid"
	if c.dialect.name == "sqlite" {
		row = "rowid"
	}
	t := c.quote(c.failuresTable())
	q := "DELETE FROM " + t + " WHERE " + row + " IN (SELECT " + row + " FROM " + t +
		" WHERE failed_at < ? LIMIT " + strconv.Itoa(pruneFailuresBatch) + ")"
	var total int64
	for {
		res := c.db.WithContext(ctx).Exec(q, c.dialect.arg(cutoff.UTC()))
		if res.Error != nil {
			return total, fmt.Errorf("metrics: prune failures: %w", res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < pruneFailuresBatch {
			return total, nil
		}
	}
}
