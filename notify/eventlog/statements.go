package eventlog

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// statements holds the log's SQL, built once per Log. Queries are written
// with PostgreSQL's $n placeholders; SQLite gets them as ?.
type statements struct {
	pg                         bool
	n                          names
	lead                       string // quoted lead table and key (WithLeadTable), or ""
	leadKey                    string
	read, history, head, floor string
	stamp, lock                string
	pruneFloor, pruneUpto      string
	pruneMeta, pruneDelete     string
	mu                         sync.Mutex
	inserts                    map[insertKey]string
}

type insertKey struct {
	rows        int // SQLite: events in the statement; PostgreSQL: 0 (one row of arrays)
	lock, share bool
}

// The events' columns as read: on PostgreSQL each row's arrays are unnested,
// the i-th event (from 1) of a row being at position last-count+i.
const (
	columnsSQLite = `position, lead_id, type, audience, payload, created_at`
	columnsPG     = `r.last - r.count + u.i, u.lead_id, u.type, u.audience, u.payload, r.created_at`
	unnestPG      = `unnest(r.lead_ids, r.types, r.audiences, r.payloads) WITH ORDINALITY AS u(lead_id, type, audience, payload, i)`
)

func newStatements(n names, pg bool, leadTable, leadKey string) *statements {
	s := &statements{pg: pg, n: n, inserts: map[insertKey]string{}}
	if leadTable != "" {
		s.lead, s.leadKey = quote(leadTable), quote(leadKey)
	}
	s.floor = `SELECT floor FROM ` + n.meta + ` WHERE id = 1`
	// The pruner takes the meta row's lock, so that pruners of several
	// instances take turns, picks the next batch by position and records
	// the new floor with the delete, in one transaction.
	s.pruneFloor = `SELECT floor FROM ` + n.meta + ` WHERE id = 1`
	s.pruneMeta = s.rebind(`UPDATE ` + n.meta + ` SET floor = $1 WHERE id = 1`)
	if !pg {
		s.read = s.rebind(`SELECT ` + columnsSQLite + ` FROM ` + n.table +
			` WHERE position > $1 ORDER BY position LIMIT $2`)
		s.history = s.rebind(`SELECT ` + columnsSQLite + ` FROM ` + n.table +
			` WHERE lead_id = $1 AND position > $2 ORDER BY position LIMIT $3`)
		// The head survives pruning every event: the floor is the highest
		// position ever pruned. (max of several arguments is SQLite's
		// greatest.)
		s.head = `SELECT max(coalesce((SELECT max(position) FROM ` + n.table + `), 0), floor) FROM ` +
			n.meta + ` WHERE id = 1`
		s.pruneUpto = s.rebind(`SELECT coalesce(max(position), 0) FROM (SELECT position, created_at FROM ` + n.table +
			` WHERE position > $1 ORDER BY position LIMIT $2) AS b WHERE created_at < $3`)
		s.pruneDelete = s.rebind(`DELETE FROM ` + n.table + ` WHERE position > $1 AND position <= $2`)
		return s
	}
	// Read takes the rows overlapping (a, a+limit], a being after or, when
	// events were pruned, the floor (positions are contiguous above it): a
	// range of the last index bounded on both sides, since a row holds at
	// most maxRows events. The unnested events are trimmed to those after
	// after.
	// Of each row only the slice of events that can be in the page is
	// unnested, from the first after after (lo) to at most limit further:
	// a page of 256 from rows of 1,000 events took 0.86 ms instead of 1.5
	// (pgbench), where unnesting whole rows made catch-up from such rows
	// 30 % slower than from one row per event.
	a := `(SELECT greatest($1::bigint, floor) FROM ` + n.meta + ` WHERE id = 1)`
	slice := `[s.lo : s.lo + least($2::bigint, ` + itoa(maxRows) + `)::int - 1]`
	s.read = `SELECT r.last - r.count + s.lo - 1 + u.i, u.lead_id, u.type, u.audience, u.payload, r.created_at
FROM ` + n.table + ` AS r, LATERAL (SELECT greatest(1, $1::bigint - (r.last - r.count) + 1)::int AS lo) AS s,
	unnest(r.lead_ids` + slice + `, r.types` + slice + `, r.audiences` + slice + `, r.payloads` + slice + `)
		WITH ORDINALITY AS u(lead_id, type, audience, payload, i)
WHERE r.last > ` + a + ` AND r.last <= ` + a + ` + $2 + ` + itoa(maxRows-1) + ` AND r.last - r.count < ` + a + ` + $2
ORDER BY r.last, u.i LIMIT $2`
	// History takes the lead's rows through the GIN index, the first
	// limit+1 of them ending after after (each holds at least one of the
	// lead's events, all after after but in the first), and keeps the
	// lead's events. The fence (MATERIALIZED, last + 0) keeps the planner
	// from walking the last index in order instead, reading the whole log
	// for a lead with few events when it guesses wrong (generic plans do).
	s.history = `WITH m AS MATERIALIZED (
	SELECT * FROM ` + n.table + ` WHERE lead_ids @> ARRAY[$1::bigint] AND last IS NOT NULL AND last + 0 > $2
)
SELECT ` + columnsPG + ` FROM (SELECT * FROM m ORDER BY last LIMIT $3 + 1) AS r, ` + unnestPG + `
WHERE u.lead_id = $1 AND r.last - r.count + u.i > $2
ORDER BY r.last, u.i LIMIT $3`
	s.head = `SELECT greatest(coalesce((SELECT max(last) FROM ` + n.table + `), 0), floor) FROM ` +
		n.meta + ` WHERE id = 1`
	s.pruneFloor += ` FOR UPDATE`
	// Prune whole rows: the floor becomes the last position of the last row
	// deleted, and the events above it are all there.
	s.pruneUpto = `SELECT coalesce(max(last), 0) FROM (SELECT last, created_at FROM ` + n.table +
		` WHERE last > $1 ORDER BY last LIMIT $2) AS b WHERE created_at < $3`
	s.pruneDelete = `WITH d AS (DELETE FROM ` + n.table + ` WHERE last > $1 AND last <= $2 RETURNING count)
SELECT coalesce(sum(count), 0) FROM d`
	// The sequencer's lock. The join of the stamping statement must be a
	// nested loop over the batch with a TID scan inside (a hash join would
	// read the whole table), whatever the planner's statistics say: without
	// hash and merge joins, and with no other qual on the updated table, a
	// TID scan is the cheapest way left. (The rows are found by ctid: the
	// sequencer lock keeps every other writer of unstamped rows away, so
	// they stay where the batch saw them.)
	//
	// It also reads the id sequence's last value ($2, a regclass, or NULL
	// when the sequencer keeps no bound): in its own statement, so before
	// the stamping statement's snapshot (see bound.go).
	s.lock = `SELECT pg_advisory_xact_lock($1), set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
	coalesce(pg_sequence_last_value($2::regclass), 0)`
	// Stamp the oldest committed unstamped rows, in id order, after the
	// highest position (or the floor, when everything was pruned): each
	// row's last is the base plus the running sum of the counts. pg_notify
	// the new head when there were any. Run under the sequencer lock, in a
	// statement begun after taking it, so it sees every earlier stamp.
	// Unstamped rows are looked for from the id $3 up, below which every
	// row is stamped; the statement returns its snapshot's xmin and, when
	// the sequence $4 has handed out ids from $3 up, its transaction's id,
	// which it takes (0 otherwise: an idle log's stampings write nothing;
	// see bound.go).
	s.stamp = `WITH base AS (
	SELECT greatest(coalesce((SELECT max(last) FROM ` + n.table + `), 0),
		(SELECT floor FROM ` + n.meta + ` WHERE id = 1)) AS p
), b AS (
	SELECT tid, base.p + sum(count) OVER (ORDER BY id) AS last, created_at FROM (
		SELECT ctid AS tid, id, count, created_at FROM ` + n.table + ` WHERE last IS NULL AND id >= $3 ORDER BY id LIMIT $1
	) AS o, base
), u AS (
	UPDATE ` + n.table + ` AS t SET last = b.last FROM b
	WHERE t.ctid = b.tid
	RETURNING t.last, t.count, b.created_at
), agg AS (
	SELECT count(*) AS rows, coalesce(sum(count), 0) AS n, max(last) AS h, min(created_at) AS oldest FROM u
)
SELECT rows, n, coalesce(h, 0), coalesce(extract(epoch FROM now() - oldest), 0)::float8,
	(SELECT count(*) FROM (SELECT pg_notify($2, h::text) FROM agg WHERE rows > 0) AS x),
	pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
	CASE WHEN coalesce(pg_sequence_last_value($4::regclass), -1) >= $3 THEN pg_current_xact_id()::text::bigint ELSE 0 END
FROM agg`
	return s
}

var placeholder = regexp.MustCompile(`\$[0-9]+`)

func (s *statements) rebind(q string) string {
	if s.pg {
		return q
	}
	return placeholder.ReplaceAllString(q, "?")
}

// insert returns the INSERT of one chunk of events.
//
// On PostgreSQL it inserts one row, its arrays the parameters $1 (lead ids),
// $2 (types), $3 (audiences) and $4 (payloads); created_at is the
// transaction's now(). With share the statement first locks the rows of
// the lead table whose keys are in the bigint array $5, FOR SHARE, in key
// order, waiting for their writers to end; with lock it then takes
// pg_advisory_xact_lock(ns, k) for every k of the int4 array keys (sorted,
// so that writers never deadlock on each other), ns and keys being the
// next two parameters. Both are
// materialised CTEs that must finish before the row, and so its id, is
// produced: a lead's ids follow its commit order. The row locks come
// before the advisory ones, so that a writer holding a lead's row and
// taking advisory locks for other leads never waits for a transaction
// that holds one of those and waits for that row.
//
// On SQLite it inserts rows events, five parameters each.
func (s *statements) insert(rows int, lock, share bool) string {
	if s.pg {
		rows = 0
	}
	k := insertKey{rows, lock, share}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.inserts[k]; ok {
		return q
	}
	var b strings.Builder
	if !s.pg {
		b.WriteString(`INSERT INTO ` + s.n.table + ` (lead_id, type, audience, payload, created_at) VALUES `)
		for i := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?)")
		}
	} else {
		// The first CTE gives the transaction its id before the row takes
		// its id from the sequence (see bound.go). The CTE of the advisory
		// locks runs after the one of the row locks: it waits for it in a
		// one-time filter, evaluated before its first lock.
		with, wait := []string{`x AS MATERIALIZED (SELECT pg_current_xact_id() AS xid)`}, ""
		next := 5
		if share {
			with = append(with, `s AS MATERIALIZED (SELECT count(*) AS n FROM (SELECT FROM `+s.lead+
				` WHERE `+s.leadKey+` = ANY($`+itoa(next)+`::bigint[]) ORDER BY `+s.leadKey+` FOR SHARE) AS r)`)
			wait = "s"
			next++
		}
		if lock {
			after := ""
			if share {
				after = ` WHERE (SELECT n FROM s) IS NOT NULL`
			}
			with = append(with, `l AS MATERIALIZED (SELECT count(pg_advisory_xact_lock($`+itoa(next)+`::int4, k)) AS n FROM unnest($`+
				itoa(next+1)+`::int4[]) AS k`+after+`)`)
			wait = "l"
		}
		b.WriteString(`WITH ` + strings.Join(with, ", ") + ` INSERT INTO ` + s.n.table + ` (count, lead_ids, types, audiences, payloads) ` +
			`SELECT cardinality($1::bigint[]), $1::bigint[], $2::text[], $3::text[], $4::text[] FROM x`)
		if wait != "" {
			b.WriteString(`, ` + wait + ` WHERE ` + wait + `.n IS NOT NULL`)
		}
	}
	q := b.String()
	if len(s.inserts) < 64 {
		s.inserts[k] = q
	}
	return q
}

// quote quotes a validated, optionally schema-qualified identifier.
func quote(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return `"` + id[:i] + `"."` + id[i+1:] + `"`
	}
	return `"` + id + `"`
}

func itoa(i int) string { return strconv.Itoa(i) }
