package hub

// Fuzz tests of what parses the engine's output, and of the whole
// connection end to end through the HTTP handlers (the record framings and
// message decoders are fuzzed in internal/protocol).
//
//	go test -run=^$ -fuzz=FuzzHandshakeAndFrames -fuzztime=20s ./hub/
//
// Without -fuzz, `go test` runs each fuzzer over its seeds and over
// testdata/fuzz/FuzzX/, where crashers are kept.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub/internal/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// FuzzDecodeEngine decodes arbitrary bytes as a frame the engine wrote.
func FuzzDecodeEngine(f *testing.F) {
	frame := func(v ...any) []byte { b, _ := protocol.Frame(v...); return b }
	closeHdr3 := frame(7, map[string]any{}, "boom", true)
	closeHdr3[1] = 0x93 // the engine's own Close: 4 values under a header of 3
	for _, s := range [][]byte{
		frame(3, map[string]any{}, "1", 2),
		frame(3, map[string]any{}, "1", 1, "An error"),
		frame(3, map[string]any{}, "1", 3, "not authorized"),
		frame(3, map[string]any{}, "1", 3, map[string]any{"a": []any{1, "b", nil}}),
		frame(6),
		frame(7, map[string]any{}, "boom", true),
		closeHdr3,
		frame(1, map[string]any{}, "", "ReceiveLeadUpdate", []any{1}),
		{0x01, 0xc1},
		{0x00},
		{},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeEngine(p)
		if err != nil || m.Type != protocol.TypeCompletion || m.ResultKind != 3 {
			return
		}
		v, err := decodeResult(m.Result)
		if err != nil {
			return
		}
		// Whatever came back, both client protocols can encode it again.
		if _, err := protocol.MessagePack.Completion(m.InvocationID, v, true, ""); err != nil {
			t.Fatalf("msgpack cannot encode result %#v: %v", v, err)
		}
		if _, err := protocol.JSON.Completion(m.InvocationID, v, true, ""); err != nil && jsonable(v) {
			// A result JSON can express (string map keys, no NaN) must
			// reach a JSON client as a result, not as complete()'s
			// fallback error.
			t.Fatalf("json cannot encode result %#v: %v", v, err)
		}
	})
}

// jsonable reports whether JSON can express v: maps have only string keys,
// and numbers are finite.
func jsonable(v any) bool {
	switch x := v.(type) {
	case map[any]any:
		for k, e := range x {
			if _, ok := k.(string); !ok || !jsonable(e) {
				return false
			}
		}
	case map[string]any:
		for _, e := range x {
			if !jsonable(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !jsonable(e) {
				return false
			}
		}
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
	}
	return true
}

// FuzzHandshakeAndFrames drives a whole connection through the HTTP
// handlers, without a network: negotiate, Long Polling's first poll, a POST
// with the handshake, a POST with the frames, a POST with a sentinel
// invocation, then polls until the sentinel's completion, a Close or the
// end, and a DELETE. Whatever the input, the server must answer only
// well-formed records of the negotiated protocol, never a stuck 409, never a
// 5xx, and the connection must end.
func FuzzHandshakeAndFrames(f *testing.F) {
	s, err := New(WithMaxMessageSize(1024), WithLongPollTimeout(20*time.Millisecond),
		WithHandshakeTimeout(2*time.Second))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })

	frame := func(v ...any) []byte { b, _ := protocol.Frame(v...); return b }
	jsonHS := []byte(`{"protocol":"json","version":1}` + "\x1e")
	mpHS := []byte(`{"protocol":"messagepack","version":1}` + "\x1e")
	f.Add(jsonHS, []byte(`{"type":1,"invocationId":"1","target":"JoinLeadGroup","arguments":[5]}`+"\x1e"))
	f.Add(jsonHS, []byte(`{"type":6}`+"\x1e"+`{"type":42}`+"\x1e"+`{"type":1,"target":"nope","arguments":[]}`+"\x1e"+
		`{"type":1,"invocationId":"2","target":"abort","arguments":[]}`+"\x1e"+
		`{"type":1,"invocationId":"3","target":"JoinLeadGroup","arguments":["12"]}`+"\x1e"+
		`{"type":4,"invocationId":"4","target":"JoinLeadGroup","arguments":[1]}`+"\x1e"))
	f.Add(jsonHS, []byte(`{bad json`+"\x1e"))
	f.Add(jsonHS, []byte(`{"type":7}`+"\x1e"))
	f.Add(jsonHS, []byte(`{"type":1,"invocationId":"1","target":"JoinLeadGroup","arguments":[0]}`+"\x1e"+`{"type":1,"pad":"`+strings.Repeat("p", 1100)+`"}`+"\x1e"))
	f.Add(jsonHS, []byte(`{"type":1,"invocationId":"1","target":"JoinLeadGroup","arguments":[5]`)) // continues into the sentinel
	f.Add(jsonHS[:10], jsonHS[10:])
	f.Add(mpHS, frame(1, map[string]any{}, "1", "JoinLeadGroup", []any{5}))
	f.Add(mpHS, append(frame(6), frame(1, map[string]any{}, nil, "nope", []any{})...))
	f.Add(mpHS, []byte{0x03, 0xc1, 0xc1, 0xc1})
	f.Add(mpHS, frame(7, nil, false))
	f.Add(mpHS, binary.AppendUvarint(nil, 5000))
	f.Add([]byte(`{"protocol":"foo","version":1}`+"\x1e"), []byte{})
	f.Add([]byte(`{"protocol":"json","version":2}`+"\x1e"), []byte{})
	f.Add([]byte(`{"protocol":"json"`), []byte(strings.Repeat("x", 2000)))
	f.Add([]byte("\x1e"), []byte{})
	f.Add([]byte{}, []byte{})

	f.Fuzz(func(t *testing.T, handshake, frames []byte) {
		fuzzConnection(t, s, handshake, frames)
	})
}

func fuzzConnection(t *testing.T, s *Server, handshake, frames []byte) {
	// Every step below returns within milliseconds unless the hub hangs.
	// A hang must crash the worker, so that the fuzzer keeps the input; the
	// dump shows where it hangs.
	watchdog := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("connection hangs on handshake %q, frames %q\n%s", handshake, frames, buf))
	})
	defer watchdog.Stop()
	do := func(method, target string, body []byte) *httptest.ResponseRecorder {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, target, rd))
		if rec.Code >= 500 || rec.Code == http.StatusConflict {
			t.Fatalf("%s %s: %d %q", method, target, rec.Code, rec.Body.Bytes())
		}
		return rec
	}
	neg := do(http.MethodPost, s.cfg.path+"/negotiate?negotiateVersion=1", nil)
	var nr struct{ ConnectionToken string }
	if err := json.Unmarshal(neg.Body.Bytes(), &nr); err != nil || nr.ConnectionToken == "" {
		t.Fatalf("negotiate: %d %q", neg.Code, neg.Body.Bytes())
	}
	u := s.cfg.path + "?id=" + nr.ConnectionToken
	if r := do(http.MethodGet, u, nil); r.Code != http.StatusOK {
		t.Fatalf("first poll: %d", r.Code)
	}

	var out []byte
	binaryOut := false
	ended := false
	poll := func() {
		r := do(http.MethodGet, u, nil)
		switch r.Code {
		case http.StatusOK:
			if r.Header().Get("Content-Type") == "application/octet-stream" {
				binaryOut = true
			}
			out = append(out, r.Body.Bytes()...)
		case http.StatusNoContent:
			ended = true
		default:
			t.Fatalf("poll: %d %q", r.Code, r.Body.Bytes())
		}
	}
	post := func(body []byte) {
		if !ended {
			switch r := do(http.MethodPost, u, body); r.Code {
			case http.StatusOK, http.StatusRequestEntityTooLarge, http.StatusBadRequest:
			case http.StatusNotFound:
				// The connection has ended (a Close, say).
			default:
				t.Fatalf("POST: %d %q", r.Code, r.Body.Bytes())
			}
		}
	}
	post(handshake)
	post(frames)
	// A last invocation, in the protocol the handshake asked for, whose
	// completion tells that everything before it has been answered.
	const sentinel = "fuzz-sentinel"
	all := append(append([]byte(nil), handshake...), frames...)
	var hs struct{ Protocol string }
	if i := bytes.IndexByte(all, protocol.RecordSeparator); i >= 0 {
		_ = json.Unmarshal(all[:i], &hs)
	}
	if hs.Protocol == "messagepack" {
		mp, _ := protocol.Frame(protocol.TypeInvocation, protocol.NoHeaders, sentinel, "JoinLeadGroup", []any{1})
		post(mp)
	} else {
		post([]byte(`{"type":1,"invocationId":"` + sentinel + `","target":"JoinLeadGroup","arguments":[1]}` + "\x1e"))
	}

	// Poll until the sentinel's completion, the end, or three empty polls.
	for empty := 0; !ended && empty < 3 && !bytes.Contains(out, []byte(sentinel)); {
		n := len(out)
		poll()
		if len(out) == n {
			empty++
		}
	}
	r := do(http.MethodDelete, u, nil)
	if r.Code != http.StatusAccepted && r.Code != http.StatusNotFound {
		t.Fatalf("DELETE: %d", r.Code)
	}
	for i := 0; !ended; i++ {
		if i == 100 {
			t.Fatal("the connection does not end after DELETE")
		}
		n := len(out)
		poll()
		if len(out) > n && !ended {
			continue // what was queued before the DELETE
		}
	}
	checkOutput(t, out, binaryOut)
}

// checkOutput checks what the server wrote on one connection: the handshake
// answer, then only completions, pings and at most one Close, last.
func checkOutput(t *testing.T, out []byte, binaryOut bool) {
	if len(out) == 0 {
		return
	}
	i := bytes.IndexByte(out, protocol.RecordSeparator)
	if i < 0 {
		t.Fatalf("no handshake answer in %q", out)
	}
	var hs map[string]any
	if err := json.Unmarshal(out[:i], &hs); err != nil {
		t.Fatalf("handshake answer %q: %v", out[:i], err)
	}
	out = out[i+1:]
	if len(hs) != 0 {
		if _, ok := hs["error"].(string); !ok || len(hs) != 1 {
			t.Fatalf("handshake answer %v", hs)
		}
		if len(out) != 0 {
			t.Fatalf("records after a failed handshake: %q", out)
		}
		return
	}
	closed := false
	for len(out) > 0 {
		if closed {
			t.Fatalf("records after the Close: %q", out)
		}
		var typ int
		var desc string
		if binaryOut {
			n, k := binary.Uvarint(out)
			if k <= 0 || uint64(len(out)-k) < n {
				t.Fatalf("bad MessagePack framing in %x", out)
			}
			typ, desc = checkMsgpackRecord(t, out[k:k+int(n)])
			out = out[k+int(n):]
		} else {
			j := bytes.IndexByte(out, protocol.RecordSeparator)
			if j < 0 {
				t.Fatalf("unterminated JSON record %q", out)
			}
			typ, desc = checkJSONRecord(t, out[:j])
			out = out[j+1:]
		}
		switch typ {
		case protocol.TypeCompletion, protocol.TypePing:
		case protocol.TypeClose:
			closed = true
		default:
			t.Fatalf("server sent message type %d: %s", typ, desc)
		}
	}
}

func checkJSONRecord(t *testing.T, rec []byte) (int, string) {
	var m struct {
		Type           *int    `json:"type"`
		InvocationID   *string `json:"invocationId"`
		Error          *string `json:"error"`
		AllowReconnect *bool   `json:"allowReconnect"`
	}
	if err := json.Unmarshal(rec, &m); err != nil || m.Type == nil {
		t.Fatalf("server record %q: %v", rec, err)
	}
	if *m.Type == protocol.TypeCompletion && m.InvocationID == nil {
		t.Fatalf("completion without invocationId: %s", rec)
	}
	return *m.Type, string(rec)
}

func checkMsgpackRecord(t *testing.T, rec []byte) (int, string) {
	var a []any
	d := msgpack.NewDecoder(bytes.NewReader(rec))
	if err := d.Decode(&a); err != nil || len(a) == 0 {
		t.Fatalf("server record %x: %v", rec, err)
	}
	if rest, _ := io.ReadAll(d.Buffered()); len(rest) > 0 {
		t.Fatalf("server record %x has trailing bytes", rec)
	}
	desc := fmt.Sprintf("%#v", a)
	typ, ok := a[0].(int8)
	if !ok {
		t.Fatalf("server record type %s", desc)
	}
	switch typ {
	case protocol.TypeCompletion:
		if len(a) < 4 || len(a) > 5 {
			t.Fatalf("completion %s", desc)
		}
		kind, _ := a[3].(int8)
		if _, ok := a[2].(string); !ok || kind < 1 || kind > 3 || (kind == 2) != (len(a) == 4) {
			t.Fatalf("completion %s", desc)
		}
	case protocol.TypePing:
		if len(a) != 1 {
			t.Fatalf("ping %s", desc)
		}
	case protocol.TypeClose:
		// [7, error, allowReconnect]: what the JavaScript client parses.
		if len(a) != 3 {
			t.Fatalf("Close %s: want 3 elements", desc)
		}
		if _, ok := a[2].(bool); !ok || (a[1] != nil && fmt.Sprintf("%T", a[1]) != "string") {
			t.Fatalf("Close %s", desc)
		}
	}
	return int(typ), desc
}
