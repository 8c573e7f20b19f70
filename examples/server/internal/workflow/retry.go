package workflow

import (
	"context"
	"errors"
	"time"

	"github.com/go-kit/log/level"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/outage"
)

// Retries: a workflow that Submit could not start because the runner was
// busy or the database was away, or one that failed because the database
// went away under it, is started again later, after an exponential backoff
// (retryBase doubling up to retryMax per lead), until it runs. At most
// maxPending leads wait; beyond that a lead is dropped, counted and logged.
const (
	retryBase  = 500 * time.Millisecond
	retryMax   = 10 * time.Second
	retryTick  = 200 * time.Millisecond
	maxPending = 10000
)

// retries are the leads waiting for another start.
type retries struct {
	ctx        context.Context // of the retries' own database work; cancelled by stop
	cancel     context.CancelFunc
	stop, done chan struct{}
	pending    map[int64]*retryItem // guarded by Runner.mu
}

type retryItem struct {
	attempt int
	due     time.Time
}

// Submit starts the workflow of lead id like Start, for a caller that
// cannot wait or retry itself (the scrapers): when the runner is busy or the
// database is unavailable, the lead is queued and started later, and
// Submit returns nil. Other refusals are returned as by Start.
func (r *Runner) Submit(ctx context.Context, id int64) error {
	err := r.Start(ctx, id)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBusy):
		r.retryLater(id, "busy", err)
		return nil
	case outage.Is(err) && ctx.Err() == nil:
		r.retryLater(id, "database", err)
		return nil
	}
	return err
}

// Pending returns how many leads wait for a retry.
func (r *Runner) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.retry.pending)
}

// retryLater queues lead id for another start, after a backoff that grows
// with each attempt.
func (r *Runner) retryLater(id int64, reason string, err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		level.Warn(r.cfg.logger).Log("msg", "workflow not retried: the runner is closing; the lead keeps its status", "lead_id", id, "err", err)
		return
	}
	it, ok := r.retry.pending[id]
	if !ok {
		if len(r.retry.pending) >= maxPending {
			r.mu.Unlock()
			r.tel.retries.WithLabelValues("dropped").Inc()
			level.Error(r.cfg.logger).Log("msg", "retry queue full; workflow not retried", "lead_id", id, "pending", maxPending, "err", err)
			return
		}
		it = &retryItem{}
		r.retry.pending[id] = it
	}
	delay := min(retryMax, retryBase<<min(it.attempt, 10))
	it.attempt++
	it.due = time.Now().Add(delay)
	attempt := it.attempt
	r.tel.pending.Set(float64(len(r.retry.pending)))
	r.mu.Unlock()
	r.tel.retries.WithLabelValues(reason).Inc()
	level.Warn(r.cfg.logger).Log("msg", "workflow will be retried", "lead_id", id, "reason", reason, "attempt", attempt, "in", delay, "err", err)
}

// retryLoop starts the due retries until Close.
func (r *Runner) retryLoop() {
	defer close(r.retry.done)
	t := time.NewTicker(retryTick)
	defer t.Stop()
	for {
		select {
		case <-r.retry.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var due []int64
		r.mu.Lock()
		for id, it := range r.retry.pending {
			if !it.due.After(now) {
				due = append(due, id)
			}
		}
		r.mu.Unlock()
		for _, id := range due {
			select {
			case <-r.retry.stop:
				return
			default:
			}
			r.retryOne(id)
		}
	}
}

// retryOne tries lead id again. A lead that a workflow cut short by the
// outage left in an intermediate status is first marked Failed, from which
// the workflow starts over.
func (r *Runner) retryOne(id int64) {
	ctx, cancel := context.WithTimeout(r.retry.ctx, 10*time.Second)
	defer cancel()
	err := r.restartable(ctx, id)
	if err == nil {
		err = r.Start(ctx, id)
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrBusy):
		r.retryLater(id, "busy", err)
		return
	case r.retry.ctx.Err() != nil:
		return // closing: the lead stays pending, reported by stopRetries
	case outage.Is(err) || errors.Is(err, context.DeadlineExceeded):
		r.retryLater(id, "database", err)
		return
	default:
		level.Warn(r.cfg.logger).Log("msg", "workflow retry given up", "lead_id", id, "err", err)
	}
	r.mu.Lock()
	delete(r.retry.pending, id)
	r.tel.pending.Set(float64(len(r.retry.pending)))
	r.mu.Unlock()
}

// restartable moves lead id to Failed when it is in an intermediate status
// and no workflow of this runner runs it (its last one was cut short).
func (r *Runner) restartable(ctx context.Context, id int64) error {
	r.mu.Lock()
	running := hasKey(r.running, id)
	r.mu.Unlock()
	if running {
		return nil // Start answers ErrAlreadyRunning: given up
	}
	var l lead.Lead
	err := r.db.WithContext(ctx).Select("id", "status").Where("id = ?", id).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil // Start answers ErrNotFound: given up
	}
	if err != nil {
		return err
	}
	if lead.Processable(l.Status) || !lead.CanMove(l.Status, lead.StatusFailed) {
		return nil
	}
	return r.db.WithContext(ctx).Model(&lead.Lead{}).Where("id = ? AND status = ?", id, l.Status).
		Update("status", lead.StatusFailed).Error
}

// stopRetries stops the retry loop and reports the leads left waiting.
func (r *Runner) stopRetries() {
	r.retryStop.Do(func() {
		close(r.retry.stop)
		r.retry.cancel()
	})
	<-r.retry.done
	if n := r.Pending(); n > 0 {
		level.Warn(r.cfg.logger).Log("msg", "workflows left to retry at close; those leads keep their status", "leads", n)
	}
}
