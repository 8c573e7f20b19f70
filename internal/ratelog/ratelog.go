// Package ratelog logs at most one line per interval. It is for warnings
// whose cause can repeat at the rate of the traffic — a full queue, a failing
// publish — where a line per occurrence would flood the log: the first line of
// an interval is logged, the others are counted, and the next line logged
// carries "suppressed", n for the lines dropped meanwhile.
//
//	warn := ratelog.New(level.Warn(logger), time.Second)
//	warn.Log("msg", "queue full; event dropped") // logged
//	warn.Log("msg", "queue full; event dropped") // counted
//	// a second later:
//	warn.Log("msg", "queue full; event dropped") // logged, with "suppressed", 1
//
// A Logger is safe for concurrent use.
package ratelog

import (
	"sync"
	"time"

	"github.com/go-kit/log"
)

// A Logger passes at most one line per interval to the logger it wraps.
type Logger struct {
	l     log.Logger
	every time.Duration
	now   func() time.Time // time.Now; tests replace it

	mu         sync.Mutex
	last       time.Time // when the last line was logged; zero before the first
	suppressed int
}

// New returns a Logger that passes at most one line per interval every to
// l. A nil l logs nothing; every <= 0 logs every line.
func New(l log.Logger, every time.Duration) *Logger {
	if l == nil {
		l = log.NewNopLogger()
	}
	return &Logger{l: l, every: every, now: time.Now}
}

// Log logs keyvals unless a line was logged less than the interval ago, in
// which case it only counts the line. A line logged after some were dropped
// carries "suppressed", n. It returns the wrapped logger's error, or nil for
// a line it dropped.
func (l *Logger) Log(keyvals ...any) error {
	now := l.now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return nil
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		keyvals = append(keyvals[:len(keyvals):len(keyvals)], "suppressed", n)
	}
	return l.l.Log(keyvals...)
}
