package workflow

import (
	"errors"
	"fmt"
	"net/http"
)

// The reasons Start and Process refuse to run a workflow. They are wrapped
// in a *RefusedError; test with errors.Is.
var (
	ErrNotFound       = errors.New("workflow: no such lead")
	ErrNotProcessable = errors.New("workflow: lead not processable")
	ErrAlreadyRunning = errors.New("workflow: already running for this lead")
	ErrBusy           = errors.New("workflow: too many workflows running")
	ErrClosed         = errors.New("workflow: runner closed")
)

// A RefusedError is returned by Start and Process when a workflow was not
// started. HTTPStatus maps it for a REST API.
type RefusedError struct {
	LeadID int64
	Status string // the lead's status, for ErrNotProcessable
	Err    error  // one of the Err* sentinels
}

func (e *RefusedError) Error() string {
	if errors.Is(e.Err, ErrNotProcessable) {
		return fmt.Sprintf("lead %d is %s: only New, Failed or Disqualified leads can be processed", e.LeadID, e.Status)
	}
	switch {
	case errors.Is(e.Err, ErrNotFound):
		return fmt.Sprintf("lead %d not found", e.LeadID)
	case errors.Is(e.Err, ErrAlreadyRunning):
		return fmt.Sprintf("the workflow is already running for lead %d", e.LeadID)
	case errors.Is(e.Err, ErrBusy):
		return "too many workflows running, retry later"
	}
	return e.Err.Error()
}

func (e *RefusedError) Unwrap() error { return e.Err }

// HTTPStatus is 404 for ErrNotFound, 409 for ErrNotProcessable and
// ErrAlreadyRunning, 503 for ErrBusy and ErrClosed.
func (e *RefusedError) HTTPStatus() int {
	switch {
	case errors.Is(e.Err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(e.Err, ErrNotProcessable), errors.Is(e.Err, ErrAlreadyRunning):
		return http.StatusConflict
	}
	return http.StatusServiceUnavailable
}

// A FailedError is returned by Process when the workflow ran and failed: an
// activity failed, the lead was changed or deleted concurrently, the
// database failed or the run was cancelled.
type FailedError struct {
	LeadID   int64
	Activity string // Reset (back to New), Enrich, Score, Vet or ZohoUpsert; "" before the first
	Reason   string // as sent with WORKFLOW_FAILED
}

func (e *FailedError) Error() string {
	if e.Activity == "" {
		return fmt.Sprintf("workflow: lead %d: %s", e.LeadID, e.Reason)
	}
	return fmt.Sprintf("workflow: lead %d: %s: %s", e.LeadID, e.Activity, e.Reason)
}

var (
	_ error = (*RefusedError)(nil)
	_ error = (*FailedError)(nil)
)
