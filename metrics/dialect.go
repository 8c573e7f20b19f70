package metrics

import (
	"strings"
	"time"
)

// dialect holds what differs between the databases a Calculator supports.
type dialect struct {
	// name is the GORM dialector's name.
	name string
	// buildSQL returns the window and group queries.
	buildSQL func(n names) (window, group string)
	// arg converts a bound (in UTC) to the value bound to the queries.
	arg func(t time.Time) any
	// index returns the statement creating the index named name over cols
	// (a quoted column list), with extra (quoted) columns where the
	// database can carry them in the index, on rows matching where.
	index func(name, table string, cols, include []string, where string) string
	// schemaOnIndex: a schema-qualified table's schema goes on the index
	// name, not the table name.
	schemaOnIndex bool
	// aggregates: EnsureAggregates can install the incremental
	// aggregates (triggers with transition tables).
	aggregates bool
}

var dialects = map[string]dialect{
	"postgres": {
		name:       "postgres",
		buildSQL:   buildSQL,
		aggregates: true,
		arg:        func(t time.Time) any { return t },
		index: func(name, table string, cols, include []string, where string) string {
			return "CREATE INDEX CONCURRENTLY IF NOT EXISTS " + name + " ON " + table +
				" (" + strings.Join(cols, ", ") + ") INCLUDE (" + strings.Join(include, ", ") + ")" + where
		},
	},
	"sqlite": {
		name:          "sqlite",
		buildSQL:      buildSQLite,
		arg:           sqliteTime,
		schemaOnIndex: true,
		index: func(name, table string, cols, _ []string, where string) string {
			return "CREATE INDEX IF NOT EXISTS " + name + " ON " + table +
				" (" + strings.Join(cols, ", ") + ")" + where
		},
	},
}

// sqliteTime formats t in UTC as SQLite's date functions read it (no zone
// suffix means UTC; fractional seconds as stored).
func sqliteTime(t time.Time) any {
	return t.UTC().Format("2006-01-02 15:04:05.000000000")
}

// buildSQLite is buildSQL for SQLite, which has no timestamp type: GORM's
// SQLite driver stores times as text carrying their own zone offset (for
// example 2026-03-09 01:02:03.0000005-04:00), so values written in different
// zones do not compare as text. Every comparison goes through julianday() on
// both sides (millisecond precision), and the processing time is the
// difference of julian days times 86400.
func buildSQLite(n names) (window, group string) {
	r := n.replacer()
	window = r.Replace(`SELECT w.new_today, w.new_yesterday, w.last_week, w.prev_week, w.recent_sources,
	p.processed_today, p.processing_seconds
FROM (SELECT
	COUNT(*) FILTER (WHERE c >= julianday(@today)) AS new_today,
	COUNT(*) FILTER (WHERE c >= julianday(@yesterday) AND c < julianday(@today)) AS new_yesterday,
	COUNT(*) FILTER (WHERE c > julianday(@week)) AS last_week,
	COUNT(*) FILTER (WHERE c > julianday(@fortnight) AND c <= julianday(@week)) AS prev_week,
	COUNT(DISTINCT src) FILTER (WHERE c > julianday(@recent)) AS recent_sources
	FROM (SELECT julianday($c) AS c, $src AS src FROM $t WHERE $d IS NULL) x
	WHERE c >= julianday(@created_from) AND c <= julianday(@now)) w
CROSS JOIN (SELECT
	COUNT(*) FILTER (WHERE p >= julianday(@today)) AS processed_today,
	CAST(AVG((p - c) * 86400) FILTER (WHERE p > julianday(@day)) AS DOUBLE PRECISION) AS processing_seconds
	FROM (SELECT julianday($p) AS p, julianday($c) AS c FROM $t WHERE $d IS NULL) x
	WHERE p >= julianday(@processed_from) AND p <= julianday(@now)) p`)
	group = r.Replace(groupQuery)
	return window, group
}
