package signalrtest_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"go.uber.org/goleak"
)

// TestMain fails the tests if a goroutine outlives them: every hub, server,
// connection and stream a test opens is closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// timeout bounds every wait: generous, so that -race on a busy machine never
// flakes; a passing test never waits this long.
const timeout = 5 * time.Second

// newHub serves a hub.Server on httptest and returns a Client for it.
func newHub(t *testing.T, opts ...hub.Option) (*hub.Server, *signalrtest.Client) {
	t.Helper()
	s, err := hub.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Mount(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = s.Close() })
	return s, &signalrtest.Client{URL: ts.URL + s.Path(), HTTPClient: ts.Client()}
}

func timeoutCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// nextMessage reads records until one that is not a Ping, and decodes it.
func nextMessage(t *testing.T, ctx context.Context, c *signalrtest.Conn, p signalrtest.Protocol) (typ int, rec signalrtest.Record) {
	t.Helper()
	for {
		rec, err := c.ReadRecord(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p == signalrtest.JSON {
			m, err := signalrtest.DecodeJSON(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			typ = m.Type
		} else {
			a, err := signalrtest.DecodeMessagePack(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := a[0].(int8)
			typ = int(n)
		}
		if typ != 6 {
			return typ, rec
		}
	}
}

func TestConnectAndInvoke(t *testing.T) {
	for _, tt := range []struct {
		p      signalrtest.Protocol
		typ    websocket.MessageType
		invoke []byte
	}{
		{signalrtest.JSON, websocket.MessageText, signalrtest.JSONInvocation("1", "JoinLeadGroup", 42)},
		{signalrtest.MessagePack, websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]any{}, "1", "JoinLeadGroup", []any{42})},
	} {
		t.Run(tt.p.String(), func(t *testing.T) {
			s, c := newHub(t)
			ctx := timeoutCtx(t)
			conn, err := c.Connect(ctx, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.Write(ctx, tt.typ, tt.invoke); err != nil {
				t.Fatal(err)
			}
			typ, rec := nextMessage(t, ctx, conn, tt.p)
			if typ != 3 || rec.Type != tt.typ {
				t.Fatalf("got type %d in a %v message, want a completion in a %v message: %q", typ, rec.Type, tt.typ, rec.Data)
			}
			if id := conn.ConnectionID(); id == "" || !s.InGroup(hub.LeadGroup(42), id) {
				t.Errorf("connection %q is not in Lead_42", id)
			}
		})
	}
}

// TestReadRecordContext: a ctx acts on the call it is given to only, and
// cancelling it while ReadRecord waits returns its error.
func TestReadRecordContext(t *testing.T) {
	_, c := newHub(t)
	dialCtx, cancel := context.WithTimeout(t.Context(), timeout)
	conn, err := c.Connect(dialCtx, signalrtest.JSON)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := timeoutCtx(t)
	if err := conn.Write(ctx, websocket.MessageText, signalrtest.JSONInvocation("1", "JoinLeadGroup", 1)); err != nil {
		t.Fatal(err)
	}
	if typ, rec := nextMessage(t, ctx, conn, signalrtest.JSON); typ != 3 {
		t.Fatalf("after Connect's ctx was cancelled: %q, want a completion", rec.Data)
	}
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := conn.ReadRecord(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadRecord with nothing to read: %v, want the deadline", err)
	}
}

func TestBearerToken(t *testing.T) {
	alice := hub.AuthenticatorFunc(func(r *http.Request) (*hub.Principal, error) {
		if hub.BearerToken(r) != "alice" {
			return nil, hub.ErrNoToken
		}
		return &hub.Principal{ID: "alice"}, nil
	})
	_, c := newHub(t, hub.WithAuthenticator(alice))
	ctx := timeoutCtx(t)
	if _, err := c.Negotiate(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("negotiate without a token: %v, want a 401 error", err)
	}
	c.AccessToken = "alice"
	conn, err := c.Connect(ctx, signalrtest.JSON) // header on negotiate, query on the WebSocket
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestDialRefused(t *testing.T) {
	_, c := newHub(t)
	conn, resp, err := c.Dial(timeoutCtx(t), "id=nope", signalrtest.JSON)
	if err == nil {
		conn.Close()
		t.Fatal("dial with an unknown id succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("want the hub's 404, got %v (%v)", resp, err)
	}
}

func TestHandshakeRefused(t *testing.T) {
	_, c := newHub(t)
	ctx := timeoutCtx(t)
	conn, _, err := c.Dial(ctx, "", signalrtest.JSON)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"protocol":"xml","version":1}`+"\x1e")); err != nil {
		t.Fatal(err)
	}
	rec, err := conn.ReadRecord(ctx)
	if err != nil || !bytes.Contains(rec.Data, []byte(`"error"`)) {
		t.Fatalf("handshake answer %q (%v), want an error", rec.Data, err)
	}
	if _, err := conn.ReadRecord(ctx); websocket.CloseStatus(err) == -1 && !errors.Is(err, io.EOF) {
		t.Fatalf("after a refused handshake: %v, want the end of the connection", err)
	}
}

// TestPingKeepsAlive: a client that pings outlives the client timeout.
func TestPingKeepsAlive(t *testing.T) {
	_, c := newHub(t, hub.WithKeepAlive(50*time.Millisecond), hub.WithClientTimeout(300*time.Millisecond))
	ctx := timeoutCtx(t)
	conn, err := c.Connect(ctx, signalrtest.MessagePack)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 8 {
		if err := conn.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := conn.Write(ctx, websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]any{}, "x", "JoinLeadGroup", []any{1})); err != nil {
		t.Fatal(err)
	}
	if typ, rec := nextMessage(t, ctx, conn, signalrtest.MessagePack); typ != 3 {
		t.Fatalf("after 800 ms of pings: %x, want a completion", rec.Data)
	}
}

// fakeHub answers every WebSocket with msgs, as given, and then waits for
// the client to go: what no real hub sends on demand.
func fakeHub(t *testing.T, msgs ...[]byte) *signalrtest.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for _, m := range msgs {
			if err := ws.Write(r.Context(), websocket.MessageBinary, m); err != nil {
				return
			}
		}
		_, _, _ = ws.Read(r.Context())
	}))
	t.Cleanup(ts.Close)
	return &signalrtest.Client{URL: ts.URL, HTTPClient: ts.Client()}
}

// TestRecordsAcrossMessages: records are cut from the stream whatever the
// WebSocket message boundaries, and each says which message it ended in.
func TestRecordsAcrossMessages(t *testing.T) {
	mp := signalrtest.MessagePackFrame(1, map[string]any{}, nil, "Target", []any{strings.Repeat("x", 200)})
	for _, tt := range []struct {
		name string
		p    signalrtest.Protocol
		msgs [][]byte
		want []string // record:msg
	}{
		{"json", signalrtest.JSON, [][]byte{[]byte("{}\x1ea\x1eb"), []byte("c\x1e"), []byte("d\x1ee\x1e")},
			[]string{"{}:1", "a:1", "bc:2", "d:3", "e:3"}},
		{"messagepack", signalrtest.MessagePack, [][]byte{append([]byte("{}\x1e"), mp[:2]...), mp[2:], append(mp, mp...)},
			[]string{"{}:1", "mp:2", "mp:3", "mp:3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := timeoutCtx(t)
			conn, _, err := fakeHub(t, tt.msgs...).Dial(ctx, "", tt.p)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for i, want := range tt.want {
				rec, err := conn.ReadRecord(ctx)
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				got := string(rec.Data)
				if bytes.Equal(rec.Data, mp[2:]) {
					got = "mp"
				}
				if got += ":" + string(rune('0'+rec.Msg)); got != want {
					t.Errorf("record %d: got %s, want %s", i, got, want)
				}
			}
		})
	}
}

func TestHandshakeKeepsWhatFollows(t *testing.T) {
	ctx := timeoutCtx(t)
	conn, _, err := fakeHub(t, []byte("{}\x1e{\"type\":6}\x1e")).Dial(ctx, "", signalrtest.JSON)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, err := conn.ReadRecord(ctx); err != nil || string(rec.Data) != `{"type":6}` {
		t.Fatalf("after the handshake: %q, %v", rec.Data, err)
	}
}

func TestHandshakeError(t *testing.T) {
	ctx := timeoutCtx(t)
	conn, _, err := fakeHub(t, []byte(`{"error":"no"}`+"\x1e")).Dial(ctx, "", signalrtest.JSON)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Handshake(ctx); err == nil || !strings.Contains(err.Error(), `{\"error\":\"no\"}`) {
		t.Fatalf("Handshake: %v, want an error quoting the answer", err)
	}
}

func TestEventStream(t *testing.T) {
	_, c := newHub(t)
	ctx := timeoutCtx(t)
	n, err := c.Negotiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenEventStream(ctx, n.ConnectionToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := append(signalrtest.JSON.Handshake(), signalrtest.JSONInvocation("1", "JoinLeadGroup", 1)...)
	resp, err := c.HTTPClient.Post(c.URL+"?id="+url.QueryEscape(n.ConnectionToken), "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var got []string
	for len(got) < 2 {
		rec, err := s.ReadRecord()
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := signalrtest.DecodeJSON(rec); m.Type != 6 {
			got = append(got, string(rec))
		}
	}
	if got[0] != "{}" || !strings.Contains(got[1], `"invocationId":"1"`) {
		t.Fatalf("got %q, want the handshake answer and the completion", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadRecord(); err == nil {
		t.Fatal("ReadRecord after Close succeeded")
	}
}

func TestSplit(t *testing.T) {
	mp := signalrtest.MessagePackFrame(6)
	for _, tt := range []struct {
		name    string
		p       signalrtest.Protocol
		b       []byte
		want    int
		wantErr bool
	}{
		{"json", signalrtest.JSON, []byte("{}\x1e{\"type\":6}\x1e"), 2, false},
		{"json, empty", signalrtest.JSON, nil, 0, false},
		{"json, cut short", signalrtest.JSON, []byte("{}\x1e{\"ty"), 1, true},
		{"messagepack", signalrtest.MessagePack, append(append([]byte{}, mp...), mp...), 2, false},
		{"messagepack, cut short", signalrtest.MessagePack, mp[:2], 0, true},
		{"messagepack, prefix only", signalrtest.MessagePack, []byte{0x85}, 0, true},
		{"messagepack, 6-byte prefix", signalrtest.MessagePack, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := signalrtest.Split(tt.b, tt.p)
			if len(recs) != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("got %d records, err %v; want %d, error %v", len(recs), err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, signalrtest.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestDecodeMessagePack(t *testing.T) {
	a, err := signalrtest.DecodeMessagePack(signalrtest.MessagePackFrame(7, "bye", true)[1:])
	if err != nil || len(a) != 3 || a[0] != int8(7) || a[1] != "bye" || a[2] != true {
		t.Fatalf("got %#v, %v", a, err)
	}
	for _, bad := range [][]byte{{0x05}, {0x91, 0x06, 0x06}, {0xc1}} {
		if a, err := signalrtest.DecodeMessagePack(bad); err == nil {
			t.Errorf("%x decoded to %#v", bad, a)
		}
	}
}

func TestJSONInvocation(t *testing.T) {
	for _, tt := range []struct {
		id, want string
		args     []any
	}{
		{"1", `{"type":1,"invocationId":"1","target":"T","arguments":[5,"x"]}` + "\x1e", []any{5, "x"}},
		{"", `{"type":1,"target":"T","arguments":[]}` + "\x1e", nil},
	} {
		if got := string(signalrtest.JSONInvocation(tt.id, "T", tt.args...)); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// BenchmarkReadRecord is the client's cost per record as hubbench reads
// them: 361-byte JSON records, seven to a WebSocket message. The server
// writes pre-encoded frames, so that ns/op is the reader's.
//
//	go test -run '^$' -bench ReadRecord ./internal/signalrtest/
func BenchmarkReadRecord(b *testing.B) {
	rec := append(bytes.Repeat([]byte("x"), 360), 0x1e)
	conn, _, err := frameHub(b, bytes.Repeat(rec, 7)).Dial(context.Background(), "", signalrtest.JSON)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ReadRecord(context.Background()); err != nil { // the handshake answer
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if r, err := conn.ReadRecord(context.Background()); err != nil || len(r.Data) != 360 {
			b.Fatalf("%q, %v", r.Data, err)
		}
	}
}

// frameHub accepts one WebSocket by hand and writes msg to it as binary
// messages, pre-encoded in bulk, until the client goes: a server that costs
// next to nothing.
func frameHub(b *testing.B, msg []byte) *signalrtest.Client {
	frame := append([]byte{0x82, 126, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	bulk := bytes.Repeat(frame, 1000)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(bw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(h[:]))
		bw.Write([]byte{0x82, 3, '{', '}', 0x1e})
		for bw.Flush() == nil {
			if _, err := c.Write(bulk); err != nil {
				return
			}
		}
	}))
	b.Cleanup(ts.Close)
	return &signalrtest.Client{URL: ts.URL, HTTPClient: ts.Client()}
}
