package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
)

// names are the SQL identifiers of one log, quoted and ready to paste into
// statements (they are validated by config.validate, never user input).
type names struct {
	table, meta string // quoted, schema-qualified when configured
	idxLast     string // bare index names (an index lives in its table's schema)
	idxLead     string
	idxFresh    string
	idxLeadIDs  string
	channel     string // pg_notify channel: the bare table name
	ns          int32  // advisory lock namespace of the lead locks
	seqLock     int64  // advisory lock of the sequencer
	migrateLock int64  // advisory lock of the migration
}

func newNames(table string) names {
	schema, base := "", table
	if i := strings.IndexByte(table, '.'); i >= 0 {
		schema, base = table[:i], table[i+1:]
	}
	q := func(id string) string {
		if schema != "" {
			return `"` + schema + `"."` + id + `"`
		}
		return `"` + id + `"`
	}
	return names{
		table:       q(base),
		meta:        q(base + "_meta"),
		idxLead:     `"` + base + `_lead"`,
		idxFresh:    `"` + base + `_unstamped"`,
		idxLast:     `"` + base + `_last"`,
		idxLeadIDs:  `"` + base + `_lead_ids"`,
		channel:     base,
		ns:          int32(hash64("leadupdates/eventlog lead " + table)),
		seqLock:     int64(hash64("leadupdates/eventlog sequencer " + table)),
		migrateLock: int64(hash64("leadupdates/eventlog migrate " + table)),
	}
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// migratePostgres creates the tables and indexes unless they exist. A
// row holds the events of one Append (up to maxRows), in arrays: the
// events of a batch of 100 leads cost one row and one entry per index
// instead of a hundred, and one rewrite when stamped. The row's events
// have the positions last-count+1 ... last, in array order. The column
// order (fixed-width first) keeps rows free of alignment padding.
//
// Every index costs each row an entry when it is inserted, or when the
// sequencer stamps it (the update changes an indexed column, so it cannot
// be a HOT update), so there are few, and partial: the unstamped rows, by
// id (small: rows leave it when stamped, and vacuum drops their entries),
// for the sequencer; and the stamped rows by last, for Read, and by lead
// (GIN on lead_ids), for History. A writer's INSERT thus adds one index
// entry, however many events it holds; the others come with the stamping,
// off the writers' path (GIN's go to its pending list, fastupdate being
// the default). id has no primary key index: the sequencer finds its rows through the
// unstamped index and updates them by ctid, and nothing else looks rows up
// by id. (A table without a primary key cannot be published for logical
// replication of updates unless given REPLICA IDENTITY FULL.)
//
// A table of the layout before (one row per event, with a position column)
// is upgraded in the migration's transaction (upgradeV1): every event
// keeps its position, so clients' cursors stay valid.
//
// A row of many events is compressed (TOAST) in the writer's INSERT: with
// lz4, where the server has it, rather than pglz, which took a batch of
// 100 events' INSERT and COMMIT from 0.35 to 0.29 ms (pgbench).
func migratePostgres(ctx context.Context, db *sql.DB, n names) error {
	var lz4 bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_settings
		WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals))`).Scan(&lz4); err != nil {
		return err
	}
	compress := ""
	if lz4 {
		compress = " COMPRESSION lz4"
	}
	create := `CREATE TABLE IF NOT EXISTS ` + n.table + ` (
			id         bigserial NOT NULL,
			last       bigint,
			created_at timestamptz NOT NULL DEFAULT now(),
			count      int NOT NULL,
			lead_ids   bigint[] NOT NULL,
			types      text[]` + compress + ` NOT NULL,
			audiences  text[]` + compress + ` NOT NULL,
			payloads   text[]` + compress + ` NOT NULL
		)`
	stmts := []string{
		`CREATE UNIQUE INDEX IF NOT EXISTS ` + n.idxLast + ` ON ` + n.table + ` (last) WHERE last IS NOT NULL`,
		`CREATE INDEX IF NOT EXISTS ` + n.idxFresh + ` ON ` + n.table + ` (id) WHERE last IS NULL`,
		`CREATE INDEX IF NOT EXISTS ` + n.idxLeadIDs + ` ON ` + n.table + ` USING gin (lead_ids) WHERE last IS NOT NULL`,
		`CREATE TABLE IF NOT EXISTS ` + n.meta + ` (
			id    int PRIMARY KEY CHECK (id = 1),
			floor bigint NOT NULL
		)`,
		`INSERT INTO ` + n.meta + ` (id, floor) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog
	// (a unique violation on pg_type): instances starting together take
	// turns.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, n.migrateLock); err != nil {
		return err
	}
	var v1 bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attname = 'position' AND NOT attisdropped)`, n.table).Scan(&v1); err != nil {
		return err
	}
	if v1 {
		if err := upgradeV1(ctx, tx, n, create); err != nil {
			return fmt.Errorf("upgrade %s from one row per event: %w", n.table, err)
		}
	}
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("%s: %w", firstLine(create), err)
	}
	var old, arrays bool
	if err := tx.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'position' AND NOT attisdropped),
		EXISTS (SELECT FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'lead_ids' AND NOT attisdropped)`,
		n.table).Scan(&old, &arrays); err != nil {
		return err
	}
	if old || !arrays {
		return fmt.Errorf("%w: the table is not an event log: choose another table with WithTable", errOldLayout)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return tx.Commit()
}

// upgradeV1 turns a table of the layout before (one row per event, payload
// jsonb, a position column) into the current one, in the caller's
// transaction: each event becomes a row of one, with last = its position
// (NULL when not yet positioned) and its id, so that the sequencer goes on
// in the same order. Instances of the version before must be stopped
// first: their statements fail on the new table (their writes roll back).
func upgradeV1(ctx context.Context, tx *sql.Tx, n names, create string) error {
	// The table's schema prefix ("schema". or nothing), for its indexes
	// and the renamed table.
	prefix := strings.TrimSuffix(n.table, `"`+n.channel+`"`)
	old := prefix + `"` + n.channel + `_v1"`
	stmts := []string{
		`ALTER TABLE ` + n.table + ` RENAME TO "` + n.channel + `_v1"`,
		// The only index name the new table shares with the old one.
		`DROP INDEX IF EXISTS ` + prefix + n.idxFresh,
		create,
		`INSERT INTO ` + n.table + ` (id, last, created_at, count, lead_ids, types, audiences, payloads)
			SELECT id, position, created_at, 1, ARRAY[lead_id], ARRAY[type], ARRAY[audience], ARRAY[payload::text]
			FROM ` + old + ` ORDER BY id`,
		`SELECT setval(pg_get_serial_sequence('` + n.table + `', 'id'), coalesce((SELECT max(id) FROM ` + old + `), 0) + 1, false)`,
		`DROP TABLE ` + old,
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return nil
}

// errOldLayout: Open found a table it must not use.
var errOldLayout = errors.New("table not usable")

// migrateSQLite creates the tables and indexes unless they exist. position
// is the rowid; AUTOINCREMENT keeps a pruned largest position from being
// reused. created_at is in Unix microseconds.
func migrateSQLite(ctx context.Context, db *sql.DB, n names) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + n.table + ` (
			position   INTEGER PRIMARY KEY AUTOINCREMENT,
			lead_id    INTEGER NOT NULL,
			created_at INTEGER NOT NULL,
			type       TEXT NOT NULL,
			audience   TEXT NOT NULL DEFAULT '',
			payload    TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS ` + n.idxLead + ` ON ` + n.table + ` (lead_id, position)`,
		`CREATE TABLE IF NOT EXISTS ` + n.meta + ` (
			id    INTEGER PRIMARY KEY CHECK (id = 1),
			floor INTEGER NOT NULL
		)`,
		`INSERT OR IGNORE INTO ` + n.meta + ` (id, floor) VALUES (1, 0)`,
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", firstLine(s), err)
		}
	}
	return tx.Commit()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "("))
}
