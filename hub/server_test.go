package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/philippseith/signalr"
	"github.com/prometheus/client_golang/prometheus"
)

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  hub.Option
	}{
		{"relative path", hub.WithPath("leadupdates")},
		{"path with trailing slash", hub.WithPath("/leadupdates/")},
		{"tiny message limit", hub.WithMaxMessageSize(100)},
		{"empty send queue", hub.WithSendQueue(0)},
		{"no transports", hub.WithTransports()},
		{"unknown transport", hub.WithTransports("Carrier pigeon")},
		{"timeout below keep-alive", hub.WithClientTimeout(time.Second)},
		{"zero poll timeout", hub.WithLongPollTimeout(0)},
		{"negative lead group cap", hub.WithMaxLeadGroups(-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := hub.New(tt.opt)
			if err == nil {
				s.Close()
				t.Fatal("New accepted it")
			}
			if !strings.HasPrefix(err.Error(), "hub: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func newCORSServer(t *testing.T, origins ...string) *httptest.Server {
	t.Helper()
	s, err := hub.New(hub.WithAllowedOrigins(origins...))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Mount(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}

func TestCORS(t *testing.T) {
	ts := newCORSServer(t, "https://dash.example.com", "https://*.leads.example.com")
	tests := []struct {
		name      string
		method    string
		origin    string
		wantAllow string // Access-Control-Allow-Origin; "" means none
		wantCode  int
	}{
		{"preflight from an allowed origin", http.MethodOptions, "https://dash.example.com", "https://dash.example.com", http.StatusNoContent},
		{"preflight from a wildcard origin", http.MethodOptions, "https://eu.leads.example.com", "https://eu.leads.example.com", http.StatusNoContent},
		{"preflight from another origin", http.MethodOptions, "https://evil.example.net", "", http.StatusNoContent},
		{"negotiate from an allowed origin", http.MethodPost, "https://dash.example.com", "https://dash.example.com", http.StatusOK},
		{"negotiate from another origin", http.MethodPost, "https://evil.example.net", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, ts.URL+"/leadupdates/negotiate?negotiateVersion=1", nil)
			req.Header.Set("Origin", tt.origin)
			if tt.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization,x-requested-with,x-signalr-user-agent")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantAllow {
				t.Errorf("Access-Control-Allow-Origin: got %q, want %q", got, tt.wantAllow)
			}
			if tt.wantAllow == "" {
				return
			}
			if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("Access-Control-Allow-Credentials: got %q, want true (the client sends credentials)", got)
			}
			if tt.method == http.MethodOptions {
				if got := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "authorization") || !strings.Contains(got, "x-signalr-user-agent") {
					t.Errorf("Access-Control-Allow-Headers: got %q", got)
				}
			}
		})
	}
}

// TestCORSStarWithCredentials: "*" allows every origin for the client's
// credentialed requests, which browsers refuse with Allow-Origin "*": the
// request's origin is reflected.
func TestCORSStarWithCredentials(t *testing.T) {
	ts := newCORSServer(t, "*")
	for _, method := range []string{http.MethodOptions, http.MethodPost} {
		req, _ := http.NewRequestWithContext(t.Context(), method, ts.URL+"/leadupdates/negotiate?negotiateVersion=1", nil)
		req.Header.Set("Origin", "https://anywhere.example.org")
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://anywhere.example.org" {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want the request's origin", method, got)
		}
		if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("%s: Access-Control-Allow-Credentials %q, want true", method, got)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("%s: Vary %q, want Origin (the answer depends on it)", method, resp.Header.Get("Vary"))
		}
	}
}

func TestWebSocketOriginCheckUsesTheSameList(t *testing.T) {
	ts := newCORSServer(t, "https://dash.example.com")
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/leadupdates"
	tests := []struct {
		name   string
		origin string
		ok     bool
	}{
		{"allowed origin", "https://dash.example.com", true},
		{"other origin", "https://evil.example.net", false},
		{"no origin (not a browser)", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
			if tt.ok {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				ws.CloseNow()
				return
			}
			if err == nil {
				ws.CloseNow()
				t.Fatal("dial from a foreign origin succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("want 403, got %v", resp)
			}
		})
	}
}

func TestNoAllowedOriginsMeansSameOriginOnly(t *testing.T) {
	ts := newCORSServer(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, ts.URL+"/leadupdates/negotiate", nil)
	req.Header.Set("Origin", "https://anywhere.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Access-Control-Allow-Origin: got %q, want none", got)
	}
}

func TestPendingConnectionsAreCapped(t *testing.T) {
	e := newEnv(t, hub.WithMaxPendingConnections(0, 2))
	ts := e.ts
	negotiate := func() (int, string) {
		resp, err := http.Post(ts.URL+"/leadupdates/negotiate?negotiateVersion=1", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ ConnectionToken string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.ConnectionToken
	}
	_, first := negotiate()
	negotiate()
	if code, _ := negotiate(); code != http.StatusTooManyRequests {
		t.Fatalf("third pending negotiate: %d, want 429", code)
	}
	// Attaching the first frees its place.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/leadupdates?id="+first, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if code, _ := negotiate(); code != http.StatusOK {
		t.Errorf("negotiate after one attached: %d, want 200", code)
	}
}

// TestWireMethodSet: every exported method of LeadUpdatesHub that is not
// promoted from signalr.Hub is callable by clients; an exported helper would
// be too. This list is the wire API.
func TestWireMethodSet(t *testing.T) {
	base := map[string]bool{}
	bt := reflect.TypeOf(&signalr.Hub{})
	for i := range bt.NumMethod() {
		base[bt.Method(i).Name] = true
	}
	var got []string
	ht := reflect.TypeOf(&hub.LeadUpdatesHub{})
	for i := range ht.NumMethod() {
		if name := ht.Method(i).Name; !base[name] {
			got = append(got, name)
		}
	}
	if want := []string{"CatchUp", "JoinLeadGroup", "LeaveLeadGroup"}; !slices.Equal(got, want) {
		t.Errorf("client-callable methods %v, want %v", got, want)
	}
}

// Two Servers on one registry: the second fails at New with an error that
// says what to do, and leaves the first one's collectors registered; each on
// its own wrapped registry, both work.
func TestNewSecondServerOnOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	first, err := hub.New(hub.WithRegisterer(reg), hub.WithBackplane(&tap{}))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = hub.New(hub.WithRegisterer(reg), hub.WithBackplane(&tap{}))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || !strings.HasPrefix(err.Error(), "hub: metrics already registered on this registry") {
		t.Fatalf("second Server on one registry: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"leadupdates_hub_messages_sent_total", "leadupdates_hub_backplane_published_total"} {
		if !names[n] {
			t.Errorf("%s not registered after the failed New; have %v", n, names)
		}
	}

	shared := prometheus.NewPedanticRegistry()
	for _, instance := range []string{"a", "b"} {
		srv, err := hub.New(hub.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"instance": instance}, shared)))
		if err != nil {
			t.Fatalf("instance %s: %v", instance, err)
		}
		defer srv.Close()
	}
}

// A nil hook, logger, registerer or backplane means the default, as the
// Option doc says, for every option that takes one.
func TestNilOptionsMeanDefaults(t *testing.T) {
	srv, err := hub.New(
		hub.WithAuthenticator(nil),
		hub.WithGroupAuthorizer(nil),
		hub.WithLogger(nil),
		hub.WithRegisterer(nil),
		hub.WithBackplane(nil),
		hub.WithOnConnected(nil),
		hub.WithOnDisconnected(nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	resp, err := ts.Client().Post(ts.URL+srv.Path()+"/negotiate?negotiateVersion=1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("negotiate: %s", resp.Status)
	}
	if err := srv.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
}
