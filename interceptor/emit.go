package interceptor

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"gorm.io/gorm"
)

// publishTimeout bounds the ctx of each Sink call.
const publishTimeout = 5 * time.Second

// order hands committed batches to the sink in ticket order. A ticket is
// taken just before COMMIT (or, in autocommit, after the statement); the
// batch waits until every earlier ticket finished, so a slow COMMIT that
// returns later never lets a later transaction overtake it.
type order struct {
	p *Plugin

	mu      sync.Mutex
	next    uint64
	head    uint64
	pending map[uint64][]Change
	done    map[uint64]bool
}

func (o *order) ticket() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.next
	o.next++
	return t
}

// finish records the batch of ticket t (nil: nothing to emit) and delivers
// every batch that is now at the head. In strict mode delivery is
// synchronous and the sink's error for t's own batch is returned.
func (o *order) finish(t uint64, cs []Change) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var own error
	if t != o.head {
		o.pending[t] = cs
		o.done[t] = true
		return nil
	}
	// t is at the head (the common case): delivered without the maps.
	o.head++
	if len(cs) > 0 {
		own = o.p.deliver(cs)
	}
	for o.done[o.head] {
		batch := o.pending[o.head]
		delete(o.pending, o.head)
		delete(o.done, o.head)
		o.head++
		if len(batch) > 0 {
			// Another transaction's batch: in strict mode its error is
			// logged and counted, not returned to this caller.
			_ = o.p.deliver(batch)
		}
	}
	return own
}

// deliver runs under order.mu. Without WithStrict it only queues.
func (p *Plugin) deliver(batch []Change) error {
	if p.closed {
		p.tel.changes.WithLabelValues("dropped").Add(float64(len(batch)))
		return nil
	}
	if p.cfg.strict {
		return p.publish(batch)
	}
	select {
	case p.queue <- batch:
	default:
		p.tel.changes.WithLabelValues("dropped").Add(float64(len(batch)))
		level.Warn(p.cfg.logger).Log("msg", "change queue full; changes dropped", "changes", len(batch), "queue", cap(p.queue))
	}
	return nil
}

// run is the delivery goroutine; Close stops it.
func (p *Plugin) run() {
	defer close(p.stopped)
	for batch := range p.queue {
		_ = p.publish(batch)
	}
}

// publish calls the sink, counting and logging failures and panics. The
// recover is there because the changes are committed: a panicking Sink
// must not reach a caller whose write succeeded (strict), nor end the
// delivery goroutine and with it every later batch
// (TestSinkFailuresNeverFailTheWrite).
func (p *Plugin) publish(batch []Change) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("interceptor: sink panicked: %v", v)
			p.tel.changes.WithLabelValues("panicked").Add(float64(len(batch)))
			level.Error(p.cfg.logger).Log("msg", "sink panicked", "changes", len(batch), "err", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err = p.sink.Publish(ctx, batch); err != nil {
		p.tel.changes.WithLabelValues("failed").Add(float64(len(batch)))
		level.Error(p.cfg.logger).Log("msg", "sink failed", "changes", len(batch), "err", err)
		return fmt.Errorf("interceptor: publish: %w", err)
	}
	p.tel.changes.WithLabelValues("published").Add(float64(len(batch)))
	return nil
}

// emit buffers cs in the statement's transaction, or, when the statement
// ran outside one (autocommit), hands them on at once: they are committed.
func (p *Plugin) emit(db *gorm.DB, cs []Change) {
	if len(cs) == 0 {
		return
	}
	p.createdAudience(db.Statement, cs)
	cp := db.Statement.ConnPool
	if t := txOf(cp); t != nil {
		t.add(cs)
		return
	}
	if p.cfg.log != nil {
		// refuseOutsideTx stopped such a statement; one that slipped
		// through (its SQL built by the caller) is committed unlogged.
		p.tel.changes.WithLabelValues("unsafe").Add(float64(len(cs)))
		level.Error(p.cfg.logger).Log("msg", "changes committed outside a transaction of the plugin: not logged", "changes", len(cs))
		return
	}
	if ps, ok := cp.(*gorm.PreparedStmtTX); ok {
		cp = ps.Tx
	}
	if _, foreign := cp.(gorm.TxCommitter); foreign {
		// A transaction this plugin did not begin: its commit is invisible.
		p.tel.changes.WithLabelValues("unsafe").Add(float64(len(cs)))
		level.Warn(p.cfg.logger).Log("msg", "changes emitted before commit: transaction not begun through the plugin's pool", "changes", len(cs))
	}
	if err := p.order.finish(p.order.ticket(), cs); err != nil {
		db.AddError(err)
	}
}

// createdAudience fills in the Audience of each OpNewLead from its Lead, the
// row as created (see Change.Lead).
func (p *Plugin) createdAudience(stmt *gorm.Statement, cs []Change) {
	if stmt.Schema == nil || cs[0].Op != OpNewLead {
		return
	}
	c, err := p.columns(stmt.Schema)
	if err != nil || c.audience == nil {
		return
	}
	for i := range cs {
		if cs[i].Op != OpNewLead || cs[i].Lead == nil {
			continue
		}
		rv := reflect.ValueOf(cs[i].Lead)
		for rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				break
			}
			rv = rv.Elem()
		}
		if rv.Kind() == reflect.Struct && rv.Type() == p.modelType {
			v, _ := c.audience.ValueOf(stmt.Context, rv)
			cs[i].Audience = toString(v)
		}
	}
}
