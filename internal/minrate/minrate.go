// Package minrate bounds how slowly a client may send a request body, as
// Kestrel's MinRequestBodyDataRate does: after a grace period the body must
// arrive at a minimum average rate, counting only the time the handler
// waits for it, or the read fails and the connection is closed. Without it
// a client that sends a request head and then a byte now and then holds a
// connection and a goroutine for as long as it likes, even on a request
// that is refused (net/http reads up to 256 KB of an unread body before it
// writes the answer).
//
//	http.ListenAndServe(addr, minrate.Handler(mux, minrate.Rate, minrate.Grace))
//
// It acts only on requests that have a body, so long-lived GET streams
// (Server-Sent Events, long polls, WebSocket upgrades) are never cut. It
// uses http.ResponseController's read deadline; a ResponseWriter that does
// not support one is left alone.
package minrate

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// Kestrel's defaults: 240 bytes per second after a 5 s grace period.
const (
	Rate  = 240
	Grace = 5 * time.Second
)

// Handler serves next with the body of every request that has one held to
// rate bytes per second on average after grace.
func Handler(next http.Handler, rate int, grace time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Limit(w, r, rate, grace)
		next.ServeHTTP(w, r)
	})
}

// Limit holds r's body, if it has one, to rate bytes per second on average
// after grace, from now on; call it before anything reads the body.
func Limit(w http.ResponseWriter, r *http.Request, rate int, grace time.Duration) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody || rate <= 0 {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(grace)); errors.Is(err, http.ErrNotSupported) {
		return
	}
	// The deadline also bounds what net/http discards of a body the
	// handler leaves unread.
	r.Body = &body{ReadCloser: r.Body, rc: rc, rate: rate, budget: grace}
}

type body struct {
	io.ReadCloser
	rc     *http.ResponseController
	rate   int
	budget time.Duration // waiting time left: grace plus what was read, at rate
	done   bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	start := time.Now()
	_ = b.rc.SetReadDeadline(start.Add(b.budget))
	n, err := b.ReadCloser.Read(p)
	b.budget += time.Duration(n)*time.Second/time.Duration(b.rate) - time.Since(start)
	if err == io.EOF {
		// The whole body is in: from here on the connection idles as usual.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
