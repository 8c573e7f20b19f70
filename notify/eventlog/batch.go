package eventlog

import (
	"context"
	"sync"
)

// A Batch collects the events of one transaction, so that code deep in a
// call chain (a GORM callback, a Notifier) can add events that the code
// owning the transaction appends just before COMMIT. A Batch is safe for
// concurrent use.
type Batch struct {
	mu      sync.Mutex
	evs     []Event
	written map[string][]int64 // table -> leads whose rows the transaction wrote
}

// NewBatch returns an empty Batch.
func NewBatch() *Batch { return &Batch{} }

// Add adds e to the batch.
func (b *Batch) Add(e Event) {
	b.mu.Lock()
	b.evs = append(b.evs, e)
	b.mu.Unlock()
}

// Wrote records that the transaction appending b has inserted, updated
// or deleted these leads' rows in table, so that it holds their row locks
// until it ends. When table is the log's lead table (WithLeadTable), those
// locks order the leads' events and Append takes none of its own for them;
// otherwise Wrote changes nothing.
func (b *Batch) Wrote(table string, leadIDs ...int64) {
	b.mu.Lock()
	if b.written == nil {
		b.written = map[string][]int64{}
	}
	b.written[table] = append(b.written[table], leadIDs...)
	b.mu.Unlock()
}

// Events returns a copy of the events added so far, in order.
func (b *Batch) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.evs...)
}

// Len returns how many events were added.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.evs)
}

type batchKey struct{}

// NewContext returns a copy of ctx carrying b.
func NewContext(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// FromContext returns the Batch ctx carries, or nil.
func FromContext(ctx context.Context) *Batch {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	return b
}

// snapshot returns a copy of the events and the leads written in table,
// nil when table is "" (no lead table configured: Wrote changes nothing).
func (b *Batch) snapshot(table string) ([]Event, map[int64]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	evs := append([]Event(nil), b.evs...)
	if table == "" || len(b.written[table]) == 0 {
		return evs, nil
	}
	wrote := make(map[int64]bool, len(b.written[table]))
	for _, id := range b.written[table] {
		wrote[id] = true
	}
	return evs, wrote
}
