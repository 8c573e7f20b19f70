package protocol

// Fuzz tests of what parses a client's bytes: the two record framings and
// the two message decoders.
//
//	go test -run=^$ -fuzz=FuzzJSONRecords -fuzztime=20s ./hub/internal/protocol/
//
// Without -fuzz, `go test` runs each fuzzer over its seeds and over
// testdata/fuzz/FuzzX/, where crashers are kept.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// chunkReader hands out data at most n bytes per Read, as a transport hands
// out frames: records straddle reads at every possible offset.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

// fuzzReader builds the bufio.Reader the parsers read from.
func fuzzReader(data []byte, chunk uint8) *bufio.Reader {
	return bufio.NewReaderSize(&chunkReader{b: data, n: int(chunk%64) + 1}, 16)
}

func fuzzLimit(limit uint16) int { return int(limit%300) + 1 }

var seedRecords = [][]byte{
	[]byte(`{"protocol":"json","version":1}` + "\x1e"),
	[]byte(`{"type":1,"invocationId":"1","target":"JoinLeadGroup","arguments":[5]}` + "\x1e"),
	[]byte(`{"type":1,"target":"LeaveLeadGroup","arguments":[5]}` + "\x1e" + `{"type":6}` + "\x1e"),
	[]byte(`{"type":4,"invocationId":"s","target":"x","arguments":[]}` + "\x1e" + `{"type":5,"invocationId":"s"}` + "\x1e"),
	[]byte(`{"type":7,"error":"bye","allowReconnect":true}` + "\x1e" + `{"type":8,"sequenceId":1}` + "\x1e"),
	[]byte(`{bad json` + "\x1e" + `{"type":42}`),
	[]byte(`{"type":1,"invocationId":5,"arguments":{"a":null}}` + "\x1e\x1e\x1e"),
	[]byte(`{"type":1,"invocationId":"1","target":"JoinLeadGroup","arguments":["12",1.5,null,9223372036854775808]}` + "\x1e"),
	[]byte(strings.Repeat("a", 400) + "\x1e" + strings.Repeat("b", 10)),
	{},
	{0x1e},
}

// FuzzJSONRecords reads arbitrary bytes as JSON records and decodes each.
// The records must be exactly the input split at the record separators, none
// longer than the limit; a record over the limit must fail with ErrTooLarge.
func FuzzJSONRecords(f *testing.F) {
	for i, s := range seedRecords {
		f.Add(s, uint16(100+i*37), uint8(i*5))
	}
	f.Fuzz(func(t *testing.T, data []byte, limitSeed uint16, chunk uint8) {
		limit := fuzzLimit(limitSeed)
		br := fuzzReader(data, chunk)
		want := data
		for {
			rec, err := ReadTextRecord(br, limit)
			if len(rec) > limit {
				t.Fatalf("record of %d bytes over the limit %d", len(rec), limit)
			}
			j := bytes.IndexByte(want, RecordSeparator)
			switch {
			case j < 0 && len(want) > limit || j > limit:
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("record of %d+ bytes, limit %d: got %q, %v; want ErrTooLarge", max(j, len(want)), limit, rec, err)
				}
				return
			case j < 0 && len(want) == 0:
				if err != io.EOF {
					t.Fatalf("at the end: got %q, %v; want io.EOF", rec, err)
				}
				return
			case j < 0:
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unterminated record %q: got %q, %v; want an EOF", want, rec, err)
				}
				return
			}
			if err != nil || !bytes.Equal(rec, want[:j]) {
				t.Fatalf("got %q, %v; want %q", rec, err, want[:j])
			}
			want = want[j+1:]
			checkJSONDecode(t, rec)
		}
	})
}

func checkJSONDecode(t *testing.T, rec []byte) {
	t.Helper()
	m, err := JSON.Decode(rec)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode %q: error %v is not ErrMalformed", rec, err)
		}
		return
	}
	if !json.Valid(rec) {
		t.Fatalf("decode accepted invalid JSON %q", rec)
	}
	for _, a := range m.Args {
		var got, ref int64
		if JSON.DecodeArg(a, &got) == nil {
			if err := json.Unmarshal(a, &ref); err != nil || ref != got {
				t.Fatalf("decodeArg(%q) = %d, json says %d, %v", a, got, ref, err)
			}
		}
	}
	if _, err := JSON.Completion(m.InvocationID, nil, false, "x"); err != nil {
		t.Fatalf("cannot answer invocation id %q: %v", m.InvocationID, err)
	}
}

// FuzzMsgpackRecords reads arbitrary bytes as length-prefixed MessagePack
// records and decodes each.
func FuzzMsgpackRecords(f *testing.F) {
	frame := func(v ...any) []byte { b, _ := Frame(v...); return b }
	seeds := [][]byte{
		frame(1, map[string]any{}, "1", "JoinLeadGroup", []any{5}),
		frame(1, map[string]any{}, nil, "LeaveLeadGroup", []any{int64(1) << 60}),
		append(frame(6), frame(1, map[string]any{"a": "b"}, "x", "nope", []any{"12", 1.5, nil, true})...),
		frame(4, map[string]any{}, "s", "JoinLeadGroup", []any{1}, []any{"st"}),
		frame(7, "bye", true),
		frame(3, map[string]any{}, "1", 3, map[string]any{"k": []any{1, 2}}),
		{0x03, 0xc1, 0xc1, 0xc1},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0x80, 0x80, 0x01},
		{0x05, 0x95, 0x01, 0x80, 0xa1},
		{0x02, 0x91},
		{0x05},
		{},
	}
	for i, s := range seeds {
		f.Add(s, uint16(100+i*37), uint8(i*5))
	}
	f.Fuzz(func(t *testing.T, data []byte, limitSeed uint16, chunk uint8) {
		limit := fuzzLimit(limitSeed)
		br := fuzzReader(data, chunk)
		want := data
		for {
			rec, err := MessagePack.ReadRecord(br, limit)
			if len(rec) > limit {
				t.Fatalf("record of %d bytes over the limit %d", len(rec), limit)
			}
			n, k := binary.Uvarint(want)
			switch {
			case len(want) == 0:
				if err != io.EOF {
					t.Fatalf("at the end: got %x, %v; want io.EOF", rec, err)
				}
				return
			case k < 0 || k == 0 && len(want) >= binary.MaxVarintLen64:
				// Too long (binary.Uvarint calls ten continuation bytes
				// "short input"; a reader knows they already overflow).
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("overlong length prefix %x: got %x, %v; want ErrMalformed", want, rec, err)
				}
				return
			case k == 0:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("truncated length prefix %x: got %x, %v; want io.ErrUnexpectedEOF", want, rec, err)
				}
				return
			case n > uint64(limit):
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("record of %d bytes, limit %d: got %x, %v; want ErrTooLarge", n, limit, rec, err)
				}
				return
			case uint64(len(want)-k) < n:
				// Inside a record: io.ErrUnexpectedEOF, as ReadTextRecord
				// says. A plain io.EOF reads as "the body ended cleanly"
				// and the truncated record would vanish without an error.
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("truncated record %x: got %x, %v; want io.ErrUnexpectedEOF", want, rec, err)
				}
				return
			}
			if err != nil || !bytes.Equal(rec, want[k:k+int(n)]) {
				t.Fatalf("got %x, %v; want %x", rec, err, want[k:k+int(n)])
			}
			want = want[k+int(n):]
			checkMsgpackDecode(t, rec)
		}
	})
}

func checkMsgpackDecode(t *testing.T, rec []byte) {
	t.Helper()
	m, err := MessagePack.Decode(rec)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode %x: error %v is not ErrMalformed", rec, err)
		}
		return
	}
	for _, a := range m.Args {
		var v int64
		_ = MessagePack.DecodeArg(a, &v)
		var s string
		_ = MessagePack.DecodeArg(a, &s)
	}
	if m.Type == TypeInvocation {
		if _, err := MessagePack.Completion(m.InvocationID, nil, false, "x"); err != nil {
			t.Fatalf("cannot answer invocation id %q: %v", m.InvocationID, err)
		}
	}
}

func TestParseHandshake(t *testing.T) {
	for _, tc := range []struct {
		in      string
		proto   Protocol
		version int
		err     string
	}{
		{`{"protocol":"json","version":1}`, JSON, 1, ""},
		{`{"protocol":"messagepack","version":1}`, MessagePack, 1, ""},
		{`{"protocol":"json"`, nil, 0, "Handshake request is not valid JSON."},
		{`{"protocol":"messagepack","version":"1"}`, MessagePack, 0, "Handshake request is not valid JSON."},
		{`{"protocol":"xml","version":1}`, nil, 0, "The protocol 'xml' is not supported."},
		{`{"protocol":"json"}`, JSON, 0, "Handshake request has no protocol version."},
		{`{"protocol":"messagepack","version":2}`, MessagePack, 2, ""},
		{`{"protocol":"json","version":2}`, JSON, 2, ""},
		{`{"protocol":"messagepack","version":3}`, MessagePack, 0, "The server does not support version 3 of the 'messagepack' protocol."},
	} {
		hs, err := ParseHandshake([]byte(tc.in))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if hs.Protocol != tc.proto || hs.Version != tc.version || got != tc.err {
			t.Errorf("ParseHandshake(%s) = %v, %d, %q; want %v, %d, %q", tc.in, hs.Protocol, hs.Version, got, tc.proto, tc.version, tc.err)
		}
	}
}

func TestAckAndSequence(t *testing.T) {
	for _, p := range []Protocol{JSON, MessagePack} {
		for _, id := range []int64{0, 1, 300, 1 << 40, math.MaxInt64} {
			for _, b := range [][]byte{p.Ack(id), p.Sequence(id)} {
				rec, err := p.ReadRecord(bufio.NewReader(bytes.NewReader(b)), 1024)
				if err != nil {
					t.Fatal(err)
				}
				m, err := p.Decode(rec)
				if err != nil || m.SequenceID != id || (m.Type != TypeAck && m.Type != TypeSequence) {
					t.Errorf("%s %q: %+v, %v", p.Name(), b, m, err)
				}
			}
		}
	}
	for _, bad := range []string{`{"type":8}`, `{"type":9,"sequenceId":"1"}`, `{"type":8,"sequenceId":1.5}`, `{"type":9,"sequenceId":1e30}`} {
		if _, err := JSON.Decode([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", bad, err)
		}
	}
	for _, bad := range [][]byte{
		{0x91, 0x08},                               // [8]
		{0x92, 0x09, 0xa1, 0x31},                   // [9, "1"]
		{0x92, 0x08, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, // [8, 0.0]
		{0x92, 0x08, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // [8, 2^64-1]
	} {
		if _, err := MessagePack.Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v, want ErrMalformed", bad, err)
		}
	}
}
