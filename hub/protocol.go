package hub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Message types of the SignalR hub protocol (HubProtocol.md).
const (
	typeInvocation       = 1
	typeStreamItem       = 2
	typeCompletion       = 3
	typeStreamInvocation = 4
	typeCancelInvocation = 5
	typePing             = 6
	typeClose            = 7
	typeAck              = 8
	typeSequence         = 9
)

const recordSeparator = 0x1e

var (
	errTooLarge  = errors.New("message exceeds the maximum message size")
	errMalformed = errors.New("malformed message")
)

// clientMessage is one decoded message from a client, whichever protocol it
// came in. Arguments stay raw until the target method's parameter types are
// known.
type clientMessage struct {
	Type         int
	InvocationID string
	HasID        bool
	Target       string
	Args         []rawArg
}

// rawArg is one undecoded argument: JSON text or one MessagePack value.
type rawArg []byte

// protocol is the client-facing half of a hub protocol: framing, decoding
// what clients send and encoding what they receive. The engine never sees a
// client's own bytes; see engine.go.
type protocol interface {
	name() string
	binary() bool
	// readRecord reads the next message from r, at most limit bytes.
	readRecord(r *bufio.Reader, limit int) ([]byte, error)
	decode(record []byte) (clientMessage, error)
	// decodeArg decodes one argument into dst, a pointer.
	decodeArg(a rawArg, dst any) error
	invocation(target string, args []any) ([]byte, error)
	completion(id string, result any, hasResult bool, errText string) ([]byte, error)
	closeFrame(errText string, allowReconnect bool) []byte
	ping() []byte
}

func protocolByName(name string) protocol {
	switch name {
	case "json":
		return jsonProtocol{}
	case "messagepack":
		return msgpackProtocol{}
	}
	return nil
}

// readTextRecord reads up to the next record separator, excluding it. It
// looks only at bytes already received, so a record over limit fails as soon
// as its limit+1st byte arrives, whatever the transport frame size: the limit
// applies per hub message. At the end of input it returns io.EOF, or
// io.ErrUnexpectedEOF inside a record.
func readTextRecord(r *bufio.Reader, limit int) ([]byte, error) {
	var acc []byte
	for {
		if _, err := r.Peek(1); err != nil {
			if errors.Is(err, io.EOF) && len(acc) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf, _ := r.Peek(r.Buffered())
		if i := bytes.IndexByte(buf, recordSeparator); i >= 0 {
			if len(acc)+i > limit {
				return nil, errTooLarge
			}
			rec := append(acc, buf[:i]...) // a copy: buf is bufio's
			_, _ = r.Discard(i + 1)
			return rec, nil
		}
		if len(acc)+len(buf) > limit {
			return nil, errTooLarge
		}
		acc = append(acc, buf...)
		_, _ = r.Discard(len(buf))
	}
}

type jsonProtocol struct{}

func (jsonProtocol) name() string { return "json" }
func (jsonProtocol) binary() bool { return false }

func (jsonProtocol) readRecord(r *bufio.Reader, limit int) ([]byte, error) {
	return readTextRecord(r, limit)
}

type jsonMessage struct {
	Type         *int              `json:"type"`
	InvocationID *string           `json:"invocationId"`
	Target       string            `json:"target"`
	Arguments    []json.RawMessage `json:"arguments"`
}

func (jsonProtocol) decode(record []byte) (clientMessage, error) {
	var m jsonMessage
	if err := json.Unmarshal(record, &m); err != nil {
		return clientMessage{}, fmt.Errorf("%w: not a JSON object", errMalformed)
	}
	if m.Type == nil {
		return clientMessage{}, fmt.Errorf("%w: no message type", errMalformed)
	}
	cm := clientMessage{Type: *m.Type, Target: m.Target}
	if m.InvocationID != nil {
		cm.InvocationID, cm.HasID = *m.InvocationID, true
	}
	if len(m.Arguments) > 0 {
		cm.Args = make([]rawArg, len(m.Arguments))
		for i, a := range m.Arguments {
			cm.Args[i] = rawArg(a)
		}
	}
	return cm, nil
}

func (jsonProtocol) decodeArg(a rawArg, dst any) error {
	if bytes.Equal(bytes.TrimSpace(a), []byte("null")) {
		return errors.New("null")
	}
	return json.Unmarshal(a, dst)
}

func (jsonProtocol) invocation(target string, args []any) ([]byte, error) {
	if args == nil {
		args = []any{}
	}
	b, err := json.Marshal(struct {
		Type      int    `json:"type"`
		Target    string `json:"target"`
		Arguments []any  `json:"arguments"`
	}{typeInvocation, target, args})
	if err != nil {
		return nil, err
	}
	return append(b, recordSeparator), nil
}

func (jsonProtocol) completion(id string, result any, hasResult bool, errText string) ([]byte, error) {
	m := map[string]any{"type": typeCompletion, "invocationId": id}
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
	return append(b, recordSeparator), nil
}

func (jsonProtocol) closeFrame(errText string, allowReconnect bool) []byte {
	b, _ := json.Marshal(struct {
		Type           int    `json:"type"`
		Error          string `json:"error,omitempty"`
		AllowReconnect bool   `json:"allowReconnect,omitempty"`
	}{typeClose, errText, allowReconnect})
	return append(b, recordSeparator)
}

func (jsonProtocol) ping() []byte { return []byte("{\"type\":6}\x1e") }

// msgpackProtocol is the MessagePack hub protocol: each message is a
// MessagePack array prefixed by its length as a VarInt.
type msgpackProtocol struct{}

func (msgpackProtocol) name() string { return "messagepack" }
func (msgpackProtocol) binary() bool { return true }

func (msgpackProtocol) readRecord(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: bad length prefix", errMalformed)
	}
	if n > uint64(limit) {
		return nil, errTooLarge
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

func (msgpackProtocol) decode(record []byte) (clientMessage, error) {
	if err := checkMsgpack(record); err != nil {
		return clientMessage{}, fmt.Errorf("%w: %w", errMalformed, err)
	}
	d := msgpack.NewDecoder(bytes.NewReader(record))
	n, err := d.DecodeArrayLen()
	if err != nil || n < 1 {
		return clientMessage{}, fmt.Errorf("%w: not a MessagePack array", errMalformed)
	}
	typ, err := d.DecodeInt()
	if err != nil {
		return clientMessage{}, fmt.Errorf("%w: bad message type", errMalformed)
	}
	cm := clientMessage{Type: typ}
	if typ != typeInvocation && typ != typeStreamInvocation {
		return cm, nil // only invocations carry anything the hub reads
	}
	// [type, headers, invocationId, target, arguments, streamIds?]
	if n < 5 {
		return cm, fmt.Errorf("%w: invocation has %d fields", errMalformed, n)
	}
	if err := d.Skip(); err != nil { // headers
		return cm, fmt.Errorf("%w: bad headers", errMalformed)
	}
	switch code, _ := d.PeekCode(); {
	case code == msgpcode.Nil:
		_ = d.DecodeNil()
	case msgpcode.IsString(code):
		if cm.InvocationID, err = d.DecodeString(); err != nil {
			return cm, fmt.Errorf("%w: bad invocation id", errMalformed)
		}
		cm.HasID = true
	default:
		return cm, fmt.Errorf("%w: invocation id is not a string", errMalformed)
	}
	if cm.Target, err = d.DecodeString(); err != nil {
		return cm, fmt.Errorf("%w: bad target", errMalformed)
	}
	argc, err := d.DecodeArrayLen()
	if err != nil {
		return cm, fmt.Errorf("%w: bad arguments", errMalformed)
	}
	for range max(argc, 0) {
		raw, err := d.DecodeRaw()
		if err != nil {
			return cm, fmt.Errorf("%w: bad argument", errMalformed)
		}
		cm.Args = append(cm.Args, rawArg(raw))
	}
	return cm, nil
}

func (msgpackProtocol) decodeArg(a rawArg, dst any) error {
	if len(a) == 1 && a[0] == 0xc0 {
		return errors.New("nil")
	}
	// a is part of a record checkMsgpack accepted.
	d := msgpack.NewDecoder(bytes.NewReader(a))
	d.SetCustomStructTag("json")
	return d.Decode(dst)
}

// msgpackFrame encodes values as one length-prefixed MessagePack array.
func msgpackFrame(values ...any) ([]byte, error) {
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

var noHeaders = map[string]string{}

func (msgpackProtocol) invocation(target string, args []any) ([]byte, error) {
	if args == nil {
		args = []any{}
	}
	return msgpackFrame(typeInvocation, noHeaders, nil, target, args)
}

func (msgpackProtocol) completion(id string, result any, hasResult bool, errText string) ([]byte, error) {
	switch {
	case errText != "":
		return msgpackFrame(typeCompletion, noHeaders, id, 1, errText)
	case hasResult:
		return msgpackFrame(typeCompletion, noHeaders, id, 3, result)
	}
	return msgpackFrame(typeCompletion, noHeaders, id, 2)
}

// closeFrame is [7, error, allowReconnect], the layout the JavaScript client
// parses (the engine's own adds a headers map and breaks it).
func (msgpackProtocol) closeFrame(errText string, allowReconnect bool) []byte {
	var e any
	if errText != "" {
		e = errText
	}
	b, _ := msgpackFrame(typeClose, e, allowReconnect)
	return b
}

func (msgpackProtocol) ping() []byte { return []byte{0x02, 0x91, typePing} }
