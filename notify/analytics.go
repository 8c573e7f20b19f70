package notify

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// TypeAnalyticsUpdate is the type of an AnalyticsUpdateMessage, and
// MethodAnalyticsUpdate the client method it is delivered to, an addition
// to the lead and metrics messages: clients that do not register it see
// nothing change.
const (
	TypeAnalyticsUpdate   = "ANALYTICS_UPDATE"
	MethodAnalyticsUpdate = "ReceiveAnalyticsUpdate"
)

// AnalyticsUpdateMessage is the argument of ReceiveAnalyticsUpdate: how
// lead processing went over the last day. Type is always
// TypeAnalyticsUpdate; Sequence is as on LeadUpdateMessage.
type AnalyticsUpdateMessage struct {
	Type      string    `json:"type"`
	Analytics Analytics `json:"analytics"`
	Timestamp Timestamp `json:"timestamp"`
	Sequence  uint64    `json:"sequence,omitempty"`
}

// Analytics are the processing figures of an AnalyticsUpdateMessage;
// package metrics computes them and documents their definitions. Every
// field is always sent: nil maps as {}, nil slices as [], NaN or infinite
// figures as 0.
type Analytics struct {
	// Start is the start of the first of Buckets consecutive intervals of
	// BucketSeconds seconds; the last one holds the time of computation.
	Start         Timestamp `json:"start"`
	BucketSeconds int64     `json:"bucketSeconds"`
	Buckets       int       `json:"buckets"`
	// Created, Processed and Failures hold one count per bucket (Buckets
	// of them), by source for leads created and processed, by workflow
	// activity for failures.
	Created   map[string][]int64 `json:"created"`
	Processed map[string][]int64 `json:"processed"`
	Failures  map[string][]int64 `json:"failures"`
	// ProcessingTime is seconds from creation to processing, over the
	// leads processed in the last hour and the last 24 hours.
	ProcessingTime ProcessingTimes `json:"processingTime"`
	// Funnel is the workflow's statuses in order, with the leads that
	// reached each.
	Funnel []FunnelStep `json:"funnel"`
}

// ProcessingTimes are the processing-time percentiles of two windows.
type ProcessingTimes struct {
	LastHour Percentiles `json:"lastHour"`
	LastDay  Percentiles `json:"lastDay"`
}

// Percentiles summarize Count durations in seconds: the median, the 95th
// percentile (both interpolated, as PostgreSQL's percentile_cont) and the
// maximum; all 0 when Count is 0.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	Max   float64 `json:"max"`
}

// FunnelStep is one status of the funnel: Leads reached it, Conversion is
// Leads as a percentage of the previous step's (100 for the first step, 0
// when the previous step has none).
type FunnelStep struct {
	Status     string  `json:"status"`
	Leads      int64   `json:"leads"`
	Conversion float64 `json:"conversion"`
}

type analyticsJSON Analytics

// MarshalJSON encodes a with nil maps as {}, nil slices as [] and NaN or
// infinite figures as 0.
func (a Analytics) MarshalJSON() ([]byte, error) {
	series := func(m map[string][]int64) map[string][]int64 {
		out := make(map[string][]int64, len(m))
		for k, v := range m {
			if v == nil {
				v = []int64{}
			}
			out[k] = v
		}
		return out
	}
	a.Created, a.Processed, a.Failures = series(a.Created), series(a.Processed), series(a.Failures)
	for _, p := range []*Percentiles{&a.ProcessingTime.LastHour, &a.ProcessingTime.LastDay} {
		p.P50, p.P95, p.Max = finite(p.P50), finite(p.P95), finite(p.Max)
	}
	funnel := make([]FunnelStep, len(a.Funnel))
	for i, s := range a.Funnel {
		s.Conversion = finite(s.Conversion)
		funnel[i] = s
	}
	a.Funnel = funnel
	return json.Marshal(analyticsJSON(a))
}

// EncodeMsgpack encodes a as the same value as its JSON.
func (a Analytics) EncodeMsgpack(enc *msgpack.Encoder) error { return msgpackAsJSON(enc, a) }

// EncodeMsgpack encodes m as the same value as its JSON.
func (m AnalyticsUpdateMessage) EncodeMsgpack(enc *msgpack.Encoder) error {
	return msgpackAsJSON(enc, m)
}

// msgpackAsJSON encodes v's JSON as MessagePack: objects as maps, integers
// as integers, other numbers as float64, so that both protocols carry the
// same keys and values.
func msgpackAsJSON(enc *msgpack.Encoder, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return err
	}
	return enc.Encode(numbers(x))
}

// numbers replaces the json.Numbers of a decoded JSON value with int64 or
// float64.
func numbers(x any) any {
	switch v := x.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, err := v.Float64()
		if err != nil {
			panic(fmt.Sprintf("notify: JSON number %s: %v", v, err)) // encoding/json wrote it
		}
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	}
	return x
}

var (
	_ msgpack.CustomEncoder = Analytics{}
	_ msgpack.CustomEncoder = AnalyticsUpdateMessage{}
)
