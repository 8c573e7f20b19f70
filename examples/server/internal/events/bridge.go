package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// Notifier is what the bridge needs of *notify.Notifier.
type Notifier interface {
	NotifyNewLead(ctx context.Context, leadID int64, lead any, source string) error
	NotifyLeadStatusUpdate(ctx context.Context, leadID int64, previous, next string) error
	NotifyLeadScoreUpdate(ctx context.Context, leadID int64, previous, next float64) error
	NotifyLeadEnrichment(ctx context.Context, leadID int64, lead any) error
	NotifyLeadDeleted(ctx context.Context, leadID int64) error
}

// A Bridge is an interceptor.Sink. Each event goes to the audience of its
// Change (the lead's owner as the statement that changed it returned it,
// interceptor.Fields.Audience), through notify.ForAudience: who sees an
// event is decided by the row as committed, never by a cache another
// instance could have made stale.
type Bridge struct {
	n       Notifier
	trigger func()
	logger  log.Logger
}

// New returns a Bridge; trigger (may be nil) is called once per batch.
func New(n Notifier, trigger func(), logger log.Logger) *Bridge {
	if trigger == nil {
		trigger = func() {}
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	return &Bridge{n: n, trigger: trigger, logger: logger}
}

// Publish turns one transaction's changes into notifications, in order,
// after the Before and before the After of the ctx's Hooks.
//
// Without an event log it runs after COMMIT and never fails: a
// notification that cannot be queued is logged and the rest go on. Under
// interceptor.WithEventLog (ctx carries an eventlog.Batch) it runs before
// COMMIT and every notification is added to the transaction's batch: one
// that fails fails Publish, so that the transaction rolls back rather than
// commit a change whose event is not logged.
func (b *Bridge) Publish(ctx context.Context, changes []interceptor.Change) error {
	logged := eventlog.FromContext(ctx) != nil
	h := hooksFrom(ctx)
	var errs []error
	fail := func(what string, leadID int64, err error) {
		if err == nil || (!logged && errors.Is(err, notify.ErrClosed)) {
			return
		}
		if logged {
			errs = append(errs, fmt.Errorf("%s of lead %d: %w", what, leadID, err))
			return
		}
		level.Warn(b.logger).Log("msg", "notification not sent", "op", what, "lead_id", leadID, "err", err)
	}
	if h.Before != nil {
		fail("hook", 0, h.Before(ctx))
	}
	for _, c := range changes {
		fail(string(c.Op), c.LeadID, b.one(ctx, c))
	}
	if h.After != nil {
		fail("hook", 0, h.After(ctx))
	}
	b.trigger()
	return errors.Join(errs...)
}

func (b *Bridge) one(ctx context.Context, c interceptor.Change) error {
	ctx = notify.ForAudience(ctx, c.Audience)
	switch c.Op {
	case interceptor.OpNewLead:
		l, ok := c.Lead.(*lead.Lead)
		if !ok {
			return b.n.NotifyNewLead(ctx, c.LeadID, map[string]any{"id": c.LeadID}, "")
		}
		return b.n.NotifyNewLead(ctx, c.LeadID, l.View(), l.Source)
	case interceptor.OpStatusUpdate:
		return b.n.NotifyLeadStatusUpdate(ctx, c.LeadID, c.PreviousStatus, c.NewStatus)
	case interceptor.OpScoreUpdate:
		return b.n.NotifyLeadScoreUpdate(ctx, c.LeadID, c.PreviousScore, c.NewScore)
	case interceptor.OpEnrichmentUpdate:
		s, _ := c.Enrichment["enrichment_data"].(string)
		if bs, ok := c.Enrichment["enrichment_data"].([]byte); ok {
			s = string(bs)
		}
		return b.n.NotifyLeadEnrichment(ctx, c.LeadID, enrichment{ID: c.LeadID, EnrichmentData: lead.DecodeEnrichment(s)})
	case interceptor.OpLeadDeleted:
		return b.n.NotifyLeadDeleted(ctx, c.LeadID)
	}
	return nil
}

// enrichment is the lead of an ENRICHMENT_UPDATE: the id and the new data.
type enrichment struct {
	ID             int64          `json:"id"`
	EnrichmentData map[string]any `json:"enrichmentData"`
}
