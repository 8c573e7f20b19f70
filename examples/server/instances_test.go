package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

// TestInstancesShareTheLogWithoutRedis: three instances on one PostgreSQL,
// without Redis, act as one hub for lead events. Writes through all three
// at once reach a client on each in one order — the same positions, each
// once, ascending — which is the log's. A client offline for 10,000
// events resumes on another instance with all of them (CatchUp), and one
// whose position was pruned gets the reload message instead.
func TestInstancesShareTheLogWithoutRedis(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	shared := []string{"-db", dbURL}
	var srvs []*server
	for range 3 {
		srvs = append(srvs, startServer(t, "127.0.0.1:0", shared...))
	}
	admin := issue(t, "ann", "admin")
	var clients []*hubClient
	for _, s := range srvs {
		clients = append(clients, connectHub(t, s, admin))
	}
	// One real @microsoft/signalr client too, on the second instance.
	node := listen(t, srvs[1], admin, "messagepack")

	// Writes through every instance at once: creates and status changes.
	var wg sync.WaitGroup
	for i, s := range srvs {
		wg.Go(func() {
			for j := range 30 {
				v := s.create(t, admin, map[string]any{"name": fmt.Sprintf("i%d-%d", i, j), "owner": "bob"})
				if code := s.call(t, admin, "PATCH", fmt.Sprintf("/api/leads/%d", v.ID), map[string]any{"status": "Enriching"}, nil); code != http.StatusOK {
					t.Errorf("PATCH through instance %d: %d", i, code)
				}
			}
		})
	}
	wg.Wait()
	db := openTestDB(t, dbURL)
	log := waitStamped(t, db)
	if len(log) != 180 {
		t.Fatalf("%d events logged, want 180", len(log))
	}
	head := log[len(log)-1].Position
	for i, c := range clients {
		c.waitPosition(60*time.Second, head)
		got := c.received()
		checkAgainstLog(t, fmt.Sprintf("client on instance %d", i), got, log)
		checkAscending(t, fmt.Sprintf("client on instance %d", i), got)
	}
	waitUntil(t, 60*time.Second, "the Node client has every event", func() bool { return len(node.positions(t)) >= len(log) })
	checkAgainstLog(t, "Node client", node.positions(t), log)
	checkAscending(t, "Node client", node.positions(t))

	// Offline for 10,000 events: a client that left at head resumes on
	// another instance with all of them, in order, once.
	rows := make([]map[string]any, 500)
	for i := range rows {
		rows[i] = map[string]any{"name": fmt.Sprintf("bulk-%d", i)}
	}
	for i := range 20 {
		if code := srvs[i%3].call(t, admin, "POST", "/api/leads/import", rows, nil); code != http.StatusCreated {
			t.Fatalf("import %d: %d", i, code)
		}
	}
	log = waitStamped(t, db)
	if len(log) != 180+10000 {
		t.Fatalf("%d events logged, want %d", len(log), 180+10000)
	}
	// Once instance 2's relay has passed the bulk: a client connecting
	// earlier also receives its tail live, before the replay (the client
	// pattern holds such messages; this check wants the replay's order).
	clients[2].waitPosition(60*time.Second, log[len(log)-1].Position)
	resumed := connectHub(t, srvs[2], admin)
	start := time.Now()
	r := resumed.catchUp(head)
	elapsed := time.Since(start)
	if r.Reload || r.Position < log[len(log)-1].Position {
		t.Fatalf("CatchUp(%d): %+v, want position %d", head, r, log[len(log)-1].Position)
	}
	got := resumed.received()
	checkAgainstLog(t, "resumed client", got, log[180:])
	checkAscending(t, "resumed client", got)
	t.Logf("10,000 events caught up in %v (%.0f events/s, race detector on)", elapsed.Round(time.Millisecond), 10000/elapsed.Seconds())

	// Beyond retention: an instance that keeps events for a moment prunes
	// the shared log; a client resuming from a pruned position is told to
	// reload.
	startServer(t, "127.0.0.1:0", append(shared, "-event-retention", "1ms", "-event-prune-interval", "100ms")...)
	waitUntil(t, 60*time.Second, "the log pruned past the client's position", func() bool {
		var floor uint64
		db.Raw(`SELECT floor FROM lead_events_meta`).Scan(&floor)
		return floor > head
	})
	late := connectHub(t, srvs[0], admin)
	if r := late.catchUp(head); !r.Reload {
		t.Errorf("CatchUp(%d) below the floor: %+v, want reload", head, r)
	}
	late.waitFor(10*time.Second, "ReceiveReload", func() bool { return late.reloads == 1 })
}

// checkAscending fails unless positions arrived strictly ascending: each
// once, in order.
func checkAscending(t *testing.T, name string, got []logged) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Errorf("%s: position %d arrived after %d", name, got[i].Position, got[i-1].Position)
			return
		}
	}
}

// TestEventLogOff: with -event-log=false events are delivered from memory
// as before, with the producer's sequence; the hub has no catch-up and the
// API no history.
func TestEventLogOff(t *testing.T) {
	databases(t, func(t *testing.T, dbArgs []string) {
		s := startServer(t, "127.0.0.1:0", append(dbArgs, "-event-log=false")...)
		admin := issue(t, "ann", "admin")
		c := connectHub(t, s, admin)
		l := s.create(t, admin, map[string]any{"name": "Memory"})
		c.waitFor(30*time.Second, "NEW_LEAD", func() bool { return len(c.got) == 1 })
		if got := c.received()[0]; got.Type != "NEW_LEAD" || got.LeadID != l.ID {
			t.Errorf("event %+v, want NEW_LEAD of %d", got, l.ID)
		}
		if err := c.conn.Write(t.Context(), websocket.MessageText, signalrtest.JSONInvocation("x", "CatchUp", 0)); err != nil {
			t.Fatal(err)
		}
		c.waitFor(30*time.Second, "CatchUp's answer", func() bool { _, ok := c.answers["x"]; return ok })
		if r := c.answers["x"]; !strings.Contains(r.err, "not enabled") {
			t.Errorf("CatchUp without the log: %+v, want an error saying it is not enabled", r)
		}
		if code := s.call(t, admin, "GET", fmt.Sprintf("/api/leads/%d/history", l.ID), nil, nil); code != http.StatusServiceUnavailable {
			t.Errorf("history without the log: %d, want 503", code)
		}
		db := openDBArgs(t, dbArgs)
		if db.Migrator().HasTable("lead_events") {
			t.Error("the log's table was created with -event-log=false")
		}
	})
}

// TestStatefulClientResumesOnAnotherInstance: behind a balancer without
// sticky sessions, a real client with stateful reconnect is on instance A
// while writes stream in through A; A is killed (SIGKILL) and the balancer
// sends the client's re-attach to B, which never held the connection. B
// resumes it from the shared session store — same connection id, no
// reconnect seen by the application — and replays from the log what A had
// not delivered: after de-duplication by position the client holds exactly
// the log, including what is written through B afterwards.
func TestStatefulClientResumesOnAnotherInstance(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	a := startServer(t, "127.0.0.1:0", "-db", dbURL)
	bsrv := startServer(t, "127.0.0.1:0", "-db", dbURL)
	front, moveTo := balancer(t, a)
	admin := issue(t, "ann", "admin")
	c := listenWith(t, front, admin, "json", "STATEFUL=1")
	idLine := c.next(t, 30*time.Second, func(e event) bool { return e.ConnectionID != "" })

	stop := make(chan struct{})
	n, wait := burst(a, admin, 2, stop)
	waitUntil(t, 60*time.Second, "writes confirmed", func() bool { return n.confirmed.Load() >= 30 })
	db := openTestDB(t, dbURL)
	waitUntil(t, 30*time.Second, "A saved the connection's session", func() bool {
		var k int64
		db.Raw(`SELECT count(*) FROM hub_sessions WHERE connection_id = ?`, idLine.ConnectionID).Scan(&k)
		return k == 1
	})
	moveTo(bsrv)
	a.cmd.Process.Kill()
	<-a.exited
	close(stop)
	wait()

	after := bsrv.create(t, admin, map[string]any{"name": "After"})
	var got []logged
	waitUntil(t, 60*time.Second, "the client has the write through B", func() bool {
		got = c.positions(t)
		return slices.ContainsFunc(got, func(l logged) bool { return l.Type == "NEW_LEAD" && l.LeadID == after.ID })
	})
	log := waitStamped(t, db)
	checkAgainstLog(t, "stateful client", got, log)
	for _, line := range c.out.rest() {
		var e event
		if json.Unmarshal([]byte(line), &e) == nil && (e.State == "reconnecting" || e.State == "reconnected" || e.State == "closed") {
			t.Errorf("the application saw %q: the connection was not resumed", line)
		}
	}
	t.Logf("connection %s resumed on B; %d events logged, %d received (%d distinct)", idLine.ConnectionID, len(log), len(got), len(dedupe(got)))
}
