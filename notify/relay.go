package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-kit/log/level"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// startTimeout bounds the head lookup of New with WithLog.
const startTimeout = 10 * time.Second

// append logs a lead event (WithLog): into the caller's batch when ctx
// carries one, else in a transaction of its own.
func (n *Notifier) append(ctx context.Context, m *LeadUpdateMessage, audience string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.RLock()
	closed := n.closed
	n.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	ev, err := logEvent(m, audience)
	if err != nil {
		return err
	}
	if b := eventlog.FromContext(ctx); b != nil {
		b.Add(ev)
		return nil
	}
	if err := n.cfg.log.Append(ctx, nil, ev); err != nil {
		return fmt.Errorf("notify: log %s of lead %d: %w", m.Type, m.LeadID, err)
	}
	return nil
}

// startRelay starts the relay from the log's current head.
func (n *Notifier) startRelay() error {
	n.entries = entries{filtered: n.cfg.audience != nil}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	head, err := n.cfg.log.Head(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("notify: start relay: %w", err)
	}
	ctx, n.stopRelay = context.WithCancel(context.Background())
	n.relayDone = make(chan struct{})
	go n.relay(ctx, head)
	return nil
}

// relay publishes the log's events after after to the hub, in position
// order, until ctx ends. When Tail fails it starts again from the last
// event published, after a pause that grows with consecutive failures: the
// hub sends nothing twice to a connection (Server.Publish), so resuming
// never duplicates. When the events after the cursor were pruned (this
// instance fell behind the retention), it goes on from the oldest event
// kept: the pruned ones are lost for live delivery, and clients that
// missed them are told to reload when they catch up.
func (n *Notifier) relay(ctx context.Context, after uint64) {
	defer close(n.relayDone)
	logger := level.Error(n.cfg.logger)
	fails := 0
	for {
		err := n.cfg.log.Tail(ctx, after, func(evs []eventlog.Event) error {
			for _, ev := range evs {
				n.publish(ev)
				after = ev.Position
			}
			fails = 0
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, eventlog.ErrClosed) {
			logger.Log("msg", "event log closed; relay stopped", "position", after)
			return
		}
		fails++
		n.tel.relayFailures.Inc()
		logger.Log("msg", "relay failed; resuming", "position", after, "err", err)
		if errors.Is(err, eventlog.ErrPruned) {
			if floor, ferr := n.cfg.log.Floor(ctx); ferr == nil && floor > after {
				n.tel.dropped.WithLabelValues("pruned").Add(float64(floor - after))
				after = floor
			}
		}
		t := time.NewTimer(backoff(fails))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// publish hands one logged event to the hub. As in send, a panicking
// Clients must not end the relay.
func (n *Notifier) publish(ev eventlog.Event) {
	defer func() {
		if v := recover(); v != nil {
			n.tel.dropped.WithLabelValues("panic").Inc()
			level.Error(n.cfg.logger).Log("msg", "publish panicked", "position", ev.Position, "err", fmt.Sprint(v))
		}
	}()
	e, err := n.entries.entry(ev)
	if err != nil {
		n.tel.dropped.WithLabelValues("decode").Inc()
		level.Error(n.cfg.logger).Log("msg", "logged event not published", "position", ev.Position, "err", err)
		return
	}
	n.clients.Publish(e)
	n.tel.sent.WithLabelValues(ev.Type).Inc()
}

// backoff is the pause after the nth consecutive failure: 100 ms doubling
// up to 5 s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}
