package hub_test

// Raw-frame tests: the hub driven byte by byte, as a browser's
// @microsoft/signalr client would drive it, through internal/signalrtest,
// which has no client library in between. Requests whose status codes and
// headers are under test (negotiate, Long Polling, the POSTs of Server-Sent
// Events) are made with net/http.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

// wait is how long a test waits for an event it expects. It is generous so
// that -race on two cores never flakes; a passing test never waits this long.
const wait = 5 * time.Second

const rs = "\x1e"

var (
	jsonHandshake = string(signalrtest.JSON.Handshake())
	mpHandshake   = string(signalrtest.MessagePack.Handshake())
)

// ---------------------------------------------------------------------------
// Test server

type env struct {
	s    *hub.Server
	ts   *httptest.Server
	base string // http://127.0.0.1:port/leadupdates
}

// newEnv starts a hub Server on a mux behind httptest. Cleanup closes the hub
// first (it ends every connection, so no handler is left running) and then
// the HTTP server.
func newEnv(t *testing.T, opts ...hub.Option) *env {
	t.Helper()
	s, err := hub.New(opts...)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	mux := http.NewServeMux()
	s.Mount(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = s.Close() })
	return &env{s: s, ts: ts, base: ts.URL + s.Path()}
}

// client returns a SignalR client of the hub.
func (e *env) client() *signalrtest.Client {
	return &signalrtest.Client{URL: e.base, HTTPClient: e.ts.Client()}
}

// do sends one HTTP request and returns the status and the whole body.
func (e *env) do(t *testing.T, method, u string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, b
}

// negotiate POSTs {path}/negotiate with the query, which the tests vary,
// and decodes the answer.
func (e *env) negotiate(t *testing.T, query string) signalrtest.Negotiation {
	t.Helper()
	u := e.base + "/negotiate"
	if query != "" {
		u += "?" + query
	}
	code, _, body := e.do(t, http.MethodPost, u, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("negotiate: status %d, body %q", code, body)
	}
	var r signalrtest.Negotiation
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("negotiate: %v in %q", err, body)
	}
	return r
}

// negotiateV1 returns (connectionId, connectionToken).
func (e *env) negotiateV1(t *testing.T) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := e.client().Negotiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.ConnectionToken == "" {
		t.Fatal("negotiate v1: no connectionToken")
	}
	return r.ConnectionID, r.ConnectionToken
}

// ---------------------------------------------------------------------------
// WebSocket connections under test

// rawWS is a signalrtest.Conn under test. Once started, a goroutine reads
// its records into a buffer, so that the test waits for each with a timeout
// while the connection keeps being read. Every failure fails the test.
type rawWS struct {
	t    *testing.T
	c    *signalrtest.Conn
	recs chan wsRec
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

type wsRec struct {
	b   []byte
	typ websocket.MessageType
	err error // the socket ended; b is empty
}

// dial opens a JSON WebSocket to the hub with the query, through client if
// not nil.
func (e *env) dial(t *testing.T, query string, client *http.Client) (*signalrtest.Conn, *http.Response, error) {
	t.Helper()
	return e.dialProto(query, client, signalrtest.JSON)
}

func (e *env) dialProto(query string, client *http.Client, p signalrtest.Protocol) (*signalrtest.Conn, *http.Response, error) {
	c := e.client()
	if client != nil {
		c.HTTPClient = client
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.Dial(ctx, query, p)
}

// open dials and starts reading at once.
func (e *env) open(t *testing.T, query string, msgpackProto bool) *rawWS {
	t.Helper()
	p := signalrtest.JSON
	if msgpackProto {
		p = signalrtest.MessagePack
	}
	c, _, err := e.dialProto(query, nil, p)
	if err != nil {
		t.Fatalf("dial %q: %v", query, err)
	}
	w := wrapWS(t, c)
	w.start()
	return w
}

// wrapWS wraps a dialed socket; reading starts with start, so that a test
// can leave a client not reading.
func wrapWS(t *testing.T, c *signalrtest.Conn) *rawWS {
	w := &rawWS{t: t, c: c, recs: make(chan wsRec, 4096), quit: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(w.close)
	return w
}

func (w *rawWS) start() { go w.readLoop() }

func (w *rawWS) close() {
	w.once.Do(func() {
		close(w.quit)
		_ = w.c.Close()
	})
	select {
	case <-w.done:
	case <-time.After(wait):
		w.t.Error("raw WebSocket reader did not stop")
	}
}

func (w *rawWS) readLoop() {
	defer close(w.done)
	for {
		r, err := w.c.ReadRecord(context.Background())
		select {
		case w.recs <- wsRec{b: bytes.Clone(r.Data), typ: r.Type, err: err}:
		case <-w.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

func (w *rawWS) sendText(s string) {
	w.t.Helper()
	w.send(websocket.MessageText, []byte(s))
}

func (w *rawWS) send(typ websocket.MessageType, b []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := w.c.Write(ctx, typ, b); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next record; it fails the test if the socket ended or
// nothing came in time.
func (w *rawWS) next() wsRec {
	w.t.Helper()
	r := w.nextOrEnd()
	if r.err != nil {
		w.t.Fatalf("socket ended while a record was expected: %v", r.err)
	}
	return r
}

func (w *rawWS) nextOrEnd() wsRec {
	w.t.Helper()
	return w.nextWithin(wait)
}

// nextWithin returns the next record or the end of the socket; it fails the
// test if the hub's bytes do not frame as records or nothing came within d.
func (w *rawWS) nextWithin(d time.Duration) wsRec {
	w.t.Helper()
	select {
	case r := <-w.recs:
		if errors.Is(r.err, signalrtest.ErrMalformed) {
			w.t.Fatal(r.err)
		}
		return r
	case <-time.After(d):
		w.t.Fatalf("no record within %v", d)
		return wsRec{}
	}
}

// nextJSON returns the next record decoded, skipping pings if skipPings.
func (w *rawWS) nextJSON(skipPings bool) jmsg {
	w.t.Helper()
	for {
		m := decodeJSON(w.t, w.next().b)
		if skipPings && m.Type == 6 {
			continue
		}
		return m
	}
}

// expectEnd reads until the socket ends and returns the records before the
// end, which fails the test if it does not come in time.
func (w *rawWS) expectEnd() [][]byte {
	w.t.Helper()
	var got [][]byte
	for {
		r := w.nextOrEnd()
		if r.err != nil {
			return got
		}
		got = append(got, r.b)
	}
}

// handshake sends the JSON handshake and expects the empty answer.
func (w *rawWS) handshake() {
	w.t.Helper()
	w.sendText(jsonHandshake)
	if r := w.next(); string(r.b) != "{}" {
		w.t.Fatalf("handshake answer %q, want {}", r.b)
	}
}

// invoke sends one JSON invocation and returns its completion; pings are
// skipped, anything else first fails the test.
func (w *rawWS) invoke(id, target string, args ...any) jmsg {
	w.t.Helper()
	w.sendText(invocation(id, target, args...))
	m := w.nextJSON(true)
	if m.Type != 3 || m.InvocationID != id {
		w.t.Fatalf("want completion %q, got %s", id, m.Raw)
	}
	return m
}

// connect negotiates (v1), opens a JSON WebSocket and completes the
// handshake and a first invocation, after which the connection is certainly
// registered with the Server (OnConnected runs before the first invocation
// is read). It returns the public connection id.
func (e *env) connect(t *testing.T) (*rawWS, string) {
	t.Helper()
	return e.connectAs(t, "")
}

// connectAs is connect with a bearer token, if not empty.
func (e *env) connectAs(t *testing.T, token string) (*rawWS, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c := e.client()
	c.AccessToken = token
	conn, err := c.Connect(ctx, signalrtest.JSON)
	if err != nil {
		t.Fatal(err)
	}
	w := wrapWS(t, conn)
	w.start()
	w.invoke("sync", "LeaveLeadGroup", 1).ok(t)
	return w, conn.ConnectionID()
}

// ---------------------------------------------------------------------------
// Messages

// jmsg is a JSON hub message with the assertions the tests make on it.
type jmsg struct{ signalrtest.Message }

func decodeJSON(t *testing.T, b []byte) jmsg {
	t.Helper()
	m, err := signalrtest.DecodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return jmsg{m}
}

// invocation returns a framed JSON invocation; an empty id makes it a send.
func invocation(id, target string, args ...any) string {
	return string(signalrtest.JSONInvocation(id, target, args...))
}

// ok fails unless m is a void completion (no error, no result).
func (m jmsg) ok(t *testing.T) {
	t.Helper()
	if m.Type != 3 || m.Error != nil || m.Result != nil {
		t.Fatalf("want a void completion, got %s", m.Raw)
	}
}

// failed fails unless m is a completion with an error containing want.
func (m jmsg) failed(t *testing.T, want string) {
	t.Helper()
	if m.Type != 3 || m.Error == nil || m.Result != nil || !strings.Contains(*m.Error, want) {
		t.Fatalf("want a completion with an error containing %q, got %s", want, m.Raw)
	}
}

// expectClose fails unless m is a Close message with an error containing
// want and the given allowReconnect.
func expectClose(t *testing.T, m jmsg, want string, allowReconnect bool) {
	t.Helper()
	if m.Type != 7 {
		t.Fatalf("want a Close message, got %s", m.Raw)
	}
	if m.Error == nil || !strings.Contains(*m.Error, want) {
		t.Fatalf("Close error should contain %q: %s", want, m.Raw)
	}
	if m.AllowReconnect != allowReconnect {
		t.Fatalf("Close allowReconnect %v, want %v: %s", m.AllowReconnect, allowReconnect, m.Raw)
	}
}

// mpDecode decodes one MessagePack record (without its length prefix) as an
// array, with maps as map[any]any.
func mpDecode(t *testing.T, b []byte) []any {
	t.Helper()
	a, err := signalrtest.DecodeMessagePack(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), true
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// Negotiate and routing

func TestRawNegotiate(t *testing.T) {
	e := newEnv(t)
	wantTransports := []signalrtest.AvailableTransport{
		{Transport: "WebSockets", TransferFormats: []string{"Text", "Binary"}},
		{Transport: "ServerSentEvents", TransferFormats: []string{"Text"}},
		{Transport: "LongPolling", TransferFormats: []string{"Text", "Binary"}},
	}
	checkTransports := func(t *testing.T, got []signalrtest.AvailableTransport) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(wantTransports) {
			t.Errorf("availableTransports %v, want %v", got, wantTransports)
		}
	}

	t.Run("v1", func(t *testing.T) {
		code, hdr, body := e.do(t, http.MethodPost, e.base+"/negotiate?negotiateVersion=1", nil, nil)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		var r signalrtest.Negotiation
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.ConnectionID == "" || r.ConnectionToken == "" {
			t.Fatalf("missing id or token: %s", body)
		}
		if r.ConnectionID == r.ConnectionToken {
			t.Errorf("connectionToken equals connectionId: %s", body)
		}
		if r.NegotiateVersion != 1 {
			t.Errorf("negotiateVersion: %s", body)
		}
		checkTransports(t, r.AvailableTransports)
	})
	t.Run("v1 twice gives new ids", func(t *testing.T) {
		a, ta := e.negotiateV1(t)
		b, tb := e.negotiateV1(t)
		if a == b || ta == tb {
			t.Errorf("ids repeat: %s/%s %s/%s", a, ta, b, tb)
		}
	})
	t.Run("higher version answers 1", func(t *testing.T) {
		r := e.negotiate(t, "negotiateVersion=7")
		if r.NegotiateVersion != 1 || r.ConnectionToken == "" {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("v0", func(t *testing.T) {
		code, _, body := e.do(t, http.MethodPost, e.base+"/negotiate", nil, nil)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		if _, has := raw["connectionToken"]; has {
			t.Errorf("v0 answer has a connectionToken: %s", body)
		}
		var r signalrtest.Negotiation
		_ = json.Unmarshal(body, &r)
		if r.ConnectionID == "" {
			t.Errorf("no connectionId: %s", body)
		}
		if r.NegotiateVersion != 0 {
			t.Errorf("negotiateVersion: %s", body)
		}
		checkTransports(t, r.AvailableTransports)
	})

	statuses := []struct {
		name   string
		method string
		path   string // after the hub's path; "/other" alone is off the hub
		want   int
	}{
		{"GET negotiate", http.MethodGet, "/negotiate", http.StatusMethodNotAllowed},
		{"DELETE negotiate", http.MethodDelete, "/negotiate", http.StatusMethodNotAllowed},
		{"bad negotiateVersion", http.MethodPost, "/negotiate?negotiateVersion=x", http.StatusBadRequest},
		{"unknown path under the hub", http.MethodPost, "/nope", http.StatusNotFound},
		{"unknown path", http.MethodGet, "/other", http.StatusNotFound},
		{"PUT on the hub path", http.MethodPut, "", http.StatusMethodNotAllowed},
		{"poll with unknown id", http.MethodGet, "?id=nope", http.StatusNotFound},
		{"POST with unknown id", http.MethodPost, "?id=nope", http.StatusNotFound},
		{"DELETE with unknown id", http.MethodDelete, "?id=nope", http.StatusNotFound},
		{"poll without id", http.MethodGet, "", http.StatusNotFound},
	}
	for _, tc := range statuses {
		t.Run(tc.name, func(t *testing.T) {
			u := e.base + tc.path
			if tc.path == "/other" {
				u = e.ts.URL + tc.path
			}
			if code, _, body := e.do(t, tc.method, u, nil, nil); code != tc.want {
				t.Errorf("status %d, want %d (body %q)", code, tc.want, body)
			}
		})
	}
	t.Run("ServeHTTP answers 404 off its path", func(t *testing.T) {
		rec := httptest.NewRecorder()
		e.s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/elsewhere/negotiate", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("status %d", rec.Code)
		}
	})
}

// ---------------------------------------------------------------------------
// WebSocket transport requests

func TestRawWebSocketAttach(t *testing.T) {
	e := newEnv(t)

	t.Run("unknown id is 404 before the upgrade", func(t *testing.T) {
		c, resp, err := e.dial(t, "id=doesnotexist", nil)
		if err == nil {
			_ = c.Close()
			t.Fatal("dial succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("want a 404 response, got %v (%v)", resp, err)
		}
	})
	t.Run("v1 connectionId is not a token", func(t *testing.T) {
		id, _ := e.negotiateV1(t)
		c, resp, err := e.dial(t, "id="+url.QueryEscape(id), nil)
		if err == nil {
			_ = c.Close()
			t.Fatal("dial with the public connectionId succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("want a 404 response, got %v (%v)", resp, err)
		}
	})
	t.Run("second WebSocket for one id is 409", func(t *testing.T) {
		_, token := e.negotiateV1(t)
		w := e.open(t, "id="+url.QueryEscape(token), false)
		c, resp, err := e.dial(t, "id="+url.QueryEscape(token), nil)
		if err == nil {
			_ = c.Close()
			t.Fatal("second dial succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusConflict {
			t.Fatalf("want a 409 response, got %v (%v)", resp, err)
		}
		// The first is unharmed.
		w.handshake()
		w.invoke("1", "JoinLeadGroup", 1).ok(t)
	})
	t.Run("v0 uses the connectionId", func(t *testing.T) {
		r := e.negotiate(t, "")
		w := e.open(t, "id="+url.QueryEscape(r.ConnectionID), false)
		w.handshake()
		w.invoke("1", "JoinLeadGroup", 1).ok(t)
	})
	t.Run("skipNegotiation", func(t *testing.T) {
		w := e.open(t, "", false)
		w.handshake()
		w.invoke("1", "JoinLeadGroup", 1).ok(t)
	})
	t.Run("POST to a WebSocket connection is 405", func(t *testing.T) {
		_, token := e.negotiateV1(t)
		w := e.open(t, "id="+url.QueryEscape(token), false)
		w.handshake()
		code, _, _ := e.do(t, http.MethodPost, e.base+"?id="+url.QueryEscape(token), []byte(invocation("1", "JoinLeadGroup", 1)), nil)
		if code != http.StatusMethodNotAllowed {
			t.Errorf("status %d", code)
		}
		code, _, _ = e.do(t, http.MethodGet, e.base+"?id="+url.QueryEscape(token), nil, nil)
		if code != http.StatusBadRequest {
			t.Errorf("poll on a WebSocket connection: status %d", code)
		}
		w.invoke("2", "JoinLeadGroup", 1).ok(t)
	})
}

// ---------------------------------------------------------------------------
// Handshake

func TestRawHandshake(t *testing.T) {
	e := newEnv(t, hub.WithMaxMessageSize(1024))
	cases := []struct {
		name    string
		msgs    []string // WebSocket messages
		wantErr string   // "" means success
	}{
		{"json", []string{jsonHandshake}, ""},
		{"json split over messages", []string{`{"protocol":"js`, `on","version":1}`, rs}, ""},
		{"json with extra fields", []string{`{"protocol":"json","version":1,"x":[1,2]}` + rs}, ""},
		{"messagepack", []string{mpHandshake}, ""},
		{"unknown protocol", []string{`{"protocol":"foo","version":1}` + rs}, "The protocol 'foo' is not supported."},
		{"version 2 (stateful reconnect not negotiated: a plain connection)", []string{`{"protocol":"json","version":2}` + rs}, ""},
		{"version 3", []string{`{"protocol":"json","version":3}` + rs}, "version 3"},
		{"version 0", []string{`{"protocol":"json","version":0}` + rs}, "version 0"},
		{"no version", []string{`{"protocol":"json"}` + rs}, "no protocol version"},
		{"malformed JSON", []string{`{"protocol":` + rs}, "not valid JSON"},
		{"not an object", []string{`[1,2]` + rs}, "not valid JSON"},
		{"empty record", []string{rs}, "not valid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := e.open(t, "", tc.name == "messagepack")
			for _, m := range tc.msgs {
				w.sendText(m)
			}
			r := w.next()
			var ans struct {
				Error *string `json:"error"`
			}
			if err := json.Unmarshal(r.b, &ans); err != nil {
				t.Fatalf("handshake answer %q: %v", r.b, err)
			}
			if tc.wantErr == "" {
				if string(r.b) != "{}" {
					t.Fatalf("handshake answer %q, want {}", r.b)
				}
				return
			}
			if ans.Error == nil || !strings.Contains(*ans.Error, tc.wantErr) {
				t.Fatalf("handshake answer %q, want an error containing %q", r.b, tc.wantErr)
			}
			if rest := w.expectEnd(); len(rest) > 0 {
				t.Errorf("records after a failed handshake: %q", rest)
			}
		})
	}

	t.Run("handshake and invocation in one message", func(t *testing.T) {
		w := e.open(t, "", false)
		w.sendText(jsonHandshake + invocation("1", "JoinLeadGroup", 3))
		if r := w.next(); string(r.b) != "{}" {
			t.Fatalf("handshake answer %q", r.b)
		}
		m := w.nextJSON(true)
		if m.InvocationID != "1" {
			t.Fatalf("got %s", m.Raw)
		}
		m.ok(t)
	})

	t.Run("oversize handshake over several messages", func(t *testing.T) {
		w := e.open(t, "", false)
		chunk := `{"protocol":"json","version":1,"pad":"` + strings.Repeat("a", 400)
		// 20 messages of ~440 bytes, no record separator: far over 1024.
		// The server may close before all are written; later writes may fail.
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		for range 20 {
			if err := w.c.Write(ctx, websocket.MessageText, []byte(chunk)); err != nil {
				break
			}
			chunk = strings.Repeat("a", 440)
		}
		r := w.nextOrEnd()
		if r.err == nil {
			var ans struct{ Error string }
			if err := json.Unmarshal(r.b, &ans); err != nil || !strings.Contains(ans.Error, "maximum message size") {
				t.Fatalf("handshake answer %q, want a size error", r.b)
			}
			if rest := w.expectEnd(); len(rest) > 0 {
				t.Errorf("records after a failed handshake: %q", rest)
			}
		}
	})

	t.Run("no handshake times out", func(t *testing.T) {
		e := newEnv(t, hub.WithHandshakeTimeout(300*time.Millisecond))
		w := e.open(t, "", false)
		if rest := w.expectEnd(); len(rest) > 0 {
			t.Errorf("records on a handshake timeout: %q", rest)
		}
	})
}

// ---------------------------------------------------------------------------
// JSON messages after the handshake

func TestRawMalformedJSONCloses(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		frame string
	}{
		{"bad json", "{bad json" + rs},
		{"not an object", `[1,2,3]` + rs},
		{"no type", `{"target":"JoinLeadGroup"}` + rs},
		{"numeric invocation id", `{"type":1,"invocationId":5,"target":"JoinLeadGroup","arguments":[1]}` + rs},
		{"arguments not an array", `{"type":1,"invocationId":"5","target":"JoinLeadGroup","arguments":{"a":1}}` + rs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := e.connect(t)
			w.sendText(tc.frame)
			m := w.nextJSON(true)
			expectClose(t, m, "Invalid message received", false)
			if bytes.Contains(m.Raw, []byte(strings.TrimSuffix(tc.frame, rs))) || bytes.Contains(m.Raw, []byte("bad json")) {
				t.Errorf("Close echoes the frame: %s", m.Raw)
			}
			if rest := w.expectEnd(); len(rest) > 0 {
				t.Errorf("records after the Close: %q", rest)
			}
		})
	}
}

func TestRawIgnoredMessages(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		frame string
	}{
		{"unknown type 42", `{"type":42}`},
		{"ack", `{"type":8,"sequenceId":1}`},
		{"sequence", `{"type":9,"sequenceId":1}`},
		{"ping", `{"type":6}`},
		{"stream item", `{"type":2,"invocationId":"x","item":1}`},
		{"completion for an unknown id", `{"type":3,"invocationId":"99","result":1}`},
		{"cancel invocation", `{"type":5,"invocationId":"x"}`},
		{"negative type", `{"type":-1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := e.connect(t)
			w.sendText(tc.frame + rs)
			// Nothing comes back for it: the next record is this completion.
			w.invoke("after", "JoinLeadGroup", 1).ok(t)
		})
	}
	t.Run("client Close ends the connection", func(t *testing.T) {
		w, _ := e.connect(t)
		w.sendText(`{"type":7}` + rs)
		for _, r := range w.expectEnd() {
			if m := decodeJSON(t, r); m.Type != 6 {
				t.Errorf("record after the client's Close: %s", r)
			}
		}
	})
}

func TestRawInvocations(t *testing.T) {
	e := newEnv(t)
	w, _ := e.connect(t)
	const noMethod = "Method does not exist."
	cases := []struct {
		name    string
		target  string
		args    string // JSON array
		wantErr string // "" means success
	}{
		{"join", "JoinLeadGroup", `[5]`, ""},
		{"leave", "LeaveLeadGroup", `[5]`, ""},
		{"case-insensitive", "joinleadgroup", `[6]`, ""},
		{"beyond 2^53", "JoinLeadGroup", `[9007199254740993]`, ""},
		{"unknown method", "nope", `[]`, "Failed to invoke 'nope' due to an error on the server. HubException: " + noMethod},
		{"onConnected", "onConnected", `["x"]`, noMethod},
		{"OnDisconnected", "OnDisconnected", `["x"]`, noMethod},
		{"abort", "abort", `[]`, noMethod},
		{"close", "close", `["x",true]`, noMethod},
		{"Initialize", "Initialize", `[null]`, noMethod},
		{"ConnectionID", "ConnectionID", `[]`, noMethod},
		{"Context", "Context", `[]`, noMethod},
		{"Clients", "Clients", `[]`, noMethod},
		{"Groups", "Groups", `[]`, noMethod},
		{"Items", "Items", `[]`, noMethod},
		{"Logger", "Logger", `[]`, noMethod},
		{"empty target", "", `[]`, noMethod},
		{"string argument", "JoinLeadGroup", `["12"]`, "Argument 1 must be an integer"},
		{"fractional argument", "JoinLeadGroup", `[1.5]`, "Argument 1 must be an integer"},
		{"null argument", "JoinLeadGroup", `[null]`, "Argument 1 must be an integer"},
		{"boolean argument", "JoinLeadGroup", `[true]`, "Argument 1 must be an integer"},
		{"object argument", "JoinLeadGroup", `[{"a":1}]`, "Argument 1 must be an integer"},
		{"int64 overflow", "JoinLeadGroup", `[9223372036854775808]`, "Argument 1 must be an integer"},
		{"extra argument", "JoinLeadGroup", `[1,2]`, "provides 2 argument(s) but target expects 1"},
		{"missing argument", "JoinLeadGroup", `[]`, "provides 0 argument(s) but target expects 1"},
		{"no arguments field", "JoinLeadGroup", ``, "provides 0 argument(s) but target expects 1"},
		{"zero lead id", "JoinLeadGroup", `[0]`, "HubException: leadId must be a positive integer"},
		{"negative lead id", "LeaveLeadGroup", `[-3]`, "HubException: leadId must be a positive integer"},
		{"stream invocation", "JoinLeadGroup", `[1]`, "Streaming is not supported"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("c%d", i)
			typ := 1
			if tc.name == "stream invocation" {
				typ = 4
			}
			frame := fmt.Sprintf(`{"type":%d,"invocationId":%q,"target":%q`, typ, id, tc.target)
			if tc.args != "" {
				frame += `,"arguments":` + tc.args
			}
			w.sendText(frame + "}" + rs)
			m := w.nextJSON(true)
			if m.Type != 3 || m.InvocationID != id {
				t.Fatalf("want completion %s, got %s", id, m.Raw)
			}
			if tc.wantErr == "" {
				m.ok(t)
			} else {
				m.failed(t, tc.wantErr)
			}
		})
	}
	// The connection survived every case.
	w.invoke("last", "JoinLeadGroup", 1).ok(t)
}

func TestRawSendWithoutIDGetsNothing(t *testing.T) {
	e := newEnv(t)
	w, _ := e.connect(t)
	sends := []struct{ name, frame string }{
		{"unknown method", invocation("", "nope")},
		{"wrong argument", invocation("", "JoinLeadGroup", "str")},
		{"missing argument", invocation("", "JoinLeadGroup")},
		{"hub base method", invocation("", "Abort")},
		{"valid send", invocation("", "JoinLeadGroup", 9)},
		{"null invocation id", `{"type":1,"invocationId":null,"target":"nope","arguments":[]}` + rs},
	}
	for _, tc := range sends {
		t.Run(tc.name, func(t *testing.T) {
			w.sendText(tc.frame)
			w.invoke("after", "JoinLeadGroup", 1).ok(t)
		})
	}
}

func TestRawMessageSizeLimit(t *testing.T) {
	for _, limit := range []int{1024, 4500} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			e := newEnv(t, hub.WithMaxMessageSize(limit))
			// padded is a valid invocation of exactly n bytes (without the
			// record separator): the padding is an unknown field.
			padded := func(id string, n int) string {
				head := fmt.Sprintf(`{"type":1,"invocationId":%q,"target":"JoinLeadGroup","arguments":[7],"pad":"`, id)
				s := head + strings.Repeat("p", n-len(head)-2) + `"}`
				if len(s) != n {
					t.Fatalf("padded %d != %d", len(s), n)
				}
				return s
			}

			t.Run("exactly at the limit", func(t *testing.T) {
				w, _ := e.connect(t)
				w.sendText(padded("at", limit) + rs)
				m := w.nextJSON(true)
				if m.InvocationID != "at" {
					t.Fatalf("got %s", m.Raw)
				}
				m.ok(t)
			})
			t.Run("at the limit, split over messages", func(t *testing.T) {
				w, _ := e.connect(t)
				f := padded("split", limit) + rs
				for len(f) > 0 {
					n := min(300, len(f))
					w.sendText(f[:n])
					f = f[n:]
				}
				m := w.nextJSON(true)
				if m.InvocationID != "split" {
					t.Fatalf("got %s", m.Raw)
				}
				m.ok(t)
			})
			t.Run("one over the limit closes", func(t *testing.T) {
				w, _ := e.connect(t)
				w.sendText(padded("over", limit+1) + rs)
				m := w.nextJSON(true)
				expectClose(t, m, fmt.Sprintf("The maximum message size of %dB was exceeded.", limit), false)
				if rest := w.expectEnd(); len(rest) > 0 {
					t.Errorf("records after the Close: %q", rest)
				}
			})
			t.Run("far over the limit without separator closes", func(t *testing.T) {
				w, _ := e.connect(t)
				w.sendText(padded("over", 10*limit)) // no separator
				m := w.nextJSON(true)
				expectClose(t, m, "maximum message size", false)
				w.expectEnd()
			})
			t.Run("just over the limit without separator closes", func(t *testing.T) {
				// No separator can make this record valid any more, and
				// ASP.NET closes as soon as an unterminated record outgrows
				// the limit. The close is local and immediate, so waiting
				// 2 s is ample.
				w, _ := e.connect(t)
				w.sendText(padded("over", limit+10))
				r := w.nextWithin(2 * time.Second)
				if r.err != nil {
					t.Fatalf("socket ended without a Close: %v", r.err)
				}
				expectClose(t, decodeJSON(t, r.b), "maximum message size", false)
				w.expectEnd()
			})
			t.Run("batched in one message, together over the limit", func(t *testing.T) {
				w, _ := e.connect(t)
				var b strings.Builder
				n := 0
				for ; b.Len() <= 2*limit; n++ {
					b.WriteString(padded(fmt.Sprint(n), limit*3/4) + rs)
				}
				w.sendText(b.String())
				for i := range n {
					m := w.nextJSON(true)
					if m.InvocationID != fmt.Sprint(i) {
						t.Fatalf("completion %d: got %s", i, m.Raw)
					}
					m.ok(t)
				}
			})
		})
	}
}

func TestRawPipelinedInvocationsInOrder(t *testing.T) {
	e := newEnv(t)
	w, _ := e.connect(t)
	const n = 100
	go func() {
		// Written from another goroutine so that the test reads meanwhile.
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		for i := range n {
			target := "JoinLeadGroup"
			if i%2 == 1 {
				target = "LeaveLeadGroup"
			}
			if err := w.c.Write(ctx, websocket.MessageText, []byte(invocation(fmt.Sprint(i), target, i/2+1))); err != nil {
				return
			}
		}
	}()
	for i := range n {
		m := w.nextJSON(true)
		if m.Type != 3 || m.InvocationID != fmt.Sprint(i) {
			t.Fatalf("completion %d: got %s", i, m.Raw)
		}
		m.ok(t)
	}
	if c := e.s.GroupCount(); c != 1 {
		t.Errorf("GroupCount %d after joining and leaving, want 1", c)
	}
}

// ---------------------------------------------------------------------------
// MessagePack over WebSockets

func TestRawMessagePack(t *testing.T) {
	e := newEnv(t)
	open := func(t *testing.T) *rawWS {
		w := e.open(t, "", true)
		w.send(websocket.MessageBinary, []byte(mpHandshake))
		r := w.next()
		if string(r.b) != "{}" {
			t.Fatalf("handshake answer %q", r.b)
		}
		return w
	}
	nextMP := func(t *testing.T, w *rawWS) []any {
		t.Helper()
		for {
			r := w.next()
			if r.typ != websocket.MessageBinary {
				t.Fatalf("MessagePack record in a %v message", r.typ)
			}
			a := mpDecode(t, r.b)
			if typ, _ := asInt(a[0]); typ == 6 {
				continue
			}
			return a
		}
	}
	completion := func(t *testing.T, a []any) (string, int64, []any) {
		t.Helper()
		if typ, _ := asInt(a[0]); typ != 3 || len(a) < 4 {
			t.Fatalf("want a completion, got %#v", a)
		}
		if h, ok := a[1].(map[any]any); !ok || len(h) != 0 {
			t.Fatalf("headers %#v, want an empty map", a[1])
		}
		id, _ := a[2].(string)
		kind, _ := asInt(a[3])
		return id, kind, a[4:]
	}

	t.Run("invocation", func(t *testing.T) {
		w := open(t)
		w.send(websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]any{}, "1", "JoinLeadGroup", []any{5}))
		a := nextMP(t, w)
		id, kind, rest := completion(t, a)
		if id != "1" || kind != 2 || len(rest) != 0 || len(a) != 4 {
			t.Fatalf("want [3, {}, \"1\", 2], got %#v", a)
		}
	})
	t.Run("batched invocations with a send", func(t *testing.T) {
		w := open(t)
		var b []byte
		b = append(b, signalrtest.MessagePackFrame(1, map[string]any{}, nil, "nope", []any{})...)
		b = append(b, signalrtest.MessagePackFrame(1, map[string]any{}, "a", "JoinLeadGroup", []any{int64(1) << 60})...)
		b = append(b, signalrtest.MessagePackFrame(1, map[string]any{}, "b", "JoinLeadGroup", []any{"x"})...)
		b = append(b, signalrtest.MessagePackFrame(6)...)
		b = append(b, signalrtest.MessagePackFrame(1, map[string]any{}, "c", "Abort", []any{})...)
		w.send(websocket.MessageBinary, b)
		id, kind, _ := completion(t, nextMP(t, w))
		if id != "a" || kind != 2 {
			t.Fatalf("a: %s %d", id, kind)
		}
		id, kind, rest := completion(t, nextMP(t, w))
		if id != "b" || kind != 1 || len(rest) != 1 || !strings.Contains(fmt.Sprint(rest[0]), "Argument 1 must be an integer") {
			t.Fatalf("b: %s %d %v", id, kind, rest)
		}
		id, kind, rest = completion(t, nextMP(t, w))
		if id != "c" || kind != 1 || !strings.Contains(fmt.Sprint(rest), "Method does not exist.") {
			t.Fatalf("c: %s %d %v", id, kind, rest)
		}
	})
	t.Run("hub error", func(t *testing.T) {
		w := open(t)
		w.send(websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]any{}, "z", "JoinLeadGroup", []any{0}))
		id, kind, rest := completion(t, nextMP(t, w))
		if id != "z" || kind != 1 || !strings.Contains(fmt.Sprint(rest), "leadId must be a positive integer") {
			t.Fatalf("got %s %d %v", id, kind, rest)
		}
	})
	invalid := []struct {
		name  string
		frame []byte
	}{
		{"never-used byte", []byte{3, 0xc1, 0xc1, 0xc1}},
		{"not an array", []byte{1, 0x05}},
		{"empty array", []byte{1, 0x90}},
		{"type not an int", []byte{2, 0x91, 0xa0}},
		{"short invocation", []byte{3, 0x92, 0x01, 0x80}},
		{"truncated invocation", []byte{4, 0x95, 0x01, 0x80, 0xa1}},
		{"invocation id not a string", signalrtest.MessagePackFrame(1, map[string]any{}, 5, "JoinLeadGroup", []any{1})},
		{"bad length prefix", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			w := open(t)
			w.send(websocket.MessageBinary, tc.frame)
			a := nextMP(t, w)
			// Exactly [7, error, allowReconnect]: the layout the JavaScript
			// client parses, no headers map.
			if len(a) != 3 {
				t.Fatalf("Close has %d elements, want 3: %#v", len(a), a)
			}
			if typ, _ := asInt(a[0]); typ != 7 {
				t.Fatalf("want a Close, got %#v", a)
			}
			if s, ok := a[1].(string); !ok || s == "" {
				t.Fatalf("Close error %#v, want a string", a[1])
			}
			if b, ok := a[2].(bool); !ok || b {
				t.Fatalf("Close allowReconnect %#v, want false", a[2])
			}
			w.expectEnd()
		})
	}
	t.Run("oversize closes", func(t *testing.T) {
		w := open(t)
		w.send(websocket.MessageBinary, binary.AppendUvarint(nil, 40<<10))
		a := nextMP(t, w)
		if len(a) != 3 || !strings.Contains(fmt.Sprint(a[1]), "maximum message size") {
			t.Fatalf("got %#v", a)
		}
		w.expectEnd()
	})
}

// ---------------------------------------------------------------------------
// Long polling

func TestRawLongPolling(t *testing.T) {
	e := newEnv(t)
	_, token := e.negotiateV1(t)
	u := e.base + "?id=" + url.QueryEscape(token)

	if code, _, body := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK || len(body) != 0 {
		t.Fatalf("first poll: %d %q", code, body)
	}
	if code, _, _ := e.do(t, http.MethodPost, u, []byte(jsonHandshake), nil); code != http.StatusOK {
		t.Fatalf("POST handshake: %d", code)
	}
	code, hdr, body := e.do(t, http.MethodGet, u, nil, nil)
	if code != http.StatusOK || string(body) != "{}"+rs {
		t.Fatalf("poll after the handshake: %d %q", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}

	// Two invocations in one POST; the poll carries both completions.
	post := invocation("1", "JoinLeadGroup", 4) + invocation("2", "nope")
	if code, _, _ := e.do(t, http.MethodPost, u, []byte(post), nil); code != http.StatusOK {
		t.Fatalf("POST invocations: %d", code)
	}
	var got []jmsg
	for len(got) < 2 {
		code, _, body := e.do(t, http.MethodGet, u, nil, nil)
		if code != http.StatusOK {
			t.Fatalf("poll: %d %q", code, body)
		}
		recs, err := signalrtest.Split(body, signalrtest.JSON)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if m := decodeJSON(t, r); m.Type != 6 {
				got = append(got, m)
			}
		}
	}
	got[0].ok(t)
	got[1].failed(t, "Method does not exist.")
	if got[0].InvocationID != "1" || got[1].InvocationID != "2" {
		t.Fatalf("completions %s %s", got[0].Raw, got[1].Raw)
	}

	// A waiting poll ends with 204 when the client DELETEs.
	type result struct {
		code int
		body []byte
	}
	polled := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			polled <- result{code: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		polled <- result{resp.StatusCode, b}
	}()
	awaitCond(t, "the poll to wait", func() bool { return e.s.PollWaiting(token) })
	if code, _, _ := e.do(t, http.MethodDelete, u, nil, nil); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d", code)
	}
	select {
	case r := <-polled:
		if r.code != http.StatusNoContent {
			t.Fatalf("waiting poll after DELETE: %d %q", r.code, r.body)
		}
	case <-time.After(wait):
		t.Fatal("the waiting poll did not return after DELETE")
	}
	if code, _, _ := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusNoContent {
		t.Errorf("poll after the end: %d, want 204", code)
	}
	if code, _, _ := e.do(t, http.MethodPost, u, []byte(invocation("3", "JoinLeadGroup", 1)), nil); code != http.StatusNotFound {
		t.Errorf("POST after the end: %d, want 404", code)
	}
	awaitCond(t, "the connection to be gone", func() bool { return e.s.ConnectionCount() == 0 })
}

func TestRawLongPollingDetails(t *testing.T) {
	e := newEnv(t, hub.WithLongPollTimeout(300*time.Millisecond))
	start := func(t *testing.T, handshake string) string {
		_, token := e.negotiateV1(t)
		u := e.base + "?id=" + url.QueryEscape(token)
		if code, _, _ := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK {
			t.Fatalf("first poll: %d", code)
		}
		if code, _, _ := e.do(t, http.MethodPost, u, []byte(handshake), nil); code != http.StatusOK {
			t.Fatalf("POST handshake: %d", code)
		}
		if code, _, body := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK || string(body) != "{}"+rs {
			t.Fatalf("handshake answer: %d %q", code, body)
		}
		return u
	}
	t.Run("POST before the first poll is 400", func(t *testing.T) {
		_, token := e.negotiateV1(t)
		u := e.base + "?id=" + url.QueryEscape(token)
		if code, _, _ := e.do(t, http.MethodPost, u, []byte(jsonHandshake), nil); code != http.StatusBadRequest {
			t.Errorf("status %d", code)
		}
	})
	t.Run("an idle poll returns 200 empty after the poll timeout", func(t *testing.T) {
		u := start(t, jsonHandshake)
		if code, _, body := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK || len(body) != 0 {
			t.Errorf("idle poll: %d %q", code, body)
		}
	})
	t.Run("messagepack handshake and invocation in one POST", func(t *testing.T) {
		_, token := e.negotiateV1(t)
		u := e.base + "?id=" + url.QueryEscape(token)
		if code, _, _ := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK {
			t.Fatalf("first poll: %d", code)
		}
		body := append([]byte(mpHandshake), signalrtest.MessagePackFrame(1, map[string]any{}, "m", "JoinLeadGroup", []any{2})...)
		if code, _, _ := e.do(t, http.MethodPost, u, body, nil); code != http.StatusOK {
			t.Fatalf("POST: %d", code)
		}
		var out []byte
		for !bytes.HasPrefix(out, []byte("{}"+rs)) || len(out) == 3 {
			code, _, b := e.do(t, http.MethodGet, u, nil, nil)
			if code != http.StatusOK {
				t.Fatalf("poll: %d", code)
			}
			out = append(out, b...)
		}
		recs, err := signalrtest.Split(out[3:], signalrtest.MessagePack)
		if err != nil || len(recs) != 1 {
			t.Fatalf("poll body %x: %d records, %v", out, len(recs), err)
		}
		if a := mpDecode(t, recs[0]); len(a) != 4 || a[2] != "m" {
			t.Fatalf("completion %#v", a)
		}
	})
	t.Run("messagepack", func(t *testing.T) {
		u := start(t, mpHandshake)
		if code, _, _ := e.do(t, http.MethodPost, u, signalrtest.MessagePackFrame(1, map[string]any{}, "m", "JoinLeadGroup", []any{2}), nil); code != http.StatusOK {
			t.Fatalf("POST: %d", code)
		}
		code, hdr, body := e.do(t, http.MethodGet, u, nil, nil)
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("poll: %d %q", code, hdr.Get("Content-Type"))
		}
		recs, err := signalrtest.Split(body, signalrtest.MessagePack)
		if err != nil || len(recs) != 1 {
			t.Fatalf("poll body %x: %d records, %v", body, len(recs), err)
		}
		a := mpDecode(t, recs[0])
		if len(a) != 4 || a[2] != "m" {
			t.Fatalf("completion %#v", a)
		}
	})
	// A POST must hold whole messages; one cut short is an error that closes
	// the connection, in either protocol, never silently dropped.
	truncated := []struct {
		name      string
		handshake string
		body      []byte
	}{
		{"json record without separator", jsonHandshake, []byte(`{"type":1,"invocationId":"t","target":"JoinLeadGroup","arguments":[1]}`)},
		{"messagepack body cut short", mpHandshake, signalrtest.MessagePackFrame(1, map[string]any{}, "t", "JoinLeadGroup", []any{1})[:6]},
		{"messagepack length prefix only", mpHandshake, []byte{0x05}},
		{"messagepack length prefix cut short", mpHandshake, []byte{0x85}},
	}
	for _, tc := range truncated {
		t.Run(tc.name, func(t *testing.T) {
			u := start(t, tc.handshake)
			code, _, body := e.do(t, http.MethodPost, u, tc.body, nil)
			if code != http.StatusBadRequest {
				t.Errorf("POST of a truncated message: %d %q, want 400", code, body)
			}
			code, _, out := e.do(t, http.MethodGet, u, nil, nil)
			if code != http.StatusOK || len(out) == 0 {
				t.Fatalf("poll after a truncated message: %d %q, want the Close", code, out)
			}
			if tc.handshake == jsonHandshake {
				expectClose(t, decodeJSON(t, bytes.TrimSuffix(out, []byte(rs))), "Invalid message received", false)
			} else {
				recs, err := signalrtest.Split(out, signalrtest.MessagePack)
				if err != nil || len(recs) != 1 {
					t.Fatalf("poll body %x: %d records, %v", out, len(recs), err)
				}
				if a := mpDecode(t, recs[0]); len(a) != 3 || a[0] != int8(7) || a[2] != false {
					t.Fatalf("want [7, error, false], got %#v", a)
				}
			}
			if code, _, _ := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusNoContent {
				t.Errorf("poll after the Close: %d, want 204", code)
			}
		})
	}
	t.Run("a POST after the server closed returns without a poll", func(t *testing.T) {
		// The server closes on the first record; the POST holds 20 more.
		// It must not wait for the client's next poll to return: the
		// client may be waiting for the POST before it polls again.
		u := start(t, jsonHandshake)
		body := "{bad json" + rs + strings.Repeat(`{"type":6}`+rs, 20)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Errorf("POST after a protocol error did not return: %v", err)
		} else {
			resp.Body.Close()
		}
		code, _, out := e.do(t, http.MethodGet, u, nil, nil)
		if code != http.StatusOK {
			t.Fatalf("poll: %d", code)
		}
		expectClose(t, decodeJSON(t, bytes.TrimSuffix(out, []byte(rs))), "Invalid message received", false)
	})
	t.Run("DELETE on an SSE connection is 400", func(t *testing.T) {
		_, token := e.negotiateV1(t)
		sse := openSSE(t, e, token)
		u := e.base + "?id=" + url.QueryEscape(token)
		if code, _, _ := e.do(t, http.MethodDelete, u, nil, nil); code != http.StatusBadRequest {
			t.Errorf("status %d", code)
		}
		sse.close()
	})
}

// A long polling client that vanishes (no DELETE, no more polls) must be
// ended by the server after the client timeout, even though the Close it
// queues can never be delivered: otherwise the connection stays forever, and
// Shutdown waits for it until its context expires.
func TestRawLongPollingVanishedClient(t *testing.T) {
	e := newEnv(t, hub.WithKeepAlive(100*time.Millisecond), hub.WithClientTimeout(300*time.Millisecond))
	_, token := e.negotiateV1(t)
	u := e.base + "?id=" + url.QueryEscape(token)
	if code, _, _ := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK {
		t.Fatalf("first poll: %d", code)
	}
	if code, _, _ := e.do(t, http.MethodPost, u, []byte(jsonHandshake), nil); code != http.StatusOK {
		t.Fatalf("POST handshake: %d", code)
	}
	if code, _, body := e.do(t, http.MethodGet, u, nil, nil); code != http.StatusOK || string(body) != "{}"+rs {
		t.Fatalf("handshake answer: %d %q", code, body)
	}
	// The client vanishes. The hub notices after the client timeout.
	awaitCond(t, "the silent client to be disconnected", func() bool { return e.s.ConnectionCount() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with only a vanished long polling client: %v, want nil", err)
	}
}

// awaitCond polls cond until it holds: for states that have no event to
// await from outside the hub.
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Server-Sent Events

// sseStream is a signalrtest.EventStream whose records a goroutine reads
// into a buffer, so that a test waits for the next one with a timeout.
type sseStream struct {
	t    *testing.T
	s    *signalrtest.EventStream
	recs chan sseRec
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

type sseRec struct {
	b   []byte
	err error // the stream ended; b is nil
}

func openSSE(t *testing.T, e *env, token string) *sseStream {
	t.Helper()
	es, err := e.client().OpenEventStream(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	s := &sseStream{t: t, s: es, recs: make(chan sseRec, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(s.close)
	go s.read()
	return s
}

func (s *sseStream) read() {
	defer close(s.done)
	for {
		b, err := s.s.ReadRecord()
		select {
		case s.recs <- sseRec{bytes.Clone(b), err}:
		case <-s.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

func (s *sseStream) close() {
	s.once.Do(func() {
		close(s.quit)
		_ = s.s.Close()
	})
	<-s.done
}

// next returns the next record from the stream, or nil if it ended.
func (s *sseStream) next() []byte {
	s.t.Helper()
	select {
	case r := <-s.recs:
		if errors.Is(r.err, signalrtest.ErrMalformed) {
			s.t.Fatal(r.err)
		}
		return r.b
	case <-time.After(wait):
		s.t.Fatalf("no SSE event and no end of the stream within %v", wait)
		return nil
	}
}

func TestRawServerSentEvents(t *testing.T) {
	const limit = 1024
	e := newEnv(t, hub.WithMaxMessageSize(limit))
	start := func(t *testing.T) (string, *sseStream) {
		_, token := e.negotiateV1(t)
		s := openSSE(t, e, token)
		u := e.base + "?id=" + url.QueryEscape(token)
		if code, _, _ := e.do(t, http.MethodPost, u, []byte(jsonHandshake), nil); code != http.StatusOK {
			t.Fatalf("POST handshake: %d", code)
		}
		if r := s.next(); string(r) != "{}" {
			t.Fatalf("handshake answer %q", r)
		}
		return u, s
	}

	t.Run("invocations", func(t *testing.T) {
		u, s := start(t)
		post := invocation("1", "JoinLeadGroup", 4) + invocation("", "nope") + invocation("2", "JoinLeadGroup", "x")
		if code, _, _ := e.do(t, http.MethodPost, u, []byte(post), nil); code != http.StatusOK {
			t.Fatalf("POST: %d", code)
		}
		m := decodeJSON(t, s.next())
		if m.InvocationID != "1" {
			t.Fatalf("got %s", m.Raw)
		}
		m.ok(t)
		m = decodeJSON(t, s.next())
		if m.InvocationID != "2" {
			t.Fatalf("got %s", m.Raw)
		}
		m.failed(t, "Argument 1 must be an integer")
	})

	oversize := []struct {
		name string
		body string
	}{
		// What a client sends: one record, just over the limit, terminated.
		{"one record just over the limit", strings.Repeat(" ", limit-len(invocation("x", "JoinLeadGroup", 1))+2) + invocation("x", "JoinLeadGroup", 1)},
		{"far over the limit without separator", `{"type":1,"pad":"` + strings.Repeat("p", 5*limit)},
	}
	for _, tc := range oversize {
		t.Run(tc.name, func(t *testing.T) {
			u, s := start(t)
			code, _, body := e.do(t, http.MethodPost, u, []byte(tc.body), nil)
			if code != http.StatusRequestEntityTooLarge {
				t.Errorf("oversize POST: %d %q, want 413", code, body)
			}
			r := s.next()
			if r == nil {
				t.Fatal("stream ended without a Close")
			}
			expectClose(t, decodeJSON(t, r), fmt.Sprintf("The maximum message size of %dB was exceeded.", limit), false)
			if r := s.next(); r != nil {
				t.Fatalf("record after the Close: %q", r)
			}
			if code, _, _ := e.do(t, http.MethodPost, u, []byte(invocation("y", "JoinLeadGroup", 1)), nil); code != http.StatusNotFound {
				t.Errorf("POST after the end: %d, want 404", code)
			}
		})
	}

	t.Run("malformed closes", func(t *testing.T) {
		u, s := start(t)
		if code, _, _ := e.do(t, http.MethodPost, u, []byte("{bad json"+rs), nil); code != http.StatusOK && code != http.StatusNotFound {
			t.Errorf("POST: %d", code)
		}
		expectClose(t, decodeJSON(t, s.next()), "Invalid message received", false)
		if r := s.next(); r != nil {
			t.Fatalf("record after the Close: %q", r)
		}
	})

	t.Run("messagepack is refused", func(t *testing.T) {
		_, token := e.negotiateV1(t)
		s := openSSE(t, e, token)
		u := e.base + "?id=" + url.QueryEscape(token)
		e.do(t, http.MethodPost, u, []byte(mpHandshake), nil)
		r := s.next()
		if !bytes.Contains(r, []byte(`"error"`)) || !bytes.Contains(r, []byte("messagepack")) {
			t.Fatalf("handshake answer %q", r)
		}
		if r := s.next(); r != nil {
			t.Fatalf("record after the failed handshake: %q", r)
		}
	})

	t.Run("client Close ends the stream", func(t *testing.T) {
		u, s := start(t)
		if code, _, _ := e.do(t, http.MethodPost, u, []byte(`{"type":7}`+rs), nil); code != http.StatusOK && code != http.StatusNotFound {
			t.Errorf("POST: %d", code)
		}
		if r := s.next(); r != nil {
			t.Fatalf("record after the client's Close: %q", r)
		}
	})

	t.Run("second stream is 409", func(t *testing.T) {
		_, token := e.negotiateV1(t)
		openSSE(t, e, token)
		code, _, _ := e.do(t, http.MethodGet, e.base+"?id="+url.QueryEscape(token), nil, map[string]string{"Accept": "text/event-stream"})
		if code != http.StatusConflict {
			t.Errorf("status %d", code)
		}
	})
}

// ---------------------------------------------------------------------------
// Keep-alive and timeouts

func TestRawPing(t *testing.T) {
	e := newEnv(t, hub.WithKeepAlive(200*time.Millisecond), hub.WithClientTimeout(5*time.Second))
	w, _ := e.connect(t)
	m := w.nextJSON(false)
	if m.Type != 6 || string(m.Raw) != `{"type":6}` {
		t.Fatalf("want a ping, got %s", m.Raw)
	}
	// The client's pings keep it alive and get no answer.
	w.sendText(`{"type":6}` + rs)
	w.invoke("1", "JoinLeadGroup", 1).ok(t)
}

func TestRawClientTimeout(t *testing.T) {
	e := newEnv(t, hub.WithKeepAlive(100*time.Millisecond), hub.WithClientTimeout(300*time.Millisecond))
	t.Run("json", func(t *testing.T) {
		w := e.open(t, "", false)
		w.handshake()
		m := w.nextJSON(true)
		expectClose(t, m, "timeout", true)
		w.expectEnd()
	})
	t.Run("messagepack", func(t *testing.T) {
		w := e.open(t, "", true)
		w.send(websocket.MessageBinary, []byte(mpHandshake))
		if r := w.next(); string(r.b) != "{}" {
			t.Fatalf("handshake answer %q", r.b)
		}
		for {
			a := mpDecode(t, w.next().b)
			if typ, _ := asInt(a[0]); typ == 6 {
				if len(a) != 1 {
					t.Fatalf("ping %#v", a)
				}
				continue
			}
			if len(a) != 3 {
				t.Fatalf("Close has %d elements, want 3: %#v", len(a), a)
			}
			if typ, _ := asInt(a[0]); typ != 7 || a[2] != true || !strings.Contains(fmt.Sprint(a[1]), "timeout") {
				t.Fatalf("want [7, timeout error, true], got %#v", a)
			}
			break
		}
		w.expectEnd()
	})
}

func TestRawShutdown(t *testing.T) {
	e := newEnv(t)
	w, _ := e.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.s.Shutdown(ctx) }()
	expectClose(t, w.nextJSON(true), "shutting down", true)
	w.expectEnd()
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	code, _, _ := e.do(t, http.MethodPost, e.base+"/negotiate?negotiateVersion=1", nil, nil)
	if code != http.StatusServiceUnavailable {
		t.Errorf("negotiate after Shutdown: %d, want 503", code)
	}
}

// ---------------------------------------------------------------------------
// Sending

func TestRawBroadcastOrder(t *testing.T) {
	e := newEnv(t)
	w, _ := e.connect(t)
	const n = 1000
	for i := range n {
		e.s.All().Send("ReceiveLeadUpdate", i)
	}
	for i := range n {
		m := w.nextJSON(true)
		if m.Type != 1 || m.Target != "ReceiveLeadUpdate" || len(m.Arguments) != 1 || string(m.Arguments[0]) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %s", i, m.Raw)
		}
		if m.InvocationID != "" {
			t.Fatalf("server invocation carries an id: %s", m.Raw)
		}
	}
}

// smallRecvBufClient dials with a tiny receive buffer, so that a client that
// does not read pushes back on the server quickly.
func smallRecvBufClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func TestRawSlowConsumer(t *testing.T) {
	e := newEnv(t, hub.WithSendQueue(10), hub.WithWriteTimeout(500*time.Millisecond))
	fast, _ := e.connect(t)

	// The slow client completes its handshake and then never reads.
	hc := smallRecvBufClient()
	t.Cleanup(hc.CloseIdleConnections)
	c, _, err := e.dial(t, "", hc)
	if err != nil {
		t.Fatal(err)
	}
	slow := wrapWS(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(jsonHandshake+invocation("s", "JoinLeadGroup", 1))); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, "both connections", func() bool { return e.s.ConnectionCount() == 2 })

	payload := strings.Repeat("x", 64<<10)
	const n, batch = 400, 5
	received := 0
	for i := 0; i < n; i += batch {
		for j := i; j < i+batch; j++ {
			e.s.All().Send("ReceiveLeadUpdate", j, payload) // must not block
		}
		// Pace on the fast client, so that only the slow one falls behind.
		for ; received < i+batch; received++ {
			m := fast.nextJSON(true)
			if m.Type != 1 || len(m.Arguments) != 2 || string(m.Arguments[0]) != fmt.Sprint(received) {
				t.Fatalf("fast client, message %d: got %.100s", received, m.Raw)
			}
		}
		if e.s.ConnectionCount() == 1 {
			break // the slow one is gone; no need to go on
		}
	}
	awaitCond(t, "the slow client to be closed", func() bool { return e.s.ConnectionCount() == 1 })

	// The slow client, reading now, gets some messages and then either a
	// Close with allowReconnect or the end of the socket.
	slow.start()
	got := 0
	for _, r := range slow.expectEnd() {
		m := decodeJSON(t, r)
		switch m.Type {
		case 1:
			got++
		case 7:
			expectClose(t, m, "did not keep up", true)
		}
	}
	if got >= received {
		t.Errorf("slow client got all %d messages", got)
	}
	// The fast client is unharmed.
	fast.invoke("after", "JoinLeadGroup", 1).ok(t)
}

func TestRawLeadGroupCap(t *testing.T) {
	e := newEnv(t, hub.WithMaxLeadGroups(2))
	w, id := e.connect(t)
	w.invoke("1", "JoinLeadGroup", 1).ok(t)
	w.invoke("2", "JoinLeadGroup", 2).ok(t)
	w.invoke("3", "JoinLeadGroup", 3).failed(t, "cannot follow more than 2 leads")
	w.invoke("4", "JoinLeadGroup", 1).ok(t) // already in: not a new group
	w.invoke("5", "LeaveLeadGroup", 1).ok(t)
	w.invoke("6", "JoinLeadGroup", 3).ok(t)
	if !e.s.InGroup(hub.LeadGroup(3), id) || e.s.InGroup(hub.LeadGroup(1), id) {
		t.Error("group membership is wrong")
	}
	// Server-side groups do not count against the cap.
	e.s.AddToGroup("x", id)
	w.invoke("7", "LeaveLeadGroup", 2).ok(t)
	w.invoke("8", "JoinLeadGroup", 4).ok(t)
}

func TestRawGroups(t *testing.T) {
	e := newEnv(t)
	w, id := e.connect(t)
	other, otherID := e.connect(t)
	s := e.s

	if got := s.GroupCount(); got != 1 {
		t.Fatalf("GroupCount %d, want 1 (LeadUpdates)", got)
	}
	s.AddToGroup("a", id)
	s.AddToGroup("b", id)
	s.AddToGroup("b", otherID)
	s.AddToGroup("a", "no-such-connection")
	if got := s.GroupCount(); got != 3 {
		t.Fatalf("GroupCount %d, want 3", got)
	}
	if !s.InGroup("a", id) || s.InGroup("a", otherID) || s.InGroup("a", "no-such-connection") {
		t.Fatal("InGroup is wrong")
	}

	s.Groups("a", "b").Send("G", 1)
	s.Group("a").Send("G", 2)
	s.Client(id).Send("G", 3)
	s.User("").Send("G", 99) // anonymous connections have no user
	s.Client(otherID).Send("G", 4)
	for _, want := range []string{"1", "2", "3"} {
		m := w.nextJSON(true)
		if m.Type != 1 || m.Target != "G" || len(m.Arguments) != 1 || string(m.Arguments[0]) != want {
			t.Fatalf("want G(%s), got %s", want, m.Raw)
		}
	}
	for _, want := range []string{"1", "4"} {
		m := other.nextJSON(true)
		if m.Type != 1 || string(m.Arguments[0]) != want {
			t.Fatalf("other: want G(%s), got %s", want, m.Raw)
		}
	}
	// Nothing else was queued for w: the next record is this completion.
	w.invoke("x", "JoinLeadGroup", 1).ok(t)
	if got := s.GroupCount(); got != 4 {
		t.Fatalf("GroupCount %d after JoinLeadGroup, want 4", got)
	}

	s.RemoveFromGroup("a", id)
	if got := s.GroupCount(); got != 3 {
		t.Fatalf("GroupCount %d after emptying a, want 3", got)
	}
	s.RemoveFromGroup("b", id)
	if got := s.GroupCount(); got != 3 {
		t.Fatalf("GroupCount %d with b still holding other, want 3", got)
	}
	s.RemoveFromGroup("b", otherID)
	s.RemoveFromGroup("b", otherID) // again: harmless
	if got := s.GroupCount(); got != 2 {
		t.Fatalf("GroupCount %d, want 2", got)
	}
	w.invoke("y", "LeaveLeadGroup", 1).ok(t)
	if got := s.GroupCount(); got != 1 {
		t.Fatalf("GroupCount %d after LeaveLeadGroup, want 1", got)
	}

	// A connection that ends leaves its groups.
	s.AddToGroup("c", otherID)
	other.close()
	awaitCond(t, "the closed connection to leave its groups", func() bool {
		return s.GroupCount() == 1 && s.ConnectionCount() == 1
	})
	s.Group("c").Send("G", 5) // a group that no longer exists: no effect
	w.invoke("z", "JoinLeadGroup", 2).ok(t)
}
