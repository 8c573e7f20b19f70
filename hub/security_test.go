package hub_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
)

// expiringTokens accepts "user.expiresAtUnixMs" until that instant: a
// stand-in for a JWT's sub and exp.
var expiringTokens = hub.AuthenticatorFunc(func(r *http.Request) (*hub.Principal, error) {
	tok := hub.BearerToken(r)
	if tok == "" {
		return nil, hub.ErrNoToken
	}
	user, ms, ok := strings.Cut(tok, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || user == "" {
		return nil, errors.New("malformed token")
	}
	exp := time.UnixMilli(n)
	if time.Now().After(exp) {
		return nil, errors.New("token expired")
	}
	return &hub.Principal{ID: user, Expires: exp}, nil
})

// securityHub serves h with /ctl/send?to=user:ID&tag=T&n=N for security.mjs:
// N messages {"tag": T, "seq": 0...N-1}.
func securityHub(t *testing.T, h *hub.Server) *httptest.Server {
	mux := http.NewServeMux()
	h.Mount(mux)
	mux.HandleFunc("POST /ctl/send", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		_, user, _ := strings.Cut(q.Get("to"), ":")
		n, _ := strconv.Atoi(q.Get("n"))
		for i := range max(n, 1) {
			h.User(user).Send("ReceiveLeadUpdate", map[string]any{"tag": q.Get("tag"), "seq": i})
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		ts.Close()
	})
	return ts
}

// runSecurityCase runs security.mjs's case name against url and fails t for
// every variant that fails; want is how many variants must report.
func runSecurityCase(t *testing.T, name, url string, want int, env ...string) {
	t.Helper()
	runClient(t, "security.mjs", 2*time.Minute, want, append([]string{"HUB_URL=" + url, "CASE=" + name}, env...)...)
}

// TestTokenExpiryReconnects: a connection ends when its token does, on
// every transport, stateful reconnect included, and the real client
// reconnects with a fresh token from its accessTokenFactory.
func TestTokenExpiryReconnects(t *testing.T) {
	h, err := hub.New(hub.WithAuthenticator(expiringTokens))
	if err != nil {
		t.Fatal(err)
	}
	runSecurityCase(t, "expiry", securityHub(t, h).URL, 4)
}

// TestLongPollingTakesABurst: a burst of 3,000 lead events at once, three
// times WithSendQueue, does not close a Long Polling client, which takes
// them a poll at a time: its queue is bounded in bytes.
func TestLongPollingTakesABurst(t *testing.T) {
	h, err := hub.New(hub.WithAuthenticator(expiringTokens))
	if err != nil {
		t.Fatal(err)
	}
	runSecurityCase(t, "burst", securityHub(t, h).URL, 1)
}
