package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// syncBuffer is a bytes.Buffer that run can write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServerServesHubWithTokens(t *testing.T) {
	t.Setenv("LEADUPDATES_JWT_SECRET", strings.Repeat("s", 32))
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-demo", "20ms"}, &out, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var token string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "demo token (admin, 24h): "); ok {
			token = rest
		}
	}
	if token == "" {
		t.Fatalf("no demo token printed:\n%s", out.String())
	}
	base := "http://" + addr + "/leadupdates"

	if code := negotiate(t, base, ""); code != http.StatusUnauthorized {
		t.Errorf("negotiate without a token: got %d, want 401", code)
	}
	if code := negotiate(t, base, "not-a-jwt"); code != http.StatusUnauthorized {
		t.Errorf("negotiate with a bad token: got %d, want 401", code)
	}

	var minted bytes.Buffer
	if err := run(t.Context(), []string{"token", "-sub", "alice", "-role", "sales"}, &minted, nil); err != nil {
		t.Fatal(err)
	}
	got := receiveOneUpdate(t, "ws://"+addr+"/leadupdates?access_token="+strings.TrimSpace(minted.String()))
	if got["type"] != "STATUS_UPDATE" || got["leadId"] == nil {
		t.Errorf("demo update: %v", got)
	}
}

func TestTokenNeedsTheSecret(t *testing.T) {
	t.Setenv("LEADUPDATES_JWT_SECRET", "")
	if err := run(t.Context(), []string{"token"}, io.Discard, nil); err == nil {
		t.Error("token without a secret: want an error")
	}
	if err := run(t.Context(), []string{"token", "-jwt-secret", "short"}, io.Discard, nil); err == nil {
		t.Error("token with a short secret: want an error")
	}
	if err := run(t.Context(), []string{"token", "-jwt-secret", strings.Repeat("k", 32), "-role", "root"}, io.Discard, nil); err == nil {
		t.Error("token with an unknown role: want an error")
	}
}

func negotiate(t *testing.T, base, token string) int {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/negotiate?negotiateVersion=1", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// receiveOneUpdate connects without negotiating (skipNegotiation) and returns
// the first ReceiveLeadUpdate argument.
func receiveOneUpdate(t *testing.T, url string) map[string]any {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("{\"protocol\":\"json\",\"version\":1}\x1e")); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Split(func(b []byte, atEOF bool) (int, []byte, error) {
			if i := bytes.IndexByte(b, 0x1e); i >= 0 {
				return i + 1, b[:i], nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			var m struct {
				Type      int              `json:"type"`
				Target    string           `json:"target"`
				Arguments []map[string]any `json:"arguments"`
			}
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Type == 1 && m.Target == "ReceiveLeadUpdate" && len(m.Arguments) == 1 {
				return m.Arguments[0]
			}
		}
	}
}
