package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// This file turns the events of a durable log back into the messages
// clients receive. The log keeps each LeadUpdateMessage as its JSON (without
// sequence); the application's lead value inside it is JSON from then on.
// The contract's own fields are decoded into a LeadUpdateMessage and
// encoded as on the live path; the lead is kept as JSON text and written to
// MessagePack clients as the same value: objects as maps in the stored key
// order, integers as integers, other numbers as float64. A float field of
// the lead that holds a whole number (87.0) is written by encoding/json as
// 87 and so reaches MessagePack clients as an integer, which JavaScript
// reads as the same number.

// logEvent returns the log event of m, a lead message under audience; the
// message is encoded once, here.
func logEvent(m *LeadUpdateMessage, audience string) (eventlog.Event, error) {
	ev, err := eventlog.NewEvent(m.LeadID, m.Type, audience, m)
	if err != nil {
		return eventlog.Event{}, fmt.Errorf("%w: encode %s of lead %d: %v", ErrInvalid, m.Type, m.LeadID, err)
	}
	return ev, nil
}

// entries converts log events into hub entries, as the relay publishes them
// and as CatchUp replays them. filtered says whether every event goes
// through the audience filter (WithAudience); otherwise only events that
// have an audience do.
type entries struct {
	filtered bool
}

// entry returns the hub entry of ev: ReceiveLeadUpdate to LeadUpdates and
// the lead's group, narrowed by the audience filter as the live path does,
// with the message's sequence set to ev's position.
func (c entries) entry(ev eventlog.Event) (hub.Entry, error) {
	m, err := decodeLogged(ev.Payload)
	if err != nil {
		return hub.Entry{}, fmt.Errorf("notify: event at position %d (lead %d): %w", ev.Position, ev.LeadID, err)
	}
	m.Sequence = ev.Position
	e := hub.Entry{
		Position: ev.Position,
		Groups:   []string{hub.DefaultGroup, hub.LeadGroup(ev.LeadID)},
		Target:   MethodLeadUpdate,
		Args:     []any{m},
	}
	if c.filtered || ev.Audience != "" {
		e.Filter, e.Arg = FilterName, ev.Audience
	}
	return e, nil
}

// decodeLogged decodes a stored LeadUpdateMessage, keeping its lead as JSON.
func decodeLogged(payload []byte) (*LeadUpdateMessage, error) {
	var s struct {
		leadUpdateJSON
		// Lead shadows leadUpdateJSON.Lead: the outer field wins.
		Lead jsonValue `json:"lead"`
	}
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, fmt.Errorf("decode logged message: %w", err)
	}
	m := LeadUpdateMessage(s.leadUpdateJSON)
	if len(s.Lead) > 0 && string(s.Lead) != "null" {
		m.Lead = s.Lead
	}
	return &m, nil
}

// jsonValue is a JSON value sent as it is to JSON clients and converted
// value for value for MessagePack clients.
type jsonValue []byte

// MarshalJSON returns v (encoding/json compacts it).
func (v jsonValue) MarshalJSON() ([]byte, error) {
	if len(v) == 0 {
		return []byte("null"), nil
	}
	return v, nil
}

// UnmarshalJSON keeps a copy of b.
func (v *jsonValue) UnmarshalJSON(b []byte) error {
	*v = append((*v)[:0], b...)
	return nil
}

// EncodeMsgpack writes v as MessagePack: see jsonToMsgpack.
func (v jsonValue) EncodeMsgpack(enc *msgpack.Encoder) error {
	if len(v) == 0 {
		return enc.EncodeNil()
	}
	return jsonToMsgpack(enc, v)
}

var (
	_ json.Marshaler        = jsonValue(nil)
	_ json.Unmarshaler      = (*jsonValue)(nil)
	_ msgpack.CustomEncoder = jsonValue(nil)
)

// jsonToMsgpack writes the JSON value data as MessagePack: objects as maps
// with their keys in order, arrays, strings, booleans, null; a number
// written without fraction or exponent as an integer (unsigned beyond
// int64), any other as float64. The result depends only on data, not on
// how enc is configured.
func jsonToMsgpack(enc *msgpack.Encoder, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// First the tokens, counting each container's children (an object's
	// keys and values both count), because MessagePack writes a length
	// before the elements.
	var (
		toks  []json.Token
		count []int // per token: children of a container
		open  []int // indexes of the containers being read
	)
	for {
		t, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("notify: logged JSON: %w", err)
		}
		if d, ok := t.(json.Delim); ok && (d == '}' || d == ']') {
			open = open[:len(open)-1]
			toks, count = append(toks, t), append(count, 0)
			continue
		}
		if len(open) > 0 {
			count[open[len(open)-1]]++
		}
		toks, count = append(toks, t), append(count, 0)
		if d, ok := t.(json.Delim); ok && (d == '{' || d == '[') {
			open = append(open, len(toks)-1)
		}
	}
	for i, t := range toks {
		var err error
		switch t := t.(type) {
		case json.Delim:
			switch t {
			case '{':
				err = enc.EncodeMapLen(count[i] / 2)
			case '[':
				err = enc.EncodeArrayLen(count[i])
			}
		case string:
			err = enc.EncodeString(t)
		case json.Number:
			err = encodeNumber(enc, string(t))
		case bool:
			err = enc.EncodeBool(t)
		case nil:
			err = enc.EncodeNil()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// encodeNumber writes a JSON number as an integer when it is written as
// one and fits in 64 bits, otherwise as float64.
func encodeNumber(enc *msgpack.Encoder, s string) error {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return enc.EncodeInt(i)
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return enc.EncodeUint(u)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("notify: logged JSON number %s: %w", s, err)
	}
	return enc.EncodeFloat64(f) // ±Inf beyond float64's range cannot come from encoding/json
}
