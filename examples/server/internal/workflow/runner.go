package workflow

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/go-kit/log/level"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/outage"
)

// Name is the workflow's name in WORKFLOW_* events.
const Name = "LeadProcessing"

// A Runner runs the LeadProcessing workflow on leads. It is safe for
// concurrent use. At most one workflow runs per lead, and at most
// WithConcurrency in all.
type Runner struct {
	db  *gorm.DB
	n   Notifier
	cfg config
	tel *telemetry

	randMu sync.Mutex
	rand   *rand.Rand

	// ctx is the parent of background runs: detached from any request,
	// cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	running map[int64]struct{}
	wg      sync.WaitGroup

	retry     retries
	retryStop sync.Once
}

// New returns a Runner that updates leads through db (on which the server
// has registered the interceptor, which reports the status, score and
// enrichment changes) and sends WORKFLOW_STARTED, COMPLETED and FAILED
// through n. It starts the goroutine that retries workflows Submit queued
// (see Submit); Close stops it and the background workflows.
func New(db *gorm.DB, n Notifier, opts ...Option) (*Runner, error) {
	if db == nil {
		return nil, errors.New("workflow: nil *gorm.DB")
	}
	if n == nil {
		return nil, errors.New("workflow: nil Notifier")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case !(cfg.failureRate >= 0 && cfg.failureRate <= 1):
		return nil, fmt.Errorf("workflow: failure rate %v must be between 0 and 1", cfg.failureRate)
	case cfg.stepDelay < 0:
		return nil, fmt.Errorf("workflow: step delay %v must not be negative", cfg.stepDelay)
	case cfg.concurrency < 1:
		return nil, fmt.Errorf("workflow: concurrency %d must be at least 1", cfg.concurrency)
	case !(cfg.threshold >= 0 && cfg.threshold <= 100):
		return nil, fmt.Errorf("workflow: threshold %v must be between 0 and 100", cfg.threshold)
	case cfg.logger == nil:
		return nil, errors.New("workflow: nil logger")
	}
	if cfg.rand == nil {
		cfg.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	tel, err := newTelemetry(cfg.registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{
		db: db, n: n, cfg: cfg, tel: tel, rand: cfg.rand,
		ctx: ctx, cancel: cancel, running: map[int64]struct{}{},
		retry: retries{stop: make(chan struct{}), done: make(chan struct{}), pending: map[int64]*retryItem{}},
	}
	r.retry.ctx, r.retry.cancel = context.WithCancel(context.Background())
	go r.retryLoop()
	return r, nil
}

// Start checks that lead id exists, is live and processable (New, Failed or
// Disqualified) and has no workflow running, then runs the workflow in the
// background, detached from ctx (which bounds only the check). A refusal is
// a *RefusedError: ErrNotFound, ErrNotProcessable, ErrAlreadyRunning,
// ErrBusy or ErrClosed; any other error is the database's.
func (r *Runner) Start(ctx context.Context, id int64) error {
	l, err := r.admit(ctx, id)
	if err != nil {
		return err
	}
	go func() {
		defer r.release(id)
		_ = r.run(r.ctx, l)
	}()
	return nil
}

// Process is Start that runs the workflow in the caller's goroutine and
// returns when it has finished: nil when it completed (the lead is
// SyncedToCrm or Disqualified), a *FailedError when it failed. Cancelling
// ctx, or Close, cancels the run (the lead is then marked Failed).
func (r *Runner) Process(ctx context.Context, id int64) error {
	l, err := r.admit(ctx, id)
	if err != nil {
		return err
	}
	defer r.release(id)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()
	return r.run(ctx, l)
}

// Running returns how many workflows are running.
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// Close stops accepting workflows (Start and Process return ErrClosed),
// stops the retries (leads still waiting keep their status, logged) and
// waits for the running ones to finish. When ctx is done first, it cancels
// them — each marks its lead Failed ("workflow cancelled") within a short
// cleanup timeout — waits for them to return and returns ctx.Err(). No
// goroutine of the Runner survives Close.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stopRetries()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		<-done
		return ctx.Err()
	}
}

// admit claims the lead's slot, then checks the lead; the claim comes first
// so that of two concurrent calls for one lead exactly one runs.
func (r *Runner) admit(ctx context.Context, id int64) (lead.Lead, error) {
	if err := r.claim(id); err != nil {
		r.tel.refuse(err)
		return lead.Lead{}, &RefusedError{LeadID: id, Err: err}
	}
	var l lead.Lead
	err := r.db.WithContext(ctx).Where("id = ?", id).Take(&l).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		err = &RefusedError{LeadID: id, Err: ErrNotFound}
	case err != nil:
		err = fmt.Errorf("workflow: load lead %d: %w", id, err)
	case !lead.Processable(l.Status):
		err = &RefusedError{LeadID: id, Status: l.Status, Err: ErrNotProcessable}
	}
	if err != nil {
		r.release(id)
		var re *RefusedError
		if errors.As(err, &re) {
			r.tel.refuse(re.Err)
		}
		return lead.Lead{}, err
	}
	return l, nil
}

func (r *Runner) claim(id int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case hasKey(r.running, id):
		return ErrAlreadyRunning
	case len(r.running) >= r.cfg.concurrency:
		return ErrBusy
	}
	r.running[id] = struct{}{}
	r.wg.Add(1)
	r.tel.running.Inc()
	return nil
}

func (r *Runner) release(id int64) {
	r.mu.Lock()
	delete(r.running, id)
	r.tel.running.Dec()
	r.mu.Unlock()
	r.wg.Done()
}

func hasKey(m map[int64]struct{}, k int64) bool {
	_, ok := m[k]
	return ok
}

// run executes the workflow on l and sends its events. A panic in an
// activity fails the run instead of the process.
func (r *Runner) run(ctx context.Context, l lead.Lead) (err error) {
	w := &execution{r: r, lead: l, status: l.Status, owner: l.Owner, startPending: r.cfg.withWrites}
	if !r.cfg.withWrites {
		r.notify(l.ID, "WORKFLOW_STARTED", func() error { return r.n.NotifyWorkflowStarted(w.audience(ctx), l.ID, Name) })
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = &stepError{activity: w.activity, reason: "internal error", err: fmt.Errorf("panic: %v", p)}
			}
		}()
		err = w.execute(ctx)
	}()
	if err == nil {
		outcome := outcomeSynced
		if w.status == lead.StatusDisqualified {
			outcome = outcomeDisqualified
		}
		r.tel.runs.WithLabelValues(outcome).Inc()
		if !r.cfg.withWrites { // else logged with the last write
			r.notify(l.ID, "WORKFLOW_COMPLETED", func() error { return r.n.NotifyWorkflowCompleted(w.audience(ctx), l.ID, Name) })
		}
		return nil
	}
	return r.fail(ctx, w, err)
}

// fail marks the lead Failed (unless another writer changed it: that change
// stands) and sends WORKFLOW_FAILED. It runs on a context that survives
// cancellation, bounded by a short timeout, so that a cancelled run does
// not leave its lead in an intermediate status.
func (r *Runner) fail(ctx context.Context, w *execution, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.cleanup)
	defer cancel()
	var se *stepError
	if !errors.As(err, &se) {
		se = &stepError{activity: w.activity, reason: "internal error", err: err}
	}
	r.tel.runs.WithLabelValues(outcomeFailed).Inc()
	logger := level.Warn(r.cfg.logger)
	kv := []any{"msg", "workflow failed", "lead_id", w.lead.ID, "activity", se.activity, "reason", se.reason}
	if se.err != nil { // a simulated failure has only its reason
		kv = append(kv, "err", se.err)
	}
	logger.Log(kv...)
	if r.cfg.onFailure != nil { // first, so that it is recorded when the move to Failed is seen
		r.cfg.onFailure(ctx, w.lead.ID, se.activity)
	}
	w.final, w.failReason = false, se.reason // WORKFLOW_FAILED goes with the move to Failed
	moved := false
	if !se.conflict && w.status != lead.StatusFailed && lead.CanMove(w.status, lead.StatusFailed) {
		if mErr := w.move(ctx, lead.StatusFailed, nil); mErr != nil {
			logger.Log("msg", "could not mark lead failed", "lead_id", w.lead.ID, "err", mErr)
		} else {
			moved = true
		}
	}
	if !moved {
		// No write of ours to read the owner with: the row as committed now
		// (someone else's change, such as a reassignment, may be why it
		// failed). Deleted or unreadable: the last owner we read.
		var o struct{ Owner string }
		if r.db.WithContext(ctx).Unscoped().Model(&lead.Lead{}).Select("owner").Where("id = ?", w.lead.ID).Take(&o).Error == nil {
			w.owner = o.Owner
		}
	}
	switch {
	case !r.cfg.withWrites:
		r.notify(w.lead.ID, "WORKFLOW_FAILED", func() error { return r.n.NotifyWorkflowFailed(w.audience(ctx), w.lead.ID, Name, se.reason) })
	case !moved: // no write of ours to go with: on their own, retried through an outage
		if w.startPending {
			r.notifyRetrying(ctx, w.lead.ID, "WORKFLOW_STARTED", func() error { return r.n.NotifyWorkflowStarted(w.audience(ctx), w.lead.ID, Name) })
		}
		r.notifyRetrying(ctx, w.lead.ID, "WORKFLOW_FAILED", func() error { return r.n.NotifyWorkflowFailed(w.audience(ctx), w.lead.ID, Name, se.reason) })
	}
	if se.reason == reasonDatabase && outage.Is(se.err) {
		// The database went away under the workflow: run it again once it
		// is back, rather than leave the lead Failed (or, when even that
		// move failed, in the middle of the workflow).
		r.retryLater(w.lead.ID, "database", se.err)
	}
	return &FailedError{LeadID: w.lead.ID, Activity: se.activity, Reason: se.reason}
}
