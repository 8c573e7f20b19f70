package hub_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"

	"github.com/go-kit/log"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/pgsession"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestHandoffClient drives the real @microsoft/signalr client with
// withStatefulReconnect(), JSON and MessagePack, through a TCP proxy in
// front of two instances that share a PostgreSQL session store and a log:
// the test moves the proxy from one instance to the other and cuts the
// client's connection, as a load balancer without sticky sessions would
// after a network failure. See testdata/client/handoff.mjs for the cases.
func TestHandoffClient(t *testing.T) {
	st, db, table := sessionStore(t)
	l := &memLog{args: func(e hub.Entry) []any {
		return []any{map[string]any{"position": e.Position, "group": e.Groups[0]}}
	}}
	f := &handoffFixture{t: t, log: l, db: db, table: table, discs: map[string]int{}}
	for i := range 2 {
		name := strconv.Itoa(i + 1)
		opts := []hub.Option{
			hub.WithAuthenticator(staticTokens), hub.WithLog(l), hub.WithSessionStore(st),
			// A short window, so that the first instance's copy expires
			// while the test runs.
			hub.WithStatefulReconnect(2*time.Second, 100_000),
			hub.WithOnDisconnected(func(_ context.Context, ci hub.ConnInfo) {
				f.mu.Lock()
				f.discs[name+"/"+ci.ConnectionID]++
				f.mu.Unlock()
			}),
		}
		if os.Getenv("HUB_DEBUG") != "" {
			opts = append(opts, hub.WithLogger(log.With(log.NewLogfmtLogger(os.Stderr), "instance", name)))
		}
		h, err := hub.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		f.hubs = append(f.hubs, h)
		f.addrs = append(f.addrs, serveHub(t, h))
	}
	f.proxy = newCutProxy(t, f.addrs[0])
	t.Cleanup(f.proxy.close)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /ctl/publish", f.publish)
	mux.HandleFunc("POST /ctl/switch", f.switchTo)
	mux.HandleFunc("GET /ctl/where", f.where)
	mux.HandleFunc("GET /ctl/owner", f.owner)
	mux.HandleFunc("GET /ctl/disconnects", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		f.mu.Lock()
		defer f.mu.Unlock()
		fmt.Fprintf(w, "%d,%d", f.discs["1/"+id], f.discs["2/"+id])
	})
	ctl := serveHandler(t, mux)
	runClient(t, "handoff.mjs", 3*time.Minute, 8, "HUB_URL=http://"+f.proxy.addr(), "CTL_URL=http://"+ctl)
}

// sessionStore returns a pgsession.Store on a table of its own.
func sessionStore(t *testing.T) (*pgsession.Store, *sql.DB, string) {
	t.Helper()
	dsn := testdb.DSN()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		t.Fatalf("the hand-off tests need PostgreSQL at %s (start it with `make testenv` or set TEST_DATABASE_URL): %v", dsn, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	table := "hub_sessions_" + hex.EncodeToString(b[:])
	st, err := pgsession.New(ctx, db, pgsession.WithTable(table))
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP TABLE IF EXISTS " + table)
		db.Close()
	})
	return st, db, table
}

// serveHub serves h on a listener of its own until the test ends; the
// Server is closed before its HTTP server.
func serveHub(t *testing.T, h *hub.Server) string {
	mux := http.NewServeMux()
	h.Mount(mux)
	addr := serveHandler(t, mux)
	t.Cleanup(func() { _ = h.Close() })
	return addr
}

func serveHandler(t *testing.T, hd http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hd}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return ln.Addr().String()
}

// handoffFixture is two instances behind one cutProxy, with control
// endpoints reached directly.
type handoffFixture struct {
	t     *testing.T
	hubs  []*hub.Server
	addrs []string
	proxy *cutProxy
	log   *memLog
	db    *sql.DB
	table string

	mu    sync.Mutex
	discs map[string]int // "instance/connection id": OnDisconnected runs
}

// publish: ?n=count[&lead=id]: n entries for everyone (or Lead_id's
// group), appended to the log and published on both instances, as each
// instance's relay would; answers the last position.
func (f *handoffFixture) publish(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	group := hub.DefaultGroup
	if lead, _ := strconv.ParseInt(r.URL.Query().Get("lead"), 10, 64); lead > 0 {
		group = hub.LeadGroup(lead)
	}
	var last uint64
	for range max(n, 1) {
		e := f.log.add(hub.Entry{Groups: []string{group}, Target: "ReceiveLeadUpdate"})
		for _, h := range f.hubs {
			h.Publish(e)
		}
		last = e.Position
	}
	fmt.Fprint(w, last)
}

// switchTo: ?to=1|2&hold=ms: the proxy's next connections go to that
// instance; every current one is cut, and new ones are held for hold ms.
func (f *handoffFixture) switchTo(w http.ResponseWriter, r *http.Request) {
	to, _ := strconv.Atoi(r.URL.Query().Get("to"))
	hold, _ := strconv.Atoi(r.URL.Query().Get("hold"))
	if to < 1 || to > len(f.addrs) {
		http.Error(w, "bad instance", http.StatusBadRequest)
		return
	}
	f.proxy.retarget(f.addrs[to-1])
	f.proxy.cut(time.Duration(hold) * time.Millisecond)
	w.WriteHeader(http.StatusNoContent)
}

// where: ?id=connection id: "1,0": on which instance the connection is
// live (1) or detached (d), or not (0).
func (f *handoffFixture) where(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	for i, h := range f.hubs {
		if i > 0 {
			fmt.Fprint(w, ",")
		}
		switch {
		case h.Detached(id):
			fmt.Fprint(w, "d")
		case h.InGroup(hub.DefaultGroup, id):
			fmt.Fprint(w, "1")
		default:
			fmt.Fprint(w, "0")
		}
	}
}

// owner: ?id=connection id: which instance owns its session in the store
// ("1", "2"), or "none".
func (f *handoffFixture) owner(w http.ResponseWriter, r *http.Request) {
	var owner string
	err := f.db.QueryRowContext(r.Context(), "SELECT owner FROM "+f.table+" WHERE connection_id = $1", r.URL.Query().Get("id")).Scan(&owner)
	switch {
	case err == sql.ErrNoRows:
		fmt.Fprint(w, "none")
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for i, h := range f.hubs {
		if h.InstanceID() == owner {
			fmt.Fprint(w, i+1)
			return
		}
	}
	fmt.Fprint(w, "unknown:"+owner)
}
