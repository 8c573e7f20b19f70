package workflow

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type telemetry struct {
	runs         *prometheus.CounterVec
	refused      *prometheus.CounterVec
	notifyErrors prometheus.Counter
	running      prometheus.Gauge
	retries      *prometheus.CounterVec
	pending      prometheus.Gauge
}

// The outcomes of a run, as counted.
const (
	outcomeSynced       = "synced"
	outcomeDisqualified = "disqualified"
	outcomeFailed       = "failed"
)

func newTelemetry(reg prometheus.Registerer) (*telemetry, error) {
	t := &telemetry{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_workflow_runs_total",
			Help: "Finished LeadProcessing workflows by outcome: synced, disqualified, failed.",
		}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_workflow_refused_total",
			Help: "Workflows not started, by reason: not_found, not_processable, already_running, busy, closed.",
		}, []string{"reason"}),
		notifyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadupdates_workflow_notify_errors_total",
			Help: "WORKFLOW_* notifications that returned an error or panicked (the workflow went on).",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadupdates_workflow_running",
			Help: "LeadProcessing workflows running now.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_workflow_retries_total",
			Help: "Workflows queued to start again later, by reason: busy (the runner was full), database (unavailable at the start or during the run); dropped: not queued, the retry queue was full.",
		}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadupdates_workflow_retry_pending",
			Help: "Leads waiting for their workflow to be started again.",
		}),
	}
	for _, o := range []string{outcomeSynced, outcomeDisqualified, outcomeFailed} {
		t.runs.WithLabelValues(o)
	}
	if reg == nil {
		return t, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{t.runs, t.refused, t.notifyErrors, t.running, t.retries, t.pending} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("workflow: register collectors: %w", err)
	}
	return t, nil
}

func (t *telemetry) refuse(err error) {
	reason := "closed"
	switch {
	case errors.Is(err, ErrNotFound):
		reason = "not_found"
	case errors.Is(err, ErrNotProcessable):
		reason = "not_processable"
	case errors.Is(err, ErrAlreadyRunning):
		reason = "already_running"
	case errors.Is(err, ErrBusy):
		reason = "busy"
	}
	t.refused.WithLabelValues(reason).Inc()
}
