package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// try is one REST request that may fail (the server may be gone): the
// status, or 0 and the error.
func (s *server) try(tok, method, path string, body any, out any) (int, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, s.url(path), bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

// writes counts a burst's writes as they go: confirmed by the server, or
// failed (refused or unanswered).
type writes struct{ confirmed, failed atomic.Int64 }

// burst writes through s from writers goroutines until stop is closed:
// each creates a lead and moves it to Enriching, again and again. It
// returns the counts (read them any time) and a wait for the writers.
func burst(s *server, tok string, writers int, stop <-chan struct{}) (n *writes, wait func()) {
	n = new(writes)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var v view
				code, err := s.try(tok, "POST", "/api/leads", map[string]any{"name": fmt.Sprintf("w%d-%d", w, i), "owner": "alice"}, &v)
				if err != nil || code != http.StatusCreated {
					n.failed.Add(1)
					time.Sleep(20 * time.Millisecond) // the server or its database is away
					continue
				}
				n.confirmed.Add(1)
				if code, err := s.try(tok, "PATCH", fmt.Sprintf("/api/leads/%d", v.ID), map[string]any{"status": "Enriching"}, nil); err == nil && code == 200 {
					n.confirmed.Add(1)
				} else {
					n.failed.Add(1)
				}
			}
		})
	}
	return n, wg.Wait
}

// openDBArgs opens the database that the server flags dbArgs select, for
// the test's own queries.
func openDBArgs(t *testing.T, dbArgs []string) *gorm.DB {
	t.Helper()
	var d gorm.Dialector
	if dbArgs[1] != "" {
		d = postgres.Open(dbArgs[1])
	} else {
		d = sqlite.Open(dbArgs[3] + "?_pragma=busy_timeout(5000)")
	}
	return openGorm(t, d)
}

// TestKillMidBurstLosesNothing: writes stream in through the API while a
// real @microsoft/signalr client listens; the server is killed (SIGKILL)
// in the middle, between commits and their delivery, and started again on
// the same database and address. The client reconnects by itself and
// catches up (CatchUp from the last position it saw), as the dashboard
// does: after de-duplication by position it holds exactly the log, every
// event once and in order, and the log holds exactly what committed — a
// NEW_LEAD for every stored lead and none for a lead whose transaction the
// kill cut short.
func TestKillMidBurstLosesNothing(t *testing.T) {
	databases(t, func(t *testing.T, dbArgs []string) {
		s := startServer(t, "127.0.0.1:0", dbArgs...)
		admin := issue(t, "ann", "admin")
		c := listen(t, s, admin, "json")

		stop := make(chan struct{})
		n, wait := burst(s, admin, 4, stop)
		// Kill once writes are under way and the client has some of them.
		waitUntil(t, 60*time.Second, "writes confirmed", func() bool { return n.confirmed.Load() >= 60 })
		s.cmd.Process.Kill()
		<-s.exited
		close(stop)
		wait()
		t.Logf("killed after %d confirmed writes", n.confirmed.Load())

		s2 := startServer(t, s.addr, dbArgs...)
		c.next(t, 60*time.Second, func(e event) bool { return e.State == "reconnected" })
		before := c.positions(t)
		var lastSeen uint64
		for _, l := range before {
			lastSeen = max(lastSeen, l.Position)
		}
		c.send(t, map[string]any{"catchup": lastSeen})
		ev := c.next(t, 60*time.Second, func(e event) bool { return e.CaughtUp != nil || e.CatchUpErr != "" })
		if ev.CatchUpErr != "" || ev.CaughtUp.Reload {
			t.Fatalf("CatchUp(%d): %q %+v", lastSeen, ev.CatchUpErr, ev.CaughtUp)
		}
		// A write after the restart: live delivery goes on.
		after := s2.create(t, admin, map[string]any{"name": "After"})
		db := openDBArgs(t, dbArgs)
		var got []logged
		waitUntil(t, 60*time.Second, "the client has the write after the restart", func() bool {
			got = c.positions(t)
			for _, l := range got {
				if l.Type == "NEW_LEAD" && l.LeadID == after.ID {
					return true
				}
			}
			return false
		})
		log := waitStamped(t, db)
		checkAgainstLog(t, "client", got, log)
		checkLeadsMatchLog(t, db, log)
		if int64(len(log)) < n.confirmed.Load() {
			t.Errorf("%d events logged, %d writes confirmed", len(log), n.confirmed.Load())
		}
		t.Logf("%d events logged; the client had %d before the restart, the catch-up from %d answered %d",
			len(log), len(dedupe(before)), lastSeen, ev.CaughtUp.Position)
	})
}

// waitUntil polls ok until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// positions returns every lead update the Node client printed so far,
// without consuming any line.
func (c *client) positions(t *testing.T) []logged {
	t.Helper()
	c.out.mu.Lock()
	all := append([]string(nil), c.out.all...)
	c.out.mu.Unlock()
	var out []logged
	for _, line := range all {
		if !strings.Contains(line, `"ReceiveLeadUpdate"`) {
			continue
		}
		var e struct{ M logged }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("client line %q: %v", line, err)
		}
		out = append(out, e.M)
	}
	return out
}

// TestPostgresRestartDuringBurst: writes stream in while a client listens;
// the server's PostgreSQL (a private one the test starts) is stopped and
// started again in the middle. The writes refused meanwhile are retried by
// the writers; afterwards the client, which stayed connected, holds
// exactly the log after de-duplication by position, and the log holds
// exactly what committed.
func TestPostgresRestartDuringBurst(t *testing.T) {
	pg := startPrivatePG(t)
	s := startServer(t, "127.0.0.1:0", "-db", pg.url())
	admin := issue(t, "ann", "admin")
	c := connectHub(t, s, admin)

	stop := make(chan struct{})
	n, wait := burst(s, admin, 4, stop)
	waitUntil(t, 60*time.Second, "writes confirmed", func() bool { return n.confirmed.Load() >= 40 })
	pg.stop()
	failedAt := n.failed.Load()
	waitUntil(t, 60*time.Second, "writes refused while the database is down", func() bool { return n.failed.Load() >= failedAt+8 })
	waitUntil(t, 30*time.Second, "/readyz answering 503", func() bool { return s.readyz() == http.StatusServiceUnavailable })
	pg.start()
	waitUntil(t, 60*time.Second, "/readyz answering 200 again", func() bool { return s.readyz() == http.StatusOK })
	resumedAt := n.confirmed.Load()
	waitUntil(t, 90*time.Second, "writes confirmed after the restart", func() bool { return n.confirmed.Load() >= resumedAt+40 })
	close(stop)
	wait()

	db := openTestDB(t, pg.url())
	log := waitStamped(t, db)
	c.waitPosition(60*time.Second, log[len(log)-1].Position)
	got := c.received()
	checkAgainstLog(t, "client", got, log)
	checkLeadsMatchLog(t, db, log)
	if int64(len(log)) < n.confirmed.Load() {
		t.Errorf("%d events logged, %d writes confirmed", len(log), n.confirmed.Load())
	}
	t.Logf("%d events logged, %d writes confirmed, %d refused or unanswered; %d received, %d distinct",
		len(log), n.confirmed.Load(), n.failed.Load(), len(got), len(dedupe(got)))
}

// readyz returns the status of GET /readyz (0 when unanswered).
func (s *server) readyz() int {
	resp, err := http.Get(s.url("/readyz"))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
