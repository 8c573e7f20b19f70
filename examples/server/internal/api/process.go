package api

import (
	"fmt"
	"net/http"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

// workflowName is the workflow POST /api/leads/{id}/process starts.
const workflowName = "LeadProcessing"

// process serves POST /api/leads/{id}/process. The status check here gives
// the usual 409 early; the Processor checks again, atomically.
func (a *API) process(w http.ResponseWriter, r *http.Request, u user) error {
	l, err := a.find(r.Context(), r, u)
	if err != nil {
		return err
	}
	if !lead.Processable(l.Status) {
		return conflict(fmt.Sprintf("a %s lead cannot be processed; only New, Failed or Disqualified ones", l.Status))
	}
	if err := a.workflow.Start(r.Context(), l.ID); err != nil {
		return fmt.Errorf("start workflow of lead %d: %w", l.ID, err)
	}
	writeJSON(w, http.StatusAccepted, struct {
		LeadID   int64  `json:"leadId"`
		Workflow string `json:"workflow"`
	}{l.ID, workflowName})
	return nil
}

// getMetrics serves GET /api/metrics: the metrics object of a METRICS_UPDATE.
func (a *API) getMetrics(w http.ResponseWriter, r *http.Request, _ user) error {
	d, err := a.metrics.Snapshot(r.Context())
	if err != nil {
		return fmt.Errorf("metrics snapshot: %w", err)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
