package main

import (
	"net/http"
	"strings"

	"github.com/leadupdates/leadupdates/internal/minrate"
)

// minBodyRate holds the body of every request outside the hub's path (the
// REST API, and any other path a client sends a body to) to Kestrel's
// minimum data rate, 240 B/s after a 5 s grace (package minrate); the hub
// applies the same limit to its own requests. Requests without a body —
// among them the long-lived SSE, Long Polling and WebSocket requests — are
// left alone.
func minBodyRate(next http.Handler, hubPath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != hubPath && !strings.HasPrefix(r.URL.Path, hubPath+"/") {
			minrate.Limit(w, r, minrate.Rate, minrate.Grace)
		}
		next.ServeHTTP(w, r)
	})
}
