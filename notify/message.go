package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// This file is the wire contract: what a dashboard receives, byte for byte.
// It is shared with the TypeScript clients (notify/ts/leadupdates.ts
// declares the same contract, and the golden tests check both against the
// same JSON), so nothing here may be renamed or removed; new fields must be
// optional.
//
// The hub serves JSON and MessagePack clients. Every type here encodes to the
// same value in both: the JSON through encoding/json, the MessagePack through
// an EncodeMsgpack method that writes the same keys itself, so the result
// does not depend on how the hub configures its MessagePack encoder.

// The message types, the "type" field of every message: the eight lead
// types of a LeadUpdateMessage, and METRICS_UPDATE for a
// MetricsUpdateMessage. They are plain strings because the field is one on
// the wire and in the TypeScript declaration.
const (
	TypeNewLead           = "NEW_LEAD"
	TypeStatusUpdate      = "STATUS_UPDATE"
	TypeScoreUpdate       = "SCORE_UPDATE"
	TypeEnrichmentUpdate  = "ENRICHMENT_UPDATE"
	TypeWorkflowStarted   = "WORKFLOW_STARTED"
	TypeWorkflowCompleted = "WORKFLOW_COMPLETED"
	TypeWorkflowFailed    = "WORKFLOW_FAILED"
	TypeLeadDeleted       = "LEAD_DELETED"
	TypeMetricsUpdate     = "METRICS_UPDATE"
)

// The client methods a message is delivered to: a LeadUpdateMessage is the
// single argument of ReceiveLeadUpdate, a MetricsUpdateMessage that of
// ReceiveMetricsUpdate. Clients register handlers under exactly these names
// (connection.on("ReceiveLeadUpdate", ...)).
const (
	MethodLeadUpdate    = "ReceiveLeadUpdate"
	MethodMetricsUpdate = "ReceiveMetricsUpdate"
)

// LeadUpdateMessage is the argument of ReceiveLeadUpdate: something happened
// to one lead. Every field but Type and Timestamp is optional and omitted
// from the wire when zero, so clients test for presence ("newStatus" in
// msg), never for empty strings.
//
// A score that is NaN or infinite is omitted, as if unknown: JSON cannot
// carry it, and a MessagePack client must not see a value a JSON client
// cannot.
type LeadUpdateMessage struct {
	// Type is one of the lead types, TypeNewLead to TypeLeadDeleted.
	Type   string `json:"type"`
	LeadID int64  `json:"leadId,omitempty"`
	// Lead is the application's own lead value, encoded as it is by
	// encoding/json for JSON clients and by the hub's MessagePack encoder
	// (which honours json struct tags) for MessagePack clients. It should
	// hold only JSON types (strings, numbers, booleans, maps, slices,
	// structs of them) so that both kinds of client see the same lead; a
	// time.Time field, for one, is a string in JSON but a MessagePack
	// timestamp extension.
	Lead           any    `json:"lead,omitempty"`
	Source         string `json:"source,omitempty"`
	PreviousStatus string `json:"previousStatus,omitempty"`
	NewStatus      string `json:"newStatus,omitempty"`
	// PreviousScore and NewScore are set on SCORE_UPDATE. They are
	// pointers because 0 is a valid score that must reach the client.
	PreviousScore *float64  `json:"previousScore,omitempty"`
	NewScore      *float64  `json:"newScore,omitempty"`
	Timestamp     Timestamp `json:"timestamp"`
	Message       string    `json:"message,omitempty"`
	// Sequence increases with every message of one producer, so that a
	// client can discard a message older than state it already has, e.g.
	// after reconnecting and refetching. A Notifier uses microseconds since
	// the epoch (one more than its last when the clock has not moved on), so
	// the sequences of several producers — the instances of a hub joined by
	// a backplane — compare as their clocks do, and a restarted producer
	// never goes back. Gaps are normal: a client does not receive every
	// message. 0 means unnumbered and is omitted. JavaScript reads it as a
	// number, exact up to 2^53 (the year 2255 in microseconds).
	//
	// With a durable log (a Notifier WithLog), Sequence is the event's
	// position in the log instead: increasing across every instance in one
	// global order, and the same number for the same event at every client,
	// whether it arrived live or by catch-up. Delivery from the log is at
	// least once, so a client drops a message whose sequence is not above
	// the last it applied, and keeps that last one to catch up from after a
	// reconnect. Gaps still occur: they are events filtered away from the
	// client, or of leads whose groups it is not in.
	Sequence uint64 `json:"sequence,omitempty"`
}

// leadUpdateJSON is LeadUpdateMessage without its methods, for encoding/json.
type leadUpdateJSON LeadUpdateMessage

// MarshalJSON encodes m as the client sees it, leaving out a score that is
// NaN or infinite (encoding/json would fail on it).
func (m LeadUpdateMessage) MarshalJSON() ([]byte, error) {
	m.PreviousScore = finiteOrNil(m.PreviousScore)
	m.NewScore = finiteOrNil(m.NewScore)
	return json.Marshal(leadUpdateJSON(m))
}

// EncodeMsgpack encodes m as a map with the same keys and values as its JSON.
func (m LeadUpdateMessage) EncodeMsgpack(enc *msgpack.Encoder) error {
	prev, next := finiteOrNil(m.PreviousScore), finiteOrNil(m.NewScore)
	n := 2 // type, timestamp
	for _, present := range []bool{
		m.LeadID != 0, m.Lead != nil, m.Source != "", m.PreviousStatus != "", m.NewStatus != "",
		prev != nil, next != nil, m.Message != "", m.Sequence != 0,
	} {
		if present {
			n++
		}
	}
	w := msgpackMap{enc: enc}
	w.len(n)
	w.str("type", m.Type)
	if m.LeadID != 0 {
		w.int("leadId", m.LeadID)
	}
	if m.Lead != nil {
		w.any("lead", m.Lead)
	}
	w.optStr("source", m.Source)
	w.optStr("previousStatus", m.PreviousStatus)
	w.optStr("newStatus", m.NewStatus)
	if prev != nil {
		w.float("previousScore", *prev)
	}
	if next != nil {
		w.float("newScore", *next)
	}
	w.custom("timestamp", m.Timestamp)
	w.optStr("message", m.Message)
	if m.Sequence != 0 {
		w.uint("sequence", m.Sequence)
	}
	return w.err
}

// MetricsUpdateMessage is the argument of ReceiveMetricsUpdate: a fresh set
// of dashboard figures. Type is always TypeMetricsUpdate; Sequence is as on
// LeadUpdateMessage.
type MetricsUpdateMessage struct {
	Type      string    `json:"type"`
	Metrics   Metrics   `json:"metrics"`
	Timestamp Timestamp `json:"timestamp"`
	Sequence  uint64    `json:"sequence,omitempty"`
}

// EncodeMsgpack encodes m as a map with the same keys and values as its JSON.
func (m MetricsUpdateMessage) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 3
	if m.Sequence != 0 {
		n++
	}
	w := msgpackMap{enc: enc}
	w.len(n)
	w.str("type", m.Type)
	w.custom("metrics", m.Metrics)
	w.custom("timestamp", m.Timestamp)
	if m.Sequence != 0 {
		w.uint("sequence", m.Sequence)
	}
	return w.err
}

// Metrics are the dashboard figures of a MetricsUpdateMessage; package
// metrics computes them from the leads table. Every field is always sent,
// because the TypeScript contract declares none of them optional: a client
// reads msg.metrics.totalLeads without a check.
// So that this holds for any value a producer fills in, a nil map is sent as
// {} (never null) and a NaN or infinite figure as 0 (JSON has no NaN, and a
// dashboard would print it).
type Metrics struct {
	TotalLeads       int64   `json:"totalLeads"`
	QualifiedLeads   int64   `json:"qualifiedLeads"`
	ConversionRate   float64 `json:"conversionRate"` // QualifiedLeads / TotalLeads × 100
	ActiveHarvesters int64   `json:"activeHarvesters"`
	ProcessingTime   float64 `json:"processingTime"` // mean seconds from creation to processing, over the last 24 hours
	ScoreAverage     float64 `json:"scoreAverage"`   // over leads that have a score
	DailyGrowth      float64 `json:"dailyGrowth"`    // % change of new leads, today against yesterday
	WeeklyGrowth     float64 `json:"weeklyGrowth"`   // % change of new leads, last 7 days against the 7 before
	NewLeadsToday    int64   `json:"newLeadsToday"`
	ProcessedToday   int64   `json:"processedToday"`
	// LeadsBySource and LeadsByStatus count leads per source and per
	// status name.
	LeadsBySource map[string]int64 `json:"leadsBySource"`
	LeadsByStatus map[string]int64 `json:"leadsByStatus"`
}

// metricsJSON is Metrics without its methods, for encoding/json.
type metricsJSON Metrics

// MarshalJSON encodes m with nil maps as {} and NaN or infinite figures as 0.
func (m Metrics) MarshalJSON() ([]byte, error) {
	m.ConversionRate = finite(m.ConversionRate)
	m.ProcessingTime = finite(m.ProcessingTime)
	m.ScoreAverage = finite(m.ScoreAverage)
	m.DailyGrowth = finite(m.DailyGrowth)
	m.WeeklyGrowth = finite(m.WeeklyGrowth)
	if m.LeadsBySource == nil {
		m.LeadsBySource = map[string]int64{}
	}
	if m.LeadsByStatus == nil {
		m.LeadsByStatus = map[string]int64{}
	}
	return json.Marshal(metricsJSON(m))
}

// EncodeMsgpack encodes m as a map with the same keys and values as its JSON.
func (m Metrics) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := msgpackMap{enc: enc}
	w.len(12)
	w.int("totalLeads", m.TotalLeads)
	w.int("qualifiedLeads", m.QualifiedLeads)
	w.float("conversionRate", finite(m.ConversionRate))
	w.int("activeHarvesters", m.ActiveHarvesters)
	w.float("processingTime", finite(m.ProcessingTime))
	w.float("scoreAverage", finite(m.ScoreAverage))
	w.float("dailyGrowth", finite(m.DailyGrowth))
	w.float("weeklyGrowth", finite(m.WeeklyGrowth))
	w.int("newLeadsToday", m.NewLeadsToday)
	w.int("processedToday", m.ProcessedToday)
	w.counts("leadsBySource", m.LeadsBySource)
	w.counts("leadsByStatus", m.LeadsByStatus)
	return w.err
}

// Timestamp is a message's time. It is sent as RFC 3339 in UTC with exactly
// three fractional digits, "2026-11-26T18:11:29.123Z", whatever the zone and
// precision of the time.Time: that is what JavaScript's Date produces and
// parses (new Date(msg.timestamp), Date.prototype.toISOString), and a
// fixed-width string sorts in time order. Digits beyond the millisecond are
// truncated. MessagePack clients receive the same string, not a MessagePack
// timestamp extension, so that client code does not depend on the protocol.
//
// The zero Timestamp is sent as "0001-01-01T00:00:00.000Z"; producers set
// the time. A year outside 0-9999 cannot be written in this form and fails
// to encode.
type Timestamp struct {
	time.Time
}

// wireLayout is the layout of a Timestamp on the wire, for a time in UTC.
const wireLayout = "2006-01-02T15:04:05.000Z"

// errTimestampYear reports a time that RFC 3339 cannot represent.
var errTimestampYear = errors.New("notify: timestamp year outside 0-9999")

func (t Timestamp) appendWire(b []byte) ([]byte, error) {
	u := t.UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		return nil, errTimestampYear
	}
	return u.AppendFormat(b, wireLayout), nil
}

// MarshalText returns t as it is sent, e.g. "2026-11-26T18:11:29.123Z".
func (t Timestamp) MarshalText() ([]byte, error) {
	return t.appendWire(make([]byte, 0, len(wireLayout)))
}

// MarshalJSON returns t as a JSON string, e.g. "2026-11-26T18:11:29.123Z".
func (t Timestamp) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(wireLayout)+2)
	b = append(b, '"')
	b, err := t.appendWire(b)
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}

// EncodeMsgpack writes t as the same string as its JSON.
func (t Timestamp) EncodeMsgpack(enc *msgpack.Encoder) error {
	var buf [len(wireLayout)]byte
	b, err := t.appendWire(buf[:0])
	if err != nil {
		return err
	}
	return enc.EncodeString(string(b))
}

// UnmarshalText parses any RFC 3339 time, with or without fractional seconds
// and in any zone, so that a Go client also reads timestamps written by other
// servers (ASP.NET Core sends seven fractional digits).
func (t *Timestamp) UnmarshalText(b []byte) error {
	v, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return fmt.Errorf("notify: timestamp: %w", err)
	}
	t.Time = v
	return nil
}

// UnmarshalJSON parses a JSON string as UnmarshalText does. JSON null leaves
// t unchanged, as encoding/json does for its own types.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("notify: timestamp: %w", err)
	}
	return t.UnmarshalText([]byte(s))
}

// DecodeMsgpack reads a string written by EncodeMsgpack; nil leaves t
// unchanged.
func (t *Timestamp) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeInterface()
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return t.UnmarshalText([]byte(v))
	default:
		return fmt.Errorf("notify: timestamp: MessagePack %T, want a string", v)
	}
}

var (
	_ json.Marshaler        = Timestamp{}
	_ json.Unmarshaler      = (*Timestamp)(nil)
	_ msgpack.CustomEncoder = Timestamp{}
	_ msgpack.CustomDecoder = (*Timestamp)(nil)
	_ msgpack.CustomEncoder = Metrics{}
	_ msgpack.CustomEncoder = LeadUpdateMessage{}
	_ msgpack.CustomEncoder = MetricsUpdateMessage{}
)

// finite returns f, or 0 if f is NaN or infinite.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// finiteOrNil returns p, or nil if *p is NaN or infinite.
func finiteOrNil(p *float64) *float64 {
	if p == nil || math.IsNaN(*p) || math.IsInf(*p, 0) {
		return nil
	}
	return p
}

// msgpackMap writes the entries of one MessagePack map, keeping the first
// error so that the callers read as a list of fields.
type msgpackMap struct {
	enc *msgpack.Encoder
	err error
}

func (w *msgpackMap) len(n int) {
	if w.err == nil {
		w.err = w.enc.EncodeMapLen(n)
	}
}

func (w *msgpackMap) key(k string) bool {
	if w.err == nil {
		w.err = w.enc.EncodeString(k)
	}
	return w.err == nil
}

func (w *msgpackMap) str(k, v string) {
	if w.key(k) {
		w.err = w.enc.EncodeString(v)
	}
}

func (w *msgpackMap) optStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *msgpackMap) int(k string, v int64) {
	if w.key(k) {
		w.err = w.enc.EncodeInt(v)
	}
}

func (w *msgpackMap) uint(k string, v uint64) {
	if w.key(k) {
		w.err = w.enc.EncodeUint(v)
	}
}

func (w *msgpackMap) float(k string, v float64) {
	if w.key(k) {
		w.err = w.enc.EncodeFloat64(v)
	}
}

func (w *msgpackMap) any(k string, v any) {
	if w.key(k) {
		w.err = w.enc.Encode(v)
	}
}

func (w *msgpackMap) custom(k string, v msgpack.CustomEncoder) {
	if w.key(k) {
		w.err = v.EncodeMsgpack(w.enc)
	}
}

// counts writes a count map, a nil one as an empty map as in the JSON.
func (w *msgpackMap) counts(k string, m map[string]int64) {
	if !w.key(k) {
		return
	}
	if m == nil {
		w.err = w.enc.EncodeMapLen(0)
		return
	}
	w.err = w.enc.Encode(m)
}
