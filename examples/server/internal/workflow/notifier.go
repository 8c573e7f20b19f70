package workflow

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kit/log/level"

	"github.com/leadupdates/leadupdates/examples/server/internal/outage"
)

// Notifier sends the workflow's own events; *notify.Notifier satisfies it.
// Status, score and enrichment changes are not sent through it: the
// activities write them through GORM and the interceptor reports them after
// commit.
type Notifier interface {
	NotifyWorkflowStarted(ctx context.Context, leadID int64, workflow string) error
	NotifyWorkflowCompleted(ctx context.Context, leadID int64, workflow string) error
	NotifyWorkflowFailed(ctx context.Context, leadID int64, workflow, reason string) error
}

// notify calls f and only logs and counts its error or panic: a
// notification never fails a workflow.
func (r *Runner) notify(leadID int64, event string, f func() error) {
	defer func() {
		if p := recover(); p != nil {
			r.tel.notifyErrors.Inc()
			level.Error(r.cfg.logger).Log("msg", "notifier panicked", "event", event, "lead_id", leadID, "panic", fmt.Sprint(p))
		}
	}()
	if err := f(); err != nil {
		r.tel.notifyErrors.Inc()
		level.Warn(r.cfg.logger).Log("msg", "notification failed", "event", event, "lead_id", leadID, "err", err)
	}
}

// notifyRetrying is notify for an event that must not be lost to a
// database outage (WithEventsInTransactions, an event without a write of
// its own): while the error is an outage's it tries again, 250 ms after the
// failure and then twice as long each time, until ctx ends; then it logs
// the event as lost, at error level, and counts it.
func (r *Runner) notifyRetrying(ctx context.Context, leadID int64, event string, f func() error) {
	delay := 250 * time.Millisecond
	r.notify(leadID, event, func() error {
		for {
			err := f()
			if err == nil || !outage.Is(err) {
				return err
			}
			level.Warn(r.cfg.logger).Log("msg", "workflow event not logged: database unavailable; retrying", "event", event, "lead_id", leadID, "in", delay, "err", err)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				level.Error(r.cfg.logger).Log("msg", "workflow event lost: the database stayed unavailable", "event", event, "lead_id", leadID, "err", err)
				return err
			case <-t.C:
			}
			delay = min(2*delay, 5*time.Second)
		}
	})
}
