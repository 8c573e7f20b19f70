package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-kit/log/level"

	"github.com/leadupdates/leadupdates/examples/server/internal/outage"
)

// apiError is an answer other than success: its status and the body
// {"error": msg, "field": field}.
type apiError struct {
	status int
	msg    string
	field  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(field, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: msg, field: field}
}

func forbidden(msg string) *apiError { return &apiError{status: http.StatusForbidden, msg: msg} }

func conflict(msg string) *apiError { return &apiError{status: http.StatusConflict, msg: msg} }

var errNotFound = &apiError{status: http.StatusNotFound, msg: "no such lead"}

// statusCoder is what an error of a collaborator (the workflow's Start)
// implements to choose its HTTP status.
type statusCoder interface{ HTTPStatus() int }

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// retryAfter is the Retry-After of a 503 for an unavailable database, in
// seconds.
const retryAfter = "5"

// fail answers err: an *apiError as it says, an error with HTTPStatus() 4xx
// or 5xx other than 500 with its status and message, an unavailable
// database (outage.Is) as 503 with Retry-After, anything else as a logged
// 500 whose message says nothing internal.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeJSON(w, ae.status, errorBody{Error: ae.msg, Field: ae.field})
		return
	}
	var sc statusCoder
	if errors.As(err, &sc) {
		// 500 stays generic: it may say something internal.
		if s := sc.HTTPStatus(); s >= 400 && s < 600 && s != http.StatusInternalServerError {
			msg := err.Error()
			if e, ok := sc.(error); ok {
				msg = e.Error() // without our wrapping
			}
			writeJSON(w, s, errorBody{Error: msg})
			return
		}
	}
	if outage.Is(err) {
		// The database is away: the client should come back, not give up.
		level.Warn(a.logger).Log("msg", "database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", retryAfter)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the database is unavailable; retry later"})
		return
	}
	level.Error(a.logger).Log("msg", "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
}
