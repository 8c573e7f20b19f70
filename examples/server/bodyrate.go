package main

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// Minimum request body data rate, as Kestrel's default: after a grace
// period a body must keep arriving at least this fast on average, or its
// read fails and the connection closes.
const (
	bodyGrace    = 5 * time.Second
	bodyMinRate  = 240 // bytes per second
	bodyRateUnit = time.Second / bodyMinRate
)

// minBodyRate enforces the minimum body data rate on every request with a
// body whose path is not under skip (the hub's, which has its own limits).
// The read deadline is set before the handler runs, so that it also bounds
// the unread body Go discards after a handler that answered without
// reading it (a 401, say); each Read then moves it on by what arrived.
// Requests without a body — among them the long-lived SSE, Long Polling
// and WebSocket requests — are left alone.
func minBodyRate(next http.Handler, skip string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody ||
			(skip != "" && (r.URL.Path == skip || strings.HasPrefix(r.URL.Path, skip+"/"))) {
			next.ServeHTTP(w, r)
			return
		}
		b := &rateBody{rc: r.Body, ctl: http.NewResponseController(w), start: time.Now()}
		if b.extend() != nil { // a writer without deadlines (a test's recorder)
			next.ServeHTTP(w, r)
			return
		}
		r.Body = b
		next.ServeHTTP(w, r)
	})
}

// rateBody moves the connection's read deadline on as bytes arrive: the
// next byte is due by start + grace + n/rate, n the bytes read so far.
type rateBody struct {
	rc    io.ReadCloser
	ctl   *http.ResponseController
	start time.Time
	n     int64
}

func (b *rateBody) extend() error {
	return b.ctl.SetReadDeadline(b.start.Add(bodyGrace + time.Duration(b.n)*bodyRateUnit))
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		// All arrived: no deadline while the handler works on it (Go's
		// background read, which starts now, would cancel the request's
		// context at the deadline).
		_ = b.ctl.SetReadDeadline(time.Time{})
	} else if n > 0 {
		_ = b.extend()
	}
	return n, err
}

func (b *rateBody) Close() error { return b.rc.Close() }
