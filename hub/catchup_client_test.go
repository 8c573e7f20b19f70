package hub_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
)

// TestCatchUpClient drives the real @microsoft/signalr client, JSON and
// MessagePack, through CatchUp: see testdata/client/catchup.mjs for the
// cases. Each case is a subtest.
func TestCatchUpClient(t *testing.T) {
	main := startCatchUpFixture(t)
	small := startCatchUpFixture(t, hub.WithSendQueue(4))
	runClient(t, "catchup.mjs", 3*time.Minute, 16, "HUB_URL="+main, "SMALL_URL="+small)
}

// startCatchUpFixture starts a hub with a memLog and control endpoints
// and returns its URL.
func startCatchUpFixture(t *testing.T, opts ...hub.Option) string {
	e, l := catchUpEnv(t, opts...)
	l.args = func(en hub.Entry) []any {
		return []any{map[string]any{"position": en.Position, "owner": en.Arg}}
	}
	mux := http.NewServeMux()
	e.s.Mount(mux)
	// POST /ctl/publish?n=N[&owner=user]: N entries, ReceiveLeadUpdate
	// {position, owner}, for everyone or for owner only; answers the last
	// position. GET /ctl/head. POST /ctl/prune?upto=P.
	mux.HandleFunc("POST /ctl/publish", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		owner := r.URL.Query().Get("owner")
		var last uint64
		for range n {
			en := hub.Entry{Groups: []string{hub.DefaultGroup}, Target: "ReceiveLeadUpdate"}
			if owner != "" {
				en.Filter, en.Arg = "owner", owner
			}
			en = l.add(en)
			e.s.Publish(en)
			last = en.Position
		}
		fmt.Fprint(w, last)
	})
	mux.HandleFunc("GET /ctl/head", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		fmt.Fprint(w, len(l.entries))
	})
	mux.HandleFunc("POST /ctl/prune", func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.ParseUint(r.URL.Query().Get("upto"), 10, 64)
		l.prune(p)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}
