package eventlog

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// errNotPgx: the database/sql driver is not pgx, so there is no LISTEN;
// the log then polls.
var errNotPgx = errors.New("the database/sql driver is not pgx's stdlib")

// listen is the listener's goroutine (PostgreSQL): it holds one connection
// of the pool with LISTEN on the log's channel and wakes the tailers and
// the sequencer on every pg_notify. When the connection is lost it
// reconnects with backoff; meanwhile everything runs on the poll interval,
// and after reconnecting everyone looks again, since pg_notify sent while
// nobody listened is lost.
func (l *Log) listen() {
	fails := 0
	for {
		connected := false
		err := l.listenOnce(func() {
			connected, fails = true, 0
			l.wake()
		})
		if l.closed() {
			return
		}
		if errors.Is(err, errNotPgx) {
			l.warn.Log("msg", "no LISTEN: polling only", "table", l.cfg.table, "err", err)
			return
		}
		if !connected {
			fails++
		}
		l.warn.Log("msg", "LISTEN connection lost; reconnecting, polling meanwhile", "table", l.cfg.table, "err", err)
		l.wake()
		if !l.sleep(l.ctx, backoff(fails, 5*time.Second)) {
			return
		}
	}
}

// wake makes the tailers read and the sequencer look for work.
func (l *Log) wake() {
	l.stamped.fire()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// listenOnce listens until the connection fails or the log closes. The
// connection is always discarded afterwards (driver.ErrBadConn): it would
// keep listening in the pool.
func (l *Log) listenOnce(connected func()) error {
	c, err := l.db.Conn(l.ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("%w: %T", errNotPgx, dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(l.ctx, `LISTEN "`+l.n.channel+`"`); err != nil {
			return fmt.Errorf("%w: listen %q: %w", driver.ErrBadConn, l.n.channel, err)
		}
		connected()
		for {
			n, err := pc.WaitForNotification(l.ctx)
			if err != nil {
				return fmt.Errorf("%w: wait for pg_notify: %w", driver.ErrBadConn, err)
			}
			// A head this instance's sequencer has already reached was
			// stamped here, and the tailers were woken then; another
			// instance's stamps wake them now (and the sequencer, for rows
			// committed meanwhile).
			if head, err := strconv.ParseInt(n.Payload, 10, 64); err == nil && head <= l.head.Load() {
				continue
			}
			l.wake()
		}
	})
}
