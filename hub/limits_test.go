package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"github.com/prometheus/client_golang/prometheus"
)

// counter returns the value of a counter on reg, 0 if absent.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if label == "" || (l.GetName() == label && l.GetValue() == value) {
					return m.GetCounter().GetValue()
				}
			}
			if label == "" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// invokeAll writes n invocations of target(arg) in one WebSocket message,
// with ids 1..n (none when withID is false), and returns the completions'
// errors by id ("" for success).
func invokeAll(t *testing.T, ctx context.Context, conn *signalrtest.Conn, n int, withID bool, target string, arg any) map[string]string {
	t.Helper()
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		id := ""
		if withID {
			id = fmt.Sprint(i)
		}
		b.Write(signalrtest.JSONInvocation(id, target, arg))
	}
	if err := conn.Write(ctx, websocket.MessageText, b.Bytes()); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for withID && len(got) < n {
		rec, err := conn.ReadRecord(ctx)
		if err != nil {
			t.Fatalf("after %d completions: %v", len(got), err)
		}
		m, err := signalrtest.DecodeJSON(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type != 3 {
			continue
		}
		got[m.InvocationID] = ""
		if m.Error != nil {
			got[m.InvocationID] = *m.Error
		}
	}
	return got
}

func connectWS(t *testing.T, h *hub.Server, token string) (*signalrtest.Conn, context.Context) {
	t.Helper()
	ts := securityHub(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	c := &signalrtest.Client{URL: ts.URL + h.Path(), HTTPClient: ts.Client(), AccessToken: token}
	conn, err := c.Connect(ctx, signalrtest.JSON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, ctx
}

// TestInvocationRateLimited: calls over a connection's rate get a clear
// error and sends over it are dropped and counted; the connection stays.
func TestInvocationRateLimited(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := hub.New(hub.WithInvocationRate(1, 5), hub.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	conn, ctx := connectWS(t, h, "")
	got := invokeAll(t, ctx, conn, 20, true, "LeaveLeadGroup", 1)
	limited := 0
	for id, e := range got {
		switch {
		case e == "":
		case strings.Contains(e, "Too many calls"):
			limited++
		default:
			t.Errorf("call %s: unexpected error %q", id, e)
		}
	}
	if limited != 15 {
		t.Errorf("%d of 20 calls limited, want 15 (burst 5)", limited)
	}
	invokeAll(t, ctx, conn, 10, false, "LeaveLeadGroup", 1) // sends: dropped
	time.Sleep(1100 * time.Millisecond)                     // one token back
	if got := invokeAll(t, ctx, conn, 1, true, "LeaveLeadGroup", 1); got["1"] != "" {
		t.Errorf("a call within the rate after the burst: %q", got["1"])
	}
	if n := counter(t, reg, "leadupdates_hub_rate_limited_total", "kind", "invocation"); n != 25 {
		t.Errorf("rate_limited_total{kind=invocation} = %v, want 25", n)
	}
}

// TestGroupRefusalCached: a client repeating a refused join costs one
// lookup, not one per call.
func TestGroupRefusalCached(t *testing.T) {
	var asked atomic.Int64
	h, err := hub.New(hub.WithGroupAuthorizer(hub.GroupAuthorizerFunc(func(context.Context, *hub.Principal, int64) (bool, error) {
		asked.Add(1)
		return false, nil
	})))
	if err != nil {
		t.Fatal(err)
	}
	conn, ctx := connectWS(t, h, "")
	got := invokeAll(t, ctx, conn, 50, true, "JoinLeadGroup", 7)
	for id, e := range got {
		if !strings.Contains(e, "not authorized to receive updates of lead 7") {
			t.Errorf("join %s: %q, want refused", id, e)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the GroupAuthorizer was asked %d times for 50 joins of one refused lead, want 1", n)
	}
	invokeAll(t, ctx, conn, 1, true, "JoinLeadGroup", 8)
	if n := asked.Load(); n != 2 {
		t.Errorf("another lead: asked %d times in all, want 2", n)
	}
}

// TestNegotiateFloodLocksOutNobody: one user floods negotiate without ever
// connecting; that user alone gets 429 with Retry-After, and other users
// connect within 5 s on every transport and receive an event (security.mjs
// "connect"). The global cap is low here so that one user could fill it.
func TestNegotiateFloodLocksOutNobody(t *testing.T) {
	h, err := hub.New(hub.WithAuthenticator(expiringTokens), hub.WithMaxPendingConnections(20, 200))
	if err != nil {
		t.Fatal(err)
	}
	ts := securityHub(t, h)
	flood := fmt.Sprintf("flooder.%d", time.Now().Add(time.Hour).UnixMilli())
	ctx, stop := context.WithCancel(t.Context())
	var (
		wg                  sync.WaitGroup
		ok, tooMany, noWait atomic.Int64
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/leadupdates/negotiate?negotiateVersion=1", nil)
				req.Header.Set("Authorization", "Bearer "+flood)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					tooMany.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						noWait.Add(1)
					}
				}
			}
		})
	}
	start := time.Now()
	time.Sleep(2 * time.Second) // the flood is on
	runSecurityCase(t, "connect", ts.URL, 4)
	time.Sleep(time.Until(start.Add(8 * time.Second)))
	stop()
	wg.Wait()
	t.Logf("flood: %d negotiated, %d refused", ok.Load(), tooMany.Load())
	if ok.Load() > 20 || tooMany.Load() == 0 {
		t.Errorf("flood: %d negotiated, %d refused; want at most 20 negotiated, the rest refused", ok.Load(), tooMany.Load())
	}
	if noWait.Load() > 0 {
		t.Errorf("%d 429 answers without Retry-After", noWait.Load())
	}
}

// TestInvalidUTF8Closes1007: a text message that is not UTF-8 closes the
// WebSocket with 1007 (RFC 6455), as ASP.NET Core; valid multi-byte text
// passes.
func TestInvalidUTF8Closes1007(t *testing.T) {
	h, err := hub.New()
	if err != nil {
		t.Fatal(err)
	}
	conn, ctx := connectWS(t, h, "")
	got := invokeAll(t, ctx, conn, 1, true, "Jöin€𝄞", 1)
	if !strings.Contains(got["1"], "Method does not exist") {
		t.Fatalf("valid UTF-8: %q", got["1"])
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("{\"type\":1,\"target\":\"x\xff\",\"arguments\":[]}\x1e")); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := conn.ReadRecord(ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusInvalidFramePayloadData {
				t.Fatalf("closed with %v (%v), want 1007", s, err)
			}
			return
		}
	}
}

// revocable accepts any non-empty token as that user, until revoked; it
// revalidates from the principal alone.
type revocable struct{ revoked sync.Map }

func (a *revocable) Authenticate(r *http.Request) (*hub.Principal, error) {
	tok := hub.BearerToken(r)
	if _, no := a.revoked.Load(tok); no || tok == "" {
		return nil, hub.ErrNoToken
	}
	return &hub.Principal{ID: tok}, nil
}

func (a *revocable) Revalidate(_ context.Context, p *hub.Principal) error {
	if _, no := a.revoked.Load(p.ID); no {
		return fmt.Errorf("%s is revoked", p.ID)
	}
	return nil
}

// TestRevalidationCutsOffARevokedUser: with WithRevalidation, a user
// revoked while connected is closed (allowReconnect, so the client tries
// again and is refused) within the interval; others stay.
func TestRevalidationCutsOffARevokedUser(t *testing.T) {
	if _, err := hub.New(hub.WithRevalidation(time.Second), hub.WithAuthenticator(expiringTokens)); err == nil {
		t.Error("WithRevalidation with an Authenticator that cannot revalidate: New did not fail")
	}
	auth := &revocable{}
	h, err := hub.New(hub.WithAuthenticator(auth), hub.WithRevalidation(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	mallory, ctx := connectWS(t, h, "mallory")
	alice, _ := connectWS(t, h, "alice")
	auth.revoked.Store("mallory", true)
	start := time.Now()
	for {
		rec, err := mallory.ReadRecord(ctx)
		if err != nil {
			t.Fatalf("no Close message: %v", err)
		}
		m, err := signalrtest.DecodeJSON(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == 7 {
			if !m.AllowReconnect {
				t.Errorf("Close without allowReconnect: %s", rec.Data)
			}
			break
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed %v after the revocation, want within about 2 s", d)
	}
	if got := invokeAll(t, ctx, alice, 1, true, "LeaveLeadGroup", 1); got["1"] != "" {
		t.Errorf("alice, not revoked: %q", got["1"])
	}
}
