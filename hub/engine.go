package hub

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/leadupdates/leadupdates/hub/internal/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// The engine (philippseith/signalr) never sees a client's bytes. Every
// connection talks MessagePack to it, whatever the client speaks: the filter
// in dispatch.go validates each client message and hands the engine a small,
// well-formed invocation, and translates what the engine writes back. That
// keeps the engine's per-connection read buffers small (its JSON reader holds
// 32 KB per connection), lets the hub answer malformed or unauthorized input
// itself, and bypasses the engine's mis-encoded MessagePack Close.

// engineHandshake is the handshake the filter sends the engine.
var engineHandshake = []byte("{\"protocol\":\"messagepack\",\"version\":1}\x1e")

// engineFrameLimit bounds every frame handed to the engine; it is the
// engine's MaximumReceiveMessageSize and so the size of its read buffer.
const engineFrameLimit = 512

// engineInvocation encodes an invocation for the engine. The filter always
// gives one an id, even for a client's send(), so that it can tell when the
// engine is done with it.
func engineInvocation(id, target string, args []any) ([]byte, error) {
	b, err := protocol.Frame(protocol.TypeInvocation, protocol.NoHeaders, id, target, args)
	if err != nil {
		return nil, err
	}
	if len(b) > engineFrameLimit {
		return nil, protocol.ErrTooLarge
	}
	return b, nil
}

// engineMessage is one message the engine wrote: a completion, a ping or a
// close.
type engineMessage struct {
	Type           int
	InvocationID   string
	ResultKind     int8 // 1 error, 2 void, 3 result
	Error          string
	Result         msgpack.RawMessage
	AllowReconnect bool
}

// decodeEngine decodes one frame the engine wrote. The engine writes each
// message with one Write call.
func decodeEngine(p []byte) (engineMessage, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || uint64(len(p)-k) < n {
		return engineMessage{}, errors.New("engine frame: bad length")
	}
	d := msgpack.NewDecoder(bytes.NewReader(p[k : k+int(n)]))
	if _, err := d.DecodeArrayLen(); err != nil {
		return engineMessage{}, fmt.Errorf("engine frame: %w", err)
	}
	typ, err := d.DecodeInt()
	if err != nil {
		return engineMessage{}, fmt.Errorf("engine frame: %w", err)
	}
	m := engineMessage{Type: typ}
	if typ == protocol.TypePing {
		return m, nil
	}
	if err := d.Skip(); err != nil { // headers, on every other message
		return m, fmt.Errorf("engine frame: %w", err)
	}
	switch typ {
	case protocol.TypeCompletion:
		if m.InvocationID, err = d.DecodeString(); err != nil {
			return m, fmt.Errorf("engine completion: %w", err)
		}
		if m.ResultKind, err = d.DecodeInt8(); err != nil {
			return m, fmt.Errorf("engine completion: %w", err)
		}
		switch m.ResultKind {
		case 1:
			m.Error, err = d.DecodeString()
		case 3:
			m.Result, err = d.DecodeRaw()
		}
		if err != nil {
			return m, fmt.Errorf("engine completion: %w", err)
		}
	case protocol.TypeClose:
		// The engine writes [7, {}, error, allowReconnect] under an array
		// header of 3; read the fields in order and ignore the count.
		m.Error, _ = d.DecodeString()
		m.AllowReconnect, _ = d.DecodeBool()
	}
	return m, nil
}

// decodeResult turns a result the engine encoded into a plain value that
// either client protocol can encode again: maps must have string keys.
func decodeResult(raw msgpack.RawMessage) (any, error) {
	if err := protocol.CheckMsgpack(raw); err != nil {
		return nil, err
	}
	return msgpack.NewDecoder(bytes.NewReader(raw)).DecodeInterface()
}
