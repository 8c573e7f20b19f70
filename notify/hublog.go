package notify

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// reloadTimeout bounds the queries of HubLog.Reload, which has no ctx.
const reloadTimeout = 5 * time.Second

// A HubLog is the hub.Log through which a hub's clients catch up from a
// durable event log (hub.WithLog): it reads the log's events as the
// Notifier's relay publishes them, the same message for the same position,
// so a replayed event and a live one are byte for byte alike. Give it the
// Notifier's own options, so that both decide the audience alike:
//
//	l, err := eventlog.Open(ctx, db)
//	opts := []notify.Option{notify.WithLog(l), notify.WithAudience(ownerOf)}
//	srv, err := hub.New(hub.WithLog(notify.NewHubLog(l, opts...)),
//		hub.WithFilter(notify.FilterName, canSee))
//	n, err := notify.New(srv, opts...)
//
// A HubLog is safe for concurrent use and starts no goroutine.
type HubLog struct {
	l       *eventlog.Log
	entries entries
	cfg     config
	// The head and floor last seen, for a Reload whose queries fail.
	head, floor atomic.Uint64
}

var _ hub.Log = (*HubLog)(nil)

// NewHubLog returns the hub.Log of l. Of opts, the Notifier's options,
// only WithAudience (whether every event is filtered) and WithLogger
// (undecodable events) matter here; l is read whatever WithLog says.
func NewHubLog(l *eventlog.Log, opts ...Option) *HubLog {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	return &HubLog{l: l, cfg: cfg, entries: entries{filtered: cfg.audience != nil}}
}

// Read returns up to limit entries after position after, ascending, or an
// error wrapping hub.ErrPruned when the log no longer holds every event
// after it (after is below the log's floor). An event that cannot be
// decoded is left out and logged, as the relay does.
func (h *HubLog) Read(ctx context.Context, after uint64, limit int) ([]hub.Entry, error) {
	evs, err := h.l.Read(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("notify: catch up after %d: %w", after, err)
	}
	// The floor only rises: read after the events, it proves that none
	// after after was pruned before they were read.
	floor, err := h.l.Floor(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify: catch up after %d: %w", after, err)
	}
	h.floor.Store(floor)
	if after < floor {
		return nil, fmt.Errorf("notify: catch up after %d: events up to %d are pruned: %w", after, floor, hub.ErrPruned)
	}
	out := make([]hub.Entry, 0, len(evs))
	for _, ev := range evs {
		e, err := h.entries.entry(ev)
		if err != nil {
			level.Error(h.cfg.logger).Log("msg", "logged event not replayed", "position", ev.Position, "err", err)
			continue
		}
		out = append(out, e)
	}
	if len(evs) > 0 {
		h.head.Store(max(h.head.Load(), evs[len(evs)-1].Position))
	}
	return out, nil
}

// Reload returns the message a client gets instead of a catch-up that
// cannot be complete: ReceiveReload with a ReloadMessage naming the log's
// head and the oldest event it holds.
func (h *HubLog) Reload(after uint64) (target string, args []any) {
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	head, err := h.l.Head(ctx)
	if err != nil {
		head = h.head.Load()
		level.Warn(h.cfg.logger).Log("msg", "reload: log head unknown; sending the last seen", "head", head, "err", err)
	}
	floor, err := h.l.Floor(ctx)
	if err != nil {
		floor = h.floor.Load()
	}
	return MethodReload, []any{ReloadMessage{
		Type: TypeReloadRequired, Position: head, OldestPosition: floor + 1, Timestamp: now(),
	}}
}
