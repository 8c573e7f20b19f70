package notify

import "github.com/vmihailenco/msgpack/v5"

// TypeReloadRequired is the type of a ReloadMessage, and MethodReload the
// client method it is delivered to: an addition to the contract, sent only
// by a hub whose lead events come from a durable log (WithLog).
const (
	TypeReloadRequired = "RELOAD_REQUIRED"
	MethodReload       = "ReceiveReload"
)

// ReloadMessage is the argument of ReceiveReload: the client asked to catch
// up from a position the log no longer holds, so replaying events cannot
// rebuild its view. It must reload its state (e.g. refetch over REST) and
// then treat Position as the last position it has seen: events after it
// follow live, and a later catch-up starts there. Type is always
// TypeReloadRequired.
//
// Every field is always sent. Positions are those of the log (see
// LeadUpdateMessage.Sequence); JavaScript reads them exactly up to 2^53.
type ReloadMessage struct {
	Type string `json:"type"`
	// Position is the log's head when the message was made: state
	// reloaded after receiving it includes every event up to Position.
	Position uint64 `json:"position"`
	// OldestPosition is the oldest event the log still holds: a client
	// whose last position is at least OldestPosition-1 can catch up.
	OldestPosition uint64    `json:"oldestPosition"`
	Timestamp      Timestamp `json:"timestamp"`
}

// EncodeMsgpack encodes m as a map with the same keys and values as its JSON.
func (m ReloadMessage) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := msgpackMap{enc: enc}
	w.len(4)
	w.str("type", m.Type)
	w.uint("position", m.Position)
	w.uint("oldestPosition", m.OldestPosition)
	w.custom("timestamp", m.Timestamp)
	return w.err
}

var _ msgpack.CustomEncoder = ReloadMessage{}
