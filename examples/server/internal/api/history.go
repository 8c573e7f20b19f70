package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// EventLog is the part of the server's event log the API reads;
// *eventlog.Log satisfies it.
type EventLog interface {
	// History returns up to limit of the lead's events with a position
	// above after, oldest first.
	History(ctx context.Context, leadID int64, after uint64, limit int) ([]eventlog.Event, error)
	// Head returns the highest position assigned.
	Head(ctx context.Context) (uint64, error)
}

const (
	defaultHistoryLimit = 200
	maxHistoryLimit     = 1000
)

// history is the answer of GET /api/leads/{id}/history.
type history struct {
	LeadID int64                      `json:"leadId"`
	Events []notify.LeadUpdateMessage `json:"events"`
	// Next is the after of the next page, 0 when this one is the last.
	Next uint64 `json:"next"`
}

// errNoLog answers the history of a server without an event log.
var errNoLog = &apiError{status: http.StatusServiceUnavailable, msg: "the event log is off on this server: no history"}

// history serves GET /api/leads/{id}/history?after=&limit=: the lead's
// events from the log, oldest first, each with its position as sequence.
// The access rule is the lead's: a live lead's to whoever may read it; a
// deleted lead's to admins and to the salesperson who owned it when it was
// deleted (its soft-deleted row says who); 404 otherwise.
func (a *API) history(w http.ResponseWriter, r *http.Request, u user) error {
	id, err := leadID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		// Positions are the log's bigint: up to 2^63-1.
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return badRequest("after", "after must be a position: an integer from 0 to 2^63-1")
		}
		after = uint64(n)
	}
	limit, err := intParam(q.Get("limit"), "limit", defaultHistoryLimit, 1, maxHistoryLimit)
	if err != nil {
		return err
	}
	ctx := r.Context()
	owner, err := a.everOwner(ctx, id)
	if err != nil {
		return err
	}
	if !u.canSee(owner) {
		return errNotFound
	}
	if a.log == nil {
		return errNoLog
	}
	evs, err := a.log.History(ctx, id, after, limit+1)
	if err != nil {
		return fmt.Errorf("history of lead %d: %w", id, err)
	}
	out := history{LeadID: id, Events: make([]notify.LeadUpdateMessage, 0, min(len(evs), limit))}
	if len(evs) > limit {
		evs = evs[:limit]
		out.Next = evs[limit-1].Position
	}
	for _, ev := range evs {
		m, err := message(ev)
		if err != nil {
			return fmt.Errorf("history of lead %d: %w", id, err)
		}
		out.Events = append(out.Events, m)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// everOwner returns the owner of lead id, live or soft-deleted (its owner
// when it was deleted).
func (a *API) everOwner(ctx context.Context, id int64) (string, error) {
	var l lead.Lead
	err := a.db.WithContext(ctx).Unscoped().Select("id", "owner").Take(&l, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", errNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read lead %d: %w", id, err)
	}
	return l.Owner, nil
}

// message is ev as the hub delivers it: its payload, the wire message
// without sequence, with its position as sequence. The lead is kept as
// the raw JSON it was logged as.
func message(ev eventlog.Event) (notify.LeadUpdateMessage, error) {
	var m notify.LeadUpdateMessage
	var raw struct {
		Lead json.RawMessage `json:"lead"`
	}
	if err := json.Unmarshal(ev.Payload, &m); err != nil {
		return m, fmt.Errorf("event %d: %w", ev.Position, err)
	}
	if err := json.Unmarshal(ev.Payload, &raw); err != nil {
		return m, fmt.Errorf("event %d: %w", ev.Position, err)
	}
	if len(raw.Lead) > 0 && string(raw.Lead) != "null" {
		m.Lead = raw.Lead
	}
	m.Sequence = ev.Position
	return m, nil
}
