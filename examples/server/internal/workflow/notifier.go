package workflow

import (
	"context"
	"fmt"

	"github.com/go-kit/log/level"
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
