package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Message types of the SignalR hub protocol.
const (
	TypeInvocation       = 1
	TypeStreamItem       = 2
	TypeCompletion       = 3
	TypeStreamInvocation = 4
	TypeCancelInvocation = 5
	TypePing             = 6
	TypeClose            = 7
	TypeAck              = 8
	TypeSequence         = 9
)

// RecordSeparator ends every JSON record, the handshake included.
const RecordSeparator = 0x1e

var (
	// ErrTooLarge is a record over the size limit.
	ErrTooLarge = errors.New("message exceeds the maximum message size")
	// ErrMalformed is a record or message that cannot be parsed.
	ErrMalformed = errors.New("malformed message")
)

// Message is one decoded message from a client, whichever protocol it came
// in. Arguments stay raw until the target method's parameter types are
// known.
type Message struct {
	Type         int
	InvocationID string
	HasID        bool // an invocation id that is not "": a Completion is due, as ASP.NET Core decides
	Target       string
	Args         []RawArg
	// SequenceID is the id an Ack or a Sequence message carries.
	SequenceID int64
}

// RawArg is one undecoded argument: JSON text or one MessagePack value.
type RawArg []byte

// A Protocol is one hub protocol as a client speaks it: framing, decoding
// what clients send and encoding what they receive.
type Protocol interface {
	Name() string // "json" or "messagepack"
	Binary() bool
	// ReadRecord reads the next message from r, at most limit bytes; see
	// ReadTextRecord for its errors.
	ReadRecord(r *bufio.Reader, limit int) ([]byte, error)
	// Decode decodes one record; its errors wrap ErrMalformed.
	Decode(record []byte) (Message, error)
	// DecodeArg decodes one argument into dst, a pointer; null is an error.
	DecodeArg(a RawArg, dst any) error
	Invocation(target string, args []any) ([]byte, error)
	Completion(id string, result any, hasResult bool, errText string) ([]byte, error)
	Close(errText string, allowReconnect bool) []byte
	Ping() []byte
	// Ack and Sequence are the messages of stateful reconnect: "received
	// every message up to id" and "the next message is id".
	Ack(id int64) []byte
	Sequence(id int64) []byte
}

// Counted reports whether messages of type typ count for stateful
// reconnect, which numbers and replays them: Invocation, StreamItem,
// Completion, StreamInvocation and CancelInvocation, as both the
// JavaScript client and ASP.NET Core count.
func Counted(typ int) bool { return typ >= TypeInvocation && typ <= TypeCancelInvocation }

// The two protocols.
var (
	JSON        Protocol = jsonProtocol{}
	MessagePack Protocol = msgpackProtocol{}
)

// ByName returns the protocol a handshake names, or nil.
func ByName(name string) Protocol {
	switch name {
	case "json":
		return JSON
	case "messagepack":
		return MessagePack
	}
	return nil
}

// ReadTextRecord reads up to the next record separator, excluding it. It
// looks only at bytes already received, so a record over limit fails as soon
// as its limit+1st byte arrives, whatever the transport frame size: the limit
// applies per hub message. At the end of input it returns io.EOF, or
// io.ErrUnexpectedEOF inside a record.
func ReadTextRecord(r *bufio.Reader, limit int) ([]byte, error) {
	var acc []byte
	for {
		if _, err := r.Peek(1); err != nil {
			if errors.Is(err, io.EOF) && len(acc) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf, _ := r.Peek(r.Buffered())
		if i := bytes.IndexByte(buf, RecordSeparator); i >= 0 {
			if len(acc)+i > limit {
				return nil, ErrTooLarge
			}
			rec := append(acc, buf[:i]...) // a copy: buf is bufio's
			_, _ = r.Discard(i + 1)
			return rec, nil
		}
		if len(acc)+len(buf) > limit {
			return nil, ErrTooLarge
		}
		acc = append(acc, buf...)
		_, _ = r.Discard(len(buf))
	}
}

type jsonProtocol struct{}

func (jsonProtocol) Name() string { return "json" }
func (jsonProtocol) Binary() bool { return false }

func (jsonProtocol) ReadRecord(r *bufio.Reader, limit int) ([]byte, error) {
	return ReadTextRecord(r, limit)
}

type jsonMessage struct {
	Type         *int              `json:"type"`
	InvocationID *string           `json:"invocationId"`
	Target       string            `json:"target"`
	Arguments    []json.RawMessage `json:"arguments"`
	SequenceID   json.RawMessage   `json:"sequenceId"`
}

func (jsonProtocol) Decode(record []byte) (Message, error) {
	var m jsonMessage
	if err := json.Unmarshal(record, &m); err != nil {
		return Message{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if m.Type == nil {
		return Message{}, fmt.Errorf("%w: no message type", ErrMalformed)
	}
	cm := Message{Type: *m.Type, Target: m.Target}
	if m.InvocationID != nil {
		cm.InvocationID, cm.HasID = *m.InvocationID, *m.InvocationID != ""
	}
	if len(m.Arguments) > 0 {
		cm.Args = make([]RawArg, len(m.Arguments))
		for i, a := range m.Arguments {
			cm.Args[i] = RawArg(a)
		}
	}
	if cm.Type == TypeAck || cm.Type == TypeSequence {
		if m.SequenceID == nil || json.Unmarshal(m.SequenceID, &cm.SequenceID) != nil {
			return cm, fmt.Errorf("%w: no integer sequenceId", ErrMalformed)
		}
	}
	return cm, nil
}

func (jsonProtocol) DecodeArg(a RawArg, dst any) error {
	if bytes.Equal(bytes.TrimSpace(a), []byte("null")) {
		return errors.New("null")
	}
	return json.Unmarshal(a, dst)
}

func (jsonProtocol) Invocation(target string, args []any) ([]byte, error) {
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(struct {
		Type      int    `json:"type"`
		Target    string `json:"target"`
		Arguments []any  `json:"arguments"`
	}{TypeInvocation, target, args})
	if err != nil {
		return nil, err
	}
	return append(b, RecordSeparator), nil
}

func (jsonProtocol) Completion(id string, result any, hasResult bool, errText string) ([]byte, error) {
	m := map[string]any{"type": TypeCompletion, "invocationId": id}
	switch {
	case errText != "":
		m["error"] = errText
	case hasResult:
		m["result"] = result
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(b, RecordSeparator), nil
}

func (jsonProtocol) Close(errText string, allowReconnect bool) []byte {
	b, _ := json.Marshal(struct {
		Type           int    `json:"type"`
		Error          string `json:"error,omitempty"`
		AllowReconnect bool   `json:"allowReconnect,omitempty"`
	}{TypeClose, errText, allowReconnect})
	return append(b, RecordSeparator)
}

func (jsonProtocol) Ping() []byte { return []byte("{\"type\":6}\x1e") }

func (jsonProtocol) Ack(id int64) []byte { return jsonSequenced(TypeAck, id) }

func (jsonProtocol) Sequence(id int64) []byte { return jsonSequenced(TypeSequence, id) }

func jsonSequenced(typ int, id int64) []byte {
	return fmt.Appendf(nil, "{\"type\":%d,\"sequenceId\":%d}\x1e", typ, id)
}

// msgpackProtocol is the MessagePack hub protocol: each message is a
// MessagePack array prefixed by its length as a VarInt.
type msgpackProtocol struct{}

func (msgpackProtocol) Name() string { return "messagepack" }
func (msgpackProtocol) Binary() bool { return true }

func (msgpackProtocol) ReadRecord(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := readLength(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, ErrTooLarge
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF // a length with no body
		}
		return nil, err
	}
	return b, nil
}

func (msgpackProtocol) Decode(record []byte) (Message, error) {
	if err := CheckMsgpack(record); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	d := msgpack.NewDecoder(bytes.NewReader(record))
	n, err := d.DecodeArrayLen()
	if err != nil || n < 1 {
		return Message{}, fmt.Errorf("%w: not a MessagePack array", ErrMalformed)
	}
	typ, err := d.DecodeInt()
	if err != nil {
		return Message{}, fmt.Errorf("%w: bad message type", ErrMalformed)
	}
	cm := Message{Type: typ}
	if typ == TypeAck || typ == TypeSequence {
		// [type, sequenceId]
		if n < 2 {
			return cm, fmt.Errorf("%w: no sequence id", ErrMalformed)
		}
		if cm.SequenceID, err = decodeSequenceID(d); err != nil {
			return cm, err
		}
		return cm, nil
	}
	if typ != TypeInvocation && typ != TypeStreamInvocation {
		return cm, nil // only invocations carry anything the hub reads
	}
	// [type, headers, invocationId, target, arguments, streamIds?]
	if n < 5 {
		return cm, fmt.Errorf("%w: invocation has %d fields", ErrMalformed, n)
	}
	if err := d.Skip(); err != nil { // headers
		return cm, fmt.Errorf("%w: bad headers", ErrMalformed)
	}
	switch code, _ := d.PeekCode(); {
	case code == msgpcode.Nil:
		_ = d.DecodeNil()
	case msgpcode.IsString(code):
		if cm.InvocationID, err = d.DecodeString(); err != nil {
			return cm, fmt.Errorf("%w: bad invocation id", ErrMalformed)
		}
		cm.HasID = cm.InvocationID != ""
	default:
		return cm, fmt.Errorf("%w: invocation id is not a string", ErrMalformed)
	}
	if cm.Target, err = d.DecodeString(); err != nil {
		return cm, fmt.Errorf("%w: bad target", ErrMalformed)
	}
	argc, err := d.DecodeArrayLen()
	if err != nil {
		return cm, fmt.Errorf("%w: bad arguments", ErrMalformed)
	}
	for range max(argc, 0) {
		raw, err := d.DecodeRaw()
		if err != nil {
			return cm, fmt.Errorf("%w: bad argument", ErrMalformed)
		}
		cm.Args = append(cm.Args, RawArg(raw))
	}
	return cm, nil
}

func (msgpackProtocol) DecodeArg(a RawArg, dst any) error {
	if len(a) == 1 && a[0] == 0xc0 {
		return errors.New("nil")
	}
	// a is part of a record CheckMsgpack accepted.
	d := msgpack.NewDecoder(bytes.NewReader(a))
	d.SetCustomStructTag("json")
	return d.Decode(dst)
}

// readLength reads a message's VarInt length prefix. An error reading is
// returned as it is (io.EOF before the first byte): the transport's, not
// the message's fault; a prefix too long is malformed.
func readLength(r *bufio.Reader) (uint64, error) {
	var n uint64
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, fmt.Errorf("%w: bad length prefix", ErrMalformed)
		}
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return n, nil
		}
		if i == binary.MaxVarintLen64-1 {
			return 0, fmt.Errorf("%w: bad length prefix", ErrMalformed)
		}
	}
}

// Frame encodes values as one length-prefixed MessagePack array.
func Frame(values ...any) ([]byte, error) {
	var body bytes.Buffer
	e := msgpack.NewEncoder(&body)
	e.SetCustomStructTag("json")
	e.UseCompactInts(true)
	if err := e.EncodeArrayLen(len(values)); err != nil {
		return nil, err
	}
	for _, v := range values {
		if err := e.Encode(v); err != nil {
			return nil, err
		}
	}
	out := binary.AppendUvarint(make([]byte, 0, body.Len()+binary.MaxVarintLen32), uint64(body.Len()))
	return append(out, body.Bytes()...), nil
}

// NoHeaders is the empty headers map of a MessagePack message.
var NoHeaders = map[string]string{}

func (msgpackProtocol) Invocation(target string, args []any) ([]byte, error) {
	if args == nil {
		args = []any{}
	}
	return Frame(TypeInvocation, NoHeaders, nil, target, args)
}

func (msgpackProtocol) Completion(id string, result any, hasResult bool, errText string) ([]byte, error) {
	switch {
	case errText != "":
		return Frame(TypeCompletion, NoHeaders, id, 1, errText)
	case hasResult:
		return Frame(TypeCompletion, NoHeaders, id, 3, result)
	}
	return Frame(TypeCompletion, NoHeaders, id, 2)
}

// Close is [7, error, allowReconnect], the layout the JavaScript client
// parses (the engine's own adds a headers map and breaks it).
func (msgpackProtocol) Close(errText string, allowReconnect bool) []byte {
	var e any
	if errText != "" {
		e = errText
	}
	b, _ := Frame(TypeClose, e, allowReconnect)
	return b
}

func (msgpackProtocol) Ping() []byte { return []byte{0x02, 0x91, TypePing} }

func (msgpackProtocol) Ack(id int64) []byte {
	b, _ := Frame(TypeAck, id)
	return b
}

func (msgpackProtocol) Sequence(id int64) []byte {
	b, _ := Frame(TypeSequence, id)
	return b
}

// decodeSequenceID reads an integer of any MessagePack size; one beyond
// int64 is malformed.
func decodeSequenceID(d *msgpack.Decoder) (int64, error) {
	code, err := d.PeekCode()
	if err != nil {
		return 0, fmt.Errorf("%w: bad sequence id", ErrMalformed)
	}
	if code == msgpcode.Uint64 {
		u, err := d.DecodeUint64()
		if err != nil || u > math.MaxInt64 {
			return 0, fmt.Errorf("%w: sequence id out of range", ErrMalformed)
		}
		return int64(u), nil
	}
	if !msgpcode.IsFixedNum(code) && (code < msgpcode.Uint8 || code > msgpcode.Int64) {
		return 0, fmt.Errorf("%w: sequence id is not an integer", ErrMalformed)
	}
	id, err := d.DecodeInt64()
	if err != nil {
		return 0, fmt.Errorf("%w: bad sequence id", ErrMalformed)
	}
	return id, nil
}
