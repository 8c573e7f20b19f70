package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"
)

// redisURL is the Redis the backplane tests use; TEST_REDIS_URL overrides it.
func redisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// TestTwoInstancesOneHub: two server processes on one database and one
// Redis act as one hub — a client on either instance receives, in order
// and once, what is written through the other, with per-owner visibility.
func TestTwoInstancesOneHub(t *testing.T) {
	b := make([]byte, 6)
	rand.Read(b)
	shared := []string{"-db", testdb.PostgresURL(t), "-redis", redisURL(), "-redis-channel", "e2e-" + hex.EncodeToString(b)}
	a := startServer(t, "127.0.0.1:0", shared...)
	bsrv := startServer(t, "127.0.0.1:0", shared...)
	for _, s := range []*server{a, bsrv} {
		resp, err := http.Get(s.url("/readyz"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/readyz of %s: %d", s.addr, resp.StatusCode)
		}
	}
	admin := issue(t, "ann", "admin")
	onA := listen(t, a, admin, "json")
	onB := listen(t, bsrv, admin, "messagepack")
	aliceOnB := listen(t, bsrv, issue(t, "alice", "sales"), "json")

	// Written through A: B's clients hear of it, alice only of hers.
	bobs := a.create(t, admin, map[string]any{"name": "Bob's", "owner": "bob"})
	alices := a.create(t, admin, map[string]any{"name": "Alice's", "owner": "alice"})
	// Then a run of changes through B to a lead created on A: A's client
	// sees them in order.
	steps := []string{"Enriching", "Failed", "New", "Enriching", "Enriched"}
	for _, st := range steps {
		if code := bsrv.call(t, admin, "PATCH", fmt.Sprintf("/api/leads/%d", alices.ID), map[string]any{"status": st}, nil); code != 200 {
			t.Fatalf("PATCH %s through B: %d", st, code)
		}
	}
	for name, c := range map[string]*client{"A": onA, "B": onB} {
		for _, id := range []int64{bobs.ID, alices.ID} {
			if m := c.nextLead(t); m.Type != "NEW_LEAD" || m.LeadID != id {
				t.Errorf("admin on %s: %+v, want NEW_LEAD of %d", name, m, id)
			}
		}
		prev := "New"
		for _, st := range steps {
			if m := c.nextLead(t); m.Type != "STATUS_UPDATE" || m.LeadID != alices.ID || m.PreviousStatus != prev || m.NewStatus != st {
				t.Errorf("admin on %s: %+v, want STATUS_UPDATE %s → %s", name, m, prev, st)
			}
			prev = st
		}
	}
	if m := aliceOnB.nextLead(t); m.LeadID != alices.ID || m.Type != "NEW_LEAD" {
		t.Errorf("alice on B: first event %+v, want NEW_LEAD of her lead %d only", m, alices.ID)
	}
	if m := aliceOnB.nextLead(t); m.LeadID != alices.ID || m.NewStatus != "Enriching" {
		t.Errorf("alice on B: second event %+v, want her lead's STATUS_UPDATE", m)
	}
}

// TestClientMovesToAnotherInstance: behind a balancer, stopping an instance
// tells its clients to reconnect; they land on another instance and keep
// receiving what is written anywhere.
func TestClientMovesToAnotherInstance(t *testing.T) {
	b := make([]byte, 6)
	rand.Read(b)
	shared := []string{"-db", testdb.PostgresURL(t), "-redis", redisURL(), "-redis-channel", "e2e-" + hex.EncodeToString(b)}
	a := startServer(t, "127.0.0.1:0", shared...)
	bsrv := startServer(t, "127.0.0.1:0", shared...)

	// The balancer sends everything to its current backend; its health
	// check (here: the test) moves it once A is gone.
	front, moveTo := balancer(t, a)

	admin := issue(t, "ann", "admin")
	c := listen(t, front, admin, "json")
	first := a.create(t, admin, map[string]any{"name": "Before"})
	if m := c.nextLead(t); m.LeadID != first.ID {
		t.Fatalf("through the balancer: %+v, want lead %d", m, first.ID)
	}
	a.stop()
	c.next(t, 30*time.Second, func(e event) bool { return e.State == "reconnecting" })
	moveTo(bsrv)
	c.next(t, 60*time.Second, func(e event) bool { return e.State == "reconnected" })
	after := bsrv.create(t, admin, map[string]any{"name": "After"})
	if m := c.nextLead(t); m.LeadID != after.ID || m.Type != "NEW_LEAD" {
		t.Errorf("after moving to B: %+v, want NEW_LEAD of %d", m, after.ID)
	}
}
