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
	read, history, head, floor string
	stamp, lock                string
	pruneFloor, pruneUpto      string
	pruneMeta, pruneDelete     string
	mu                         sync.Mutex
	inserts                    map[insertKey]string
}

type insertKey struct {
	rows int
	lock bool
}

const columns = `position, lead_id, type, audience, payload, created_at`

func newStatements(n names, pg bool) *statements {
	s := &statements{pg: pg, n: n, inserts: map[insertKey]string{}}
	s.read = s.rebind(`SELECT ` + columns + ` FROM ` + n.table +
		` WHERE position > $1 ORDER BY position LIMIT $2`)
	s.history = s.rebind(`SELECT ` + columns + ` FROM ` + n.table +
		` WHERE lead_id = $1 AND position > $2 ORDER BY position LIMIT $3`)
	greatest := "greatest"
	if !pg {
		greatest = "max" // SQLite's scalar max of several arguments
	}
	// The head survives pruning every event: the floor is the highest
	// position ever pruned.
	s.head = `SELECT ` + greatest + `(coalesce((SELECT max(position) FROM ` + n.table + `), 0), floor) FROM ` +
		n.meta + ` WHERE id = 1`
	s.floor = `SELECT floor FROM ` + n.meta + ` WHERE id = 1`
	// The pruner takes the meta row's lock, so that pruners of several
	// instances take turns, picks the next batch by position and records
	// the new floor with the delete, in one transaction.
	s.pruneFloor = `SELECT floor FROM ` + n.meta + ` WHERE id = 1`
	if pg {
		s.pruneFloor += ` FOR UPDATE`
	}
	s.pruneUpto = s.rebind(`SELECT coalesce(max(position), 0) FROM (SELECT position, created_at FROM ` + n.table +
		` WHERE position > $1 ORDER BY position LIMIT $2) AS b WHERE created_at < $3`)
	s.pruneMeta = s.rebind(`UPDATE ` + n.meta + ` SET floor = $1 WHERE id = 1`)
	s.pruneDelete = s.rebind(`DELETE FROM ` + n.table + ` WHERE position > $1 AND position <= $2`)
	if pg {
		// The sequencer's lock. The join of the stamping statement must be a
		// nested loop over the batch with a TID scan inside (a hash join would
		// read the whole table), whatever the planner's statistics say:
		// without hash and merge joins, and with no other qual on the
		// updated table, a TID scan is the cheapest way left. (The rows are
		// found by ctid: the sequencer lock keeps every other writer of
		// unstamped rows away, so they stay where the batch saw them.)
		s.lock = `SELECT pg_advisory_xact_lock($1), set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`
		// Stamp the oldest committed unstamped rows, in id order, after the
		// highest position (or the floor, when everything was pruned), and
		// pg_notify the new head when there were any. Run under the
		// sequencer lock, in a statement begun after taking it, so it sees
		// every earlier stamp.
		s.stamp = `WITH b AS (
	SELECT tid, row_number() OVER (ORDER BY id) AS rn, created_at FROM (
		SELECT ctid AS tid, id, created_at FROM ` + n.table + ` WHERE position IS NULL ORDER BY id LIMIT $1
	) AS o
), base AS (
	SELECT greatest(coalesce((SELECT max(position) FROM ` + n.table + `), 0),
		(SELECT floor FROM ` + n.meta + ` WHERE id = 1)) AS p
), u AS (
	UPDATE ` + n.table + ` AS t SET position = base.p + b.rn FROM b, base
	WHERE t.ctid = b.tid
	RETURNING t.position, b.created_at
), agg AS (
	SELECT count(*) AS n, max(position) AS h, min(created_at) AS oldest FROM u
)
SELECT n, coalesce(h, 0), coalesce(extract(epoch FROM now() - oldest), 0)::float8,
	(SELECT count(*) FROM (SELECT pg_notify($2, h::text) FROM agg WHERE n > 0) AS x)
FROM agg`
	}
	return s
}

var placeholder = regexp.MustCompile(`\$[0-9]+`)

func (s *statements) rebind(q string) string {
	if s.pg {
		return q
	}
	return placeholder.ReplaceAllString(q, "?")
}

// insert returns the INSERT of rows events. On PostgreSQL, with lock, the
// statement first takes pg_advisory_xact_lock($1, k) for every k of the
// int4 array $2 (sorted, so that writers never deadlock on each other),
// in a materialised aggregate that must finish before the first row, and
// so its id, is produced: a lead's ids follow its commit order. The event
// columns follow as parameters, four per row on PostgreSQL (created_at is
// the transaction's now()), five on SQLite.
func (s *statements) insert(rows int, lock bool) string {
	k := insertKey{rows, lock}
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
		arg := 1
		if lock {
			b.WriteString(`WITH l AS MATERIALIZED (SELECT count(pg_advisory_xact_lock($1::int4, k)) AS n FROM unnest($2::int4[]) AS k) `)
			arg = 3
		}
		b.WriteString(`INSERT INTO ` + s.n.table + ` (lead_id, type, audience, payload) SELECT v.* FROM `)
		if lock {
			b.WriteString(`l, `)
		}
		b.WriteString(`(VALUES `)
		for i := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			a := strconv.Itoa
			b.WriteString("($" + a(arg) + "::bigint,$" + a(arg+1) + "::text,$" + a(arg+2) + "::text,$" + a(arg+3) + "::jsonb)")
			arg += 4
		}
		b.WriteString(`) AS v(lead_id, type, audience, payload)`)
		if lock {
			b.WriteString(` WHERE l.n IS NOT NULL`)
		}
	}
	q := b.String()
	if len(s.inserts) < 64 {
		s.inserts[k] = q
	}
	return q
}
