package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/events"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/notify"
)

// The activities, named as in WORKFLOW_FAILED reasons and logs.
const (
	activityReset  = "Reset"
	activityEnrich = "Enrich"
	activityScore  = "Score"
	activityVet    = "Vet"
	activityZoho   = "ZohoUpsert"
)

// A stepError is why an execution stopped. A conflict (the lead was changed
// or deleted by someone else) leaves the lead as the other writer left it.
// reasonDatabase is the reason of a step that failed on the database.
const reasonDatabase = "database error"

type stepError struct {
	activity string
	reason   string
	conflict bool
	err      error
}

func (e *stepError) Error() string { return e.activity + ": " + e.reason }
func (e *stepError) Unwrap() error { return e.err }

// An execution is one run of the workflow on one lead. status is the status
// the lead is known to have: every update is conditional on it.
type execution struct {
	r        *Runner
	lead     lead.Lead
	status   string
	activity string
	// owner is the lead's owner as the latest write of this execution
	// committed it (read in that write's transaction, under its row lock):
	// the audience of the workflow's own events.
	owner string

	// With WithEventsInTransactions: whether WORKFLOW_STARTED still waits
	// for a committed write to go with; and which event goes with the next
	// write (final: COMPLETED; failReason set: FAILED).
	startPending bool
	final        bool
	failReason   string
}

// audience returns ctx under which the workflow's events go to the lead's
// owner as last committed (see owner).
func (w *execution) audience(ctx context.Context) context.Context {
	return notify.ForAudience(ctx, w.owner)
}

// tx runs f in a transaction of w's writes; with WithEventsInTransactions
// the workflow's pending events go with it (see hooks).
func (w *execution) tx(ctx context.Context, f func(tx *gorm.DB) error) error {
	if !w.r.cfg.withWrites {
		return w.r.db.WithContext(ctx).Transaction(f)
	}
	err := w.r.db.WithContext(events.WithHooks(ctx, w.hooks())).Transaction(f)
	if err == nil {
		w.startPending = false
	}
	return err
}

// hooks add the workflow's pending events to a write's: STARTED ahead of
// the first committed write's changes, COMPLETED or FAILED behind the last
// one's. They run at the commit, after readOwner, so the audience is the
// owner that write commits.
func (w *execution) hooks() events.Hooks {
	id := w.lead.ID
	return events.Hooks{
		Before: func(ctx context.Context) error {
			if !w.startPending {
				return nil
			}
			return w.r.n.NotifyWorkflowStarted(w.audience(ctx), id, Name)
		},
		After: func(ctx context.Context) error {
			switch {
			case w.final:
				return w.r.n.NotifyWorkflowCompleted(w.audience(ctx), id, Name)
			case w.failReason != "":
				return w.r.n.NotifyWorkflowFailed(w.audience(ctx), id, Name, w.failReason)
			}
			return nil
		},
	}
}

func (w *execution) execute(ctx context.Context) error {
	if w.status != lead.StatusNew {
		// Failed and Disqualified leads start over from New; the previous
		// run's processed_at no longer holds.
		w.activity = activityReset
		if err := w.move(ctx, lead.StatusNew, map[string]any{"processed_at": nil}); err != nil {
			return err
		}
	}
	data, err := w.enrich(ctx)
	if err != nil {
		return err
	}
	score, err := w.score(ctx, data)
	if err != nil {
		return err
	}
	qualified, err := w.vet(ctx, score)
	if err != nil || !qualified {
		return err
	}
	return w.zohoUpsert(ctx)
}

// enrich moves the lead to Enriching, asks the (simulated) provider, then
// stores the data and moves to Enriched in one transaction, in that order,
// so the interceptor reports ENRICHMENT_UPDATE before STATUS_UPDATE.
func (w *execution) enrich(ctx context.Context) (enrichment, error) {
	w.activity = activityEnrich
	if err := w.move(ctx, lead.StatusEnriching, nil); err != nil {
		return enrichment{}, err
	}
	if err := w.work(ctx); err != nil {
		return enrichment{}, err
	}
	data := w.r.enrichment(&w.lead)
	raw, err := data.json()
	if err != nil {
		return enrichment{}, w.dbError(ctx, err)
	}
	return data, w.setThenMove(ctx, map[string]any{"enrichment_data": raw}, lead.StatusEnriched)
}

// score computes the score and stores it, then moves to Scored, in one
// transaction (SCORE_UPDATE before STATUS_UPDATE).
func (w *execution) score(ctx context.Context, data enrichment) (float64, error) {
	w.activity = activityScore
	if err := w.work(ctx); err != nil {
		return 0, err
	}
	s := w.r.score(&w.lead, data)
	return s, w.setThenMove(ctx, map[string]any{"score": s}, lead.StatusScored)
}

// vet moves the lead to Vetted, then to Qualified when score reaches the
// threshold, else to Disqualified, which ends the workflow.
func (w *execution) vet(ctx context.Context, score float64) (bool, error) {
	w.activity = activityVet
	if err := w.work(ctx); err != nil {
		return false, err
	}
	if err := w.move(ctx, lead.StatusVetted, nil); err != nil {
		return false, err
	}
	if score >= w.r.cfg.threshold {
		return true, w.move(ctx, lead.StatusQualified, nil)
	}
	w.final = true
	return false, w.move(ctx, lead.StatusDisqualified, map[string]any{"processed_at": time.Now().UTC()})
}

// zohoUpsert sends the lead to the (simulated) CRM and moves it to
// SyncedToCrm, which ends the workflow.
func (w *execution) zohoUpsert(ctx context.Context) error {
	w.activity = activityZoho
	if err := w.work(ctx); err != nil {
		return err
	}
	w.final = true
	return w.move(ctx, lead.StatusSyncedToCrm, map[string]any{"processed_at": time.Now().UTC()})
}

// work is an activity's simulated external call: it takes the step delay
// and fails at the configured rate.
func (w *execution) work(ctx context.Context) error {
	if d := w.r.cfg.stepDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &stepError{activity: w.activity, reason: "workflow cancelled", err: ctx.Err()}
		}
	}
	if reason, failed := w.r.failure(w.activity); failed {
		return &stepError{activity: w.activity, reason: reason}
	}
	return nil
}

// move sets the status to to (and the columns of set) if the lead still has
// the status w knows and is live.
// move changes the status (and set), in a transaction that also reads the
// owner the write leaves (see owner).
func (w *execution) move(ctx context.Context, to string, set map[string]any) error {
	from := w.status
	err := w.tx(ctx, func(tx *gorm.DB) error {
		if err := w.update(ctx, tx, to, set); err != nil {
			return err
		}
		return w.readOwner(ctx, tx)
	})
	if err != nil {
		w.status = from
		var se *stepError
		if !errors.As(err, &se) {
			err = w.dbError(ctx, err)
		}
	}
	return err
}

// readOwner reads the lead's owner in tx, after this execution's update
// there: the row is locked until the commit, so it is the owner committed
// with the change.
func (w *execution) readOwner(ctx context.Context, tx *gorm.DB) error {
	var o struct{ Owner string }
	if err := tx.Model(&lead.Lead{}).Select("owner").Where("id = ?", w.lead.ID).Take(&o).Error; err != nil {
		return w.dbError(ctx, err)
	}
	w.owner = o.Owner
	return nil
}

// setThenMove writes set, then the status, as two statements of one
// transaction, both conditional on the known status.
func (w *execution) setThenMove(ctx context.Context, set map[string]any, to string) error {
	from := w.status
	err := w.tx(ctx, func(tx *gorm.DB) error {
		if err := w.update(ctx, tx, from, set); err != nil {
			return err
		}
		if err := w.update(ctx, tx, to, nil); err != nil {
			return err
		}
		return w.readOwner(ctx, tx)
	})
	if err != nil {
		w.status = from // the transaction rolled back, or its commit failed
		var se *stepError
		if !errors.As(err, &se) {
			err = w.dbError(ctx, err)
		}
	}
	return err
}

func (w *execution) update(ctx context.Context, db *gorm.DB, to string, set map[string]any) error {
	values := make(map[string]any, len(set)+1)
	for k, v := range set {
		values[k] = v
	}
	if to != w.status {
		values["status"] = to
	}
	res := db.Model(&lead.Lead{}).Where("id = ? AND status = ?", w.lead.ID, w.status).Updates(values)
	if res.Error != nil {
		return w.dbError(ctx, res.Error)
	}
	if res.RowsAffected == 0 {
		return &stepError{
			activity: w.activity, conflict: true,
			reason: fmt.Sprintf("lead was changed or deleted while the workflow ran (expected status %s)", w.status),
		}
	}
	w.status = to
	return nil
}

func (w *execution) dbError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &stepError{activity: w.activity, reason: "workflow cancelled", err: err}
	}
	return &stepError{activity: w.activity, reason: reasonDatabase, err: err}
}
