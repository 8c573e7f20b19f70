package eventlog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Event is one entry of the log: something that happened to a lead.
type Event struct {
	// Position is assigned by the log (0 before): increasing in delivery
	// order, one lead's events in the order their transactions committed,
	// and contiguous on PostgreSQL. Append ignores it.
	Position uint64
	LeadID   int64
	// Type is the wire type, e.g. "STATUS_UPDATE".
	Type string
	// Audience is the filter arg (the lead's owner) as of the event; "" means
	// everyone who may see all leads.
	Audience string
	// Payload is the wire message's JSON, stored as text and read back byte
	// for byte as appended (Append checks that it is valid JSON).
	Payload json.RawMessage
	// Time is when the event was appended, in UTC (on PostgreSQL the start
	// of the appending transaction). Append ignores it.
	Time time.Time

	encoded []byte // the Payload as NewEvent encoded it
}

// NewEvent returns an event of lead leadID with type typ and audience,
// its Payload v encoded by encoding/json. Append takes such a payload as
// valid JSON without parsing it again — most of what checking an event
// costs — and still checks its text; a Payload set or changed by hand is
// parsed.
func NewEvent(leadID int64, typ, audience string, v any) (Event, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("%w: encode the payload of %s of lead %d: %w", ErrInvalid, typ, leadID, err)
	}
	return Event{LeadID: leadID, Type: typ, Audience: audience, Payload: p, encoded: p}, nil
}

// marshaled reports whether e's Payload is the one NewEvent encoded.
func (e *Event) marshaled() bool {
	return len(e.encoded) > 0 && len(e.encoded) == len(e.Payload) && &e.encoded[0] == &e.Payload[0]
}

// Execer runs a statement: *sql.Tx, *sql.DB, *sql.Conn and a gorm
// ConnPool (db.Statement.ConnPool of a transaction) all satisfy it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ErrInvalid is wrapped by the error of an Append given an event it cannot
// store: nothing of that call is appended.
var ErrInvalid = errors.New("eventlog: invalid event")

// ErrClosed is returned by calls on a closed Log.
var ErrClosed = errors.New("eventlog: log closed")

// ErrPruned is wrapped by Tail's error when the events after its cursor
// have been pruned: the cursor is older than the log's Floor and the
// events in between are gone.
var ErrPruned = errors.New("eventlog: events pruned")

// validate reports why e cannot be stored, as an error wrapping ErrInvalid.
func validate(i int, e *Event) error {
	switch {
	case e.LeadID <= 0:
		return fmt.Errorf("event %d: lead id %d is not positive: %w", i, e.LeadID, ErrInvalid)
	case e.Type == "":
		return fmt.Errorf("event %d (lead %d): empty type: %w", i, e.LeadID, ErrInvalid)
	case !validText(e.Type):
		return fmt.Errorf("event %d (lead %d): type %q is not valid UTF-8 without NUL: %w", i, e.LeadID, e.Type, ErrInvalid)
	case !validText(e.Audience):
		return fmt.Errorf("event %d (lead %d): audience %q is not valid UTF-8 without NUL: %w", i, e.LeadID, e.Audience, ErrInvalid)
	case !e.marshaled() && !json.Valid(e.Payload):
		return fmt.Errorf("event %d (lead %d): payload is not valid JSON: %w", i, e.LeadID, ErrInvalid)
	case !utf8.Valid(e.Payload) || hasNULEscape(e.Payload):
		// PostgreSQL's jsonb, and so the clients' databases, reject both;
		// refusing here keeps the log's payloads portable and the two
		// databases alike.
		return fmt.Errorf("event %d (lead %d): payload holds invalid UTF-8 or \\u0000: %w", i, e.LeadID, ErrInvalid)
	}
	return nil
}

func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return false
		}
	}
	return true
}

// hasNULEscape reports whether valid JSON p holds the escape \u0000
// (backslashes occur only inside strings, each starting one escape).
func hasNULEscape(p []byte) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '\\' {
			continue
		}
		if i+5 < len(p) && p[i+1] == 'u' && string(p[i+2:i+6]) == "0000" {
			return true
		}
		i++ // the escaped character
	}
	return false
}
