// Package outage tells a database that is unavailable from a request that
// failed: the first is worth retrying (and answering 503 with Retry-After),
// the second is not.
//
//	if outage.Is(err) { // PostgreSQL down, restarting, unreachable, out of connections
//		w.Header().Set("Retry-After", "5")
//		...
//	}
package outage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Is reports whether err says that the database could not be reached or
// dropped the connection: a failed connect (including its timeout), a
// network error, a connection the driver gave up (driver.ErrBadConn,
// sql.ErrConnDone, an unexpected EOF), or a PostgreSQL error of class 08
// (connection exception), 57P01–57P03 (shutting down, starting up) or 53300
// (too many connections). A query that was wrong, or a deadline of the
// caller's own that ended a query, is not an outage.
func Is(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "53300"
	}
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &oe), errors.As(err, &ne):
		return true
	}
	// pgx reports a connection lost mid-query as a plain error wrapping
	// neither of the above on some paths; its text is stable.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "failed to connect") ||
		(errors.Is(err, context.DeadlineExceeded) && strings.Contains(msg, "connect"))
}
