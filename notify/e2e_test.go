package notify_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify"
)

// TestNotifierThroughTheHub sends every operation through the real hub to
// the real @microsoft/signalr client: alice is an admin and sees every
// lead's events; bob is a salesperson and sees only lead 2, his own.
func TestNotifierThroughTheHub(t *testing.T) {
	clientDir, err := filepath.Abs("../hub/testdata/client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(clientDir, "node_modules", "@microsoft", "signalr")); err != nil {
		t.Fatalf("the SignalR client is not installed: run `make deps`: %v", err)
	}
	roles := map[string][]string{"alice": {"admin"}, "bob": {"sales"}}
	srv, ts := startHub(t, hub.WithAuthenticator(hub.AuthenticatorFunc(func(r *http.Request) (*hub.Principal, error) {
		tok := hub.BearerToken(r)
		if rs, ok := roles[tok]; ok {
			return &hub.Principal{ID: tok, Roles: rs}, nil
		}
		return nil, errors.New("unknown token")
	})), hub.WithFilter(notify.FilterName, func(owner string, p *hub.Principal) bool {
		return p.HasRole("admin") || owner == p.ID
	}))
	owner := map[int64]string{1: "alice", 2: "bob"}
	n := newNotifier(t, srv, notify.WithAudience(func(ev *notify.LeadUpdateMessage) string { return owner[ev.LeadID] }))

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "testdata/client.mjs")
	cmd.Env = append(os.Environ(), "HUB_URL="+ts.URL, "SIGNALR_CLIENT="+filepath.Join(clientDir, "node_modules", "@microsoft", "signalr"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || sc.Text() != `{"ready":true}` {
		t.Fatalf("client did not get ready: %q %v", sc.Text(), cmd.Wait())
	}

	l := crmLead{ID: 2, Name: "Grace", Owner: "bob"}
	for _, id := range []int64{1, 2} {
		l.ID = id
		must(t, n.NotifyNewLead(ctx, id, l, "LinkedIn"))
		must(t, n.NotifyLeadStatusUpdate(ctx, id, "New", "Enriching"))
		must(t, n.NotifyLeadEnrichment(ctx, id, l))
		must(t, n.NotifyLeadScoreUpdate(ctx, id, 0, 91))
		must(t, n.NotifyWorkflowStarted(ctx, id, "LeadProcessing"))
		must(t, n.NotifyWorkflowCompleted(ctx, id, "LeadProcessing"))
		must(t, n.NotifyWorkflowFailed(ctx, id, "CrmSync", "CRM unreachable"))
		must(t, n.NotifyLeadDeleted(ctx, id))
	}
	must(t, n.NotifyMetricsUpdate(ctx, notify.Metrics{TotalLeads: 2, LeadsBySource: map[string]int64{"LinkedIn": 2}}))

	type received struct {
		Method string         `json:"method"`
		M      map[string]any `json:"m"`
	}
	got := map[string][]received{}
	for sc.Scan() {
		var line struct {
			Client string     `json:"client"`
			Got    []received `json:"got"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("client output %q: %v", sc.Text(), err)
		}
		got[line.Client] = line.Got
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}

	types := []string{notify.TypeNewLead, notify.TypeStatusUpdate, notify.TypeEnrichmentUpdate, notify.TypeScoreUpdate,
		notify.TypeWorkflowStarted, notify.TypeWorkflowCompleted, notify.TypeWorkflowFailed, notify.TypeLeadDeleted}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, tt := range []struct {
		client string
		leads  []int64
	}{
		{"alice", []int64{1, 2}},
		{"bob", []int64{2}},
	} {
		t.Run(tt.client, func(t *testing.T) {
			msgs := got[tt.client]
			if want := len(tt.leads)*len(types) + 1; len(msgs) != want {
				t.Fatalf("received %d messages, want %d: %v", len(msgs), want, msgs)
			}
			i, last := 0, 0.0
			for _, id := range tt.leads {
				for _, typ := range types {
					r := msgs[i]
					i++
					if r.Method != notify.MethodLeadUpdate || r.M["type"] != typ || r.M["leadId"] != float64(id) {
						t.Errorf("message %d: %s %v, want %s of lead %d", i, r.Method, r.M, typ, id)
					}
					if ts, _ := r.M["timestamp"].(string); !stamp.MatchString(ts) {
						t.Errorf("timestamp %q", r.M["timestamp"])
					}
					seq, _ := r.M["sequence"].(float64)
					if seq <= last {
						t.Errorf("sequence %v after %v", seq, last)
					}
					last = seq
				}
			}
			m := msgs[i]
			metrics, _ := m.M["metrics"].(map[string]any)
			if m.Method != notify.MethodMetricsUpdate || m.M["type"] != notify.TypeMetricsUpdate || metrics["totalLeads"] != float64(2) {
				t.Errorf("metrics message %v", m)
			}
		})
	}
}

// startHub serves a hub on a test server until the test ends.
func startHub(t *testing.T, opts ...hub.Option) (*hub.Server, *httptest.Server) {
	t.Helper()
	srv, err := hub.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Mount(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return srv, ts
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
