package signalrtest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/coder/websocket"
	"github.com/vmihailenco/msgpack/v5"
)

// Protocol is a hub protocol: how hub messages are encoded and framed after
// the handshake.
type Protocol int

const (
	// JSON messages are text, each followed by the record separator 0x1e.
	JSON Protocol = iota
	// MessagePack messages are binary, each preceded by its length as a
	// VarInt of at most 5 bytes.
	MessagePack
)

// recordSeparator ends every JSON record, and the handshake and its answer in
// either protocol.
const recordSeparator = 0x1e

// ErrMalformed is wrapped by every error that says the server's bytes do
// not frame as records, as opposed to the end of a connection or stream.
var ErrMalformed = errors.New("signalrtest: malformed framing")

var errLengthPrefix = fmt.Errorf("%w: MessagePack length prefix longer than 5 bytes or over 2 GiB", ErrMalformed)

// String returns the protocol's name in the handshake: "json" or
// "messagepack".
func (p Protocol) String() string {
	if p == MessagePack {
		return "messagepack"
	}
	return "json"
}

// Handshake returns the handshake request that selects p, separator
// included.
func (p Protocol) Handshake() []byte { return p.handshake(1) }

func (p Protocol) handshake(version int) []byte {
	return fmt.Appendf(nil, `{"protocol":"%s","version":%d}`+"\x1e", p, version)
}

// Ack returns p's Ack message for stateful reconnect, framed: "received
// every message up to id".
func (p Protocol) Ack(id int64) []byte { return p.sequenced(8, id) }

// Sequence returns p's Sequence message, framed: "the next message is id".
func (p Protocol) Sequence(id int64) []byte { return p.sequenced(9, id) }

func (p Protocol) sequenced(typ int, id int64) []byte {
	if p == MessagePack {
		return MessagePackFrame(typ, id)
	}
	return fmt.Appendf(nil, `{"type":%d,"sequenceId":%d}`+"\x1e", typ, id)
}

// MessageType is the WebSocket message type that carries p.
func (p Protocol) MessageType() websocket.MessageType { return p.messageType() }

// messageType is the WebSocket message type that carries p.
func (p Protocol) messageType() websocket.MessageType {
	if p == MessagePack {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// ping returns p's Ping message, framed.
func (p Protocol) ping() []byte {
	if p == MessagePack {
		return []byte{0x02, 0x91, 0x06} // length 2, [6]
	}
	return []byte(`{"type":6}` + "\x1e")
}

// cut returns the first whole record of b in protocol p, without its
// framing, and how many bytes of b it took up; n is 0 if b does not hold a
// whole record yet.
func cut(b []byte, p Protocol) (rec []byte, n int, err error) {
	if p == JSON {
		i := bytes.IndexByte(b, recordSeparator)
		if i < 0 {
			return nil, 0, nil
		}
		return b[:i], i + 1, nil
	}
	size, k := binary.Uvarint(b)
	switch {
	case k < 0, k > 5, k == 0 && len(b) >= 5, size > math.MaxInt32:
		return nil, 0, errLengthPrefix
	case k == 0, uint64(len(b)-k) < size:
		return nil, 0, nil
	}
	end := k + int(size)
	return b[k:end], end, nil
}

// Split splits b, whole frames of protocol p one after another (the body of
// a Long Polling answer, say), into records. It fails if b ends inside a
// frame.
func Split(b []byte, p Protocol) ([][]byte, error) {
	var recs [][]byte
	for len(b) > 0 {
		rec, n, err := cut(b, p)
		if err != nil {
			return recs, err
		}
		if n == 0 {
			return recs, fmt.Errorf("%w: %d bytes after the last whole %v record: %q", ErrMalformed, len(b), p, b)
		}
		recs = append(recs, rec)
		b = b[n:]
	}
	return recs, nil
}

// JSONInvocation returns a JSON Invocation message, framed. An empty id
// leaves invocationId out: the hub then sends no completion. For ease of
// use in tests, it panics if args cannot be encoded as JSON.
func JSONInvocation(id, target string, args ...any) []byte {
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(struct {
		Type         int    `json:"type"`
		InvocationID string `json:"invocationId,omitempty"`
		Target       string `json:"target"`
		Arguments    []any  `json:"arguments"`
	}{1, id, target, args})
	if err != nil {
		panic("signalrtest: JSONInvocation: " + err.Error())
	}
	return append(b, recordSeparator)
}

// MessagePackFrame encodes values as one MessagePack array and frames it:
// MessagePackFrame(1, map[string]any{}, "7", "JoinLeadGroup", []any{42}) is
// an Invocation. For ease of use in tests, it panics if values cannot be
// encoded.
func MessagePackFrame(values ...any) []byte {
	body, err := msgpack.Marshal(values)
	if err != nil {
		panic("signalrtest: MessagePackFrame: " + err.Error())
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// Message is a JSON hub message with every field a hub sends; fields that
// are absent stay zero.
type Message struct {
	Type           int               `json:"type"`
	InvocationID   string            `json:"invocationId"`
	Target         string            `json:"target"`
	Arguments      []json.RawMessage `json:"arguments"`
	Result         json.RawMessage   `json:"result"`
	Error          *string           `json:"error"` // nil if absent
	AllowReconnect bool              `json:"allowReconnect"`
	SequenceID     int64             `json:"sequenceId"`
	Raw            []byte            `json:"-"` // the record as received
}

// DecodeJSON decodes one JSON record (without its separator).
func DecodeJSON(rec []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(rec, &m); err != nil {
		return Message{}, fmt.Errorf("signalrtest: record is not a JSON message: %w in %q", err, rec)
	}
	m.Raw = rec
	return m, nil
}

// DecodeMessagePack decodes one MessagePack record (without its length
// prefix), which must be exactly one array. Values keep the types the
// encoding gives them (7 as a fixint decodes to int8(7)); maps decode as
// map[any]any.
func DecodeMessagePack(rec []byte) ([]any, error) {
	d := msgpack.NewDecoder(bytes.NewReader(rec))
	d.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	v, err := d.DecodeInterface()
	if err != nil {
		return nil, fmt.Errorf("signalrtest: record is not MessagePack: %w in %x", err, rec)
	}
	if rest, _ := io.ReadAll(d.Buffered()); len(rest) > 0 {
		return nil, fmt.Errorf("signalrtest: MessagePack record has %d trailing bytes: %x", len(rest), rec)
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("signalrtest: MessagePack record is not an array: %#v", v)
	}
	return a, nil
}
