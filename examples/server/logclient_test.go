package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// hubClient is a Go SignalR client (JSON over WebSockets, internal/signalrtest)
// for the event log's tests: it records every lead update with its
// position (sequence) and the answers of CatchUp. It is lighter than the
// Node client, for tests that need many events or several instances.
type hubClient struct {
	t    *testing.T
	conn *signalrtest.Conn

	mu      sync.Mutex
	cond    *sync.Cond
	got     []logged              // ReceiveLeadUpdate, in arrival order
	reloads int                   // ReceiveReload messages
	answers map[string]catchUpRes // CatchUp completions by invocation id
	err     error                 // the reader's end
	calls   int
}

// logged is one lead update as a client received it.
type logged struct {
	Position uint64 `json:"sequence"`
	Type     string `json:"type"`
	LeadID   int64  `json:"leadId"`
}

type catchUpRes struct {
	Position uint64 `json:"position"`
	Reload   bool   `json:"reload"`
	err      string
}

// connectHub connects to s's hub with tok and reads in the background
// until the test ends; it pings so that the hub keeps the connection.
func connectHub(t *testing.T, s *server, tok string) *hubClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := (&signalrtest.Client{URL: s.url("/leadupdates"), AccessToken: tok}).Connect(ctx, signalrtest.JSON)
	if err != nil {
		t.Fatalf("connect to %s: %v", s.addr, err)
	}
	c := &hubClient{t: t, conn: conn, answers: map[string]catchUpRes{}}
	c.cond = sync.NewCond(&c.mu)
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.read(rctx)
	}()
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
				conn.Ping(rctx)
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		conn.Close()
		<-done
	})
	return c
}

func (c *hubClient) read(ctx context.Context) {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.cond.Broadcast()
	}()
	for {
		var rec signalrtest.Record
		if rec, err = c.conn.ReadRecord(ctx); err != nil {
			return
		}
		var m signalrtest.Message
		if m, err = signalrtest.DecodeJSON(rec.Data); err != nil {
			return
		}
		c.mu.Lock()
		switch {
		case m.Type == 1 && m.Target == "ReceiveLeadUpdate" && len(m.Arguments) == 1:
			var l logged
			if err = json.Unmarshal(m.Arguments[0], &l); err != nil {
				c.mu.Unlock()
				return
			}
			c.got = append(c.got, l)
		case m.Type == 1 && m.Target == "ReceiveReload":
			c.reloads++
		case m.Type == 3:
			var r catchUpRes
			if m.Error != nil {
				r.err = *m.Error
			} else if err = json.Unmarshal(m.Result, &r); err != nil {
				c.mu.Unlock()
				return
			}
			c.answers[m.InvocationID] = r
		case m.Type == 7:
			err = fmt.Errorf("closed by the hub: %s", m.Raw)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.cond.Broadcast()
	}
}

// waitFor waits until ok (called under the lock) holds; it fails the test
// after d or when the connection ends first.
func (c *hubClient) waitFor(d time.Duration, what string, ok func() bool) {
	c.t.Helper()
	timer := time.AfterFunc(d, c.cond.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	for !ok() {
		if c.err != nil {
			c.t.Fatalf("%s: the connection ended: %v (%d updates received)", what, c.err, len(c.got))
		}
		if !time.Now().Before(deadline) {
			c.t.Fatalf("%s: not within %v (%d updates received, last %+v)", what, d, len(c.got), last(c.got))
		}
		c.cond.Wait()
	}
}

func last(l []logged) any {
	if len(l) == 0 {
		return nil
	}
	return l[len(l)-1]
}

// waitPosition waits until the client has received position p.
func (c *hubClient) waitPosition(d time.Duration, p uint64) {
	c.t.Helper()
	c.waitFor(d, fmt.Sprintf("position %d", p), func() bool {
		return slices.ContainsFunc(c.got, func(l logged) bool { return l.Position >= p })
	})
}

// catchUp invokes CatchUp(after) and returns its answer.
func (c *hubClient) catchUp(after uint64) catchUpRes {
	c.t.Helper()
	c.mu.Lock()
	c.calls++
	id := fmt.Sprintf("c%d", c.calls)
	c.mu.Unlock()
	if err := c.conn.Write(c.t.Context(), websocket.MessageText, signalrtest.JSONInvocation(id, "CatchUp", after)); err != nil {
		c.t.Fatal(err)
	}
	var r catchUpRes
	c.waitFor(60*time.Second, "CatchUp("+fmt.Sprint(after)+")", func() bool {
		var ok bool
		r, ok = c.answers[id]
		return ok
	})
	if r.err != "" {
		c.t.Fatalf("CatchUp(%d): %s", after, r.err)
	}
	return r
}

// received returns a copy of what the client received, in arrival order.
func (c *hubClient) received() []logged {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// dedupe drops repeated positions, keeping each first arrival, and sorts
// by position: what a client applies after de-duplication by position.
func dedupe(got []logged) []logged {
	seen := map[uint64]bool{}
	var out []logged
	for _, l := range got {
		if !seen[l.Position] {
			seen[l.Position] = true
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b logged) int { return int(a.Position) - int(b.Position) })
	return out
}

// openTestDB opens the PostgreSQL database at url for the test's own
// queries.
func openTestDB(t *testing.T, url string) *gorm.DB {
	t.Helper()
	return openGorm(t, postgres.Open(url))
}

// openGorm opens d quietly and closes it when the test ends.
func openGorm(t *testing.T, d gorm.Dialector) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return db
}

// logRows returns the positioned events of the log table, by position, as
// a client would receive them, read through the log's own API.
func logRows(t *testing.T, db *gorm.DB) []logged {
	t.Helper()
	l, err := eventlog.Open(t.Context(), db, eventlog.WithRetention(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []logged
	for {
		var after uint64
		if len(out) > 0 {
			after = out[len(out)-1].Position
		}
		evs, err := l.Read(t.Context(), after, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, e := range evs {
			out = append(out, logged{Position: e.Position, Type: e.Type, LeadID: e.LeadID})
		}
	}
}

// waitStamped waits until every event in the log has its position (the
// sequencer of some instance has caught up) and returns the log. On SQLite
// an event's position is its row id: there is nothing to wait for.
func waitStamped(t *testing.T, db *gorm.DB) []logged {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for db.Dialector.Name() == "postgres" {
		var unstamped int64
		if err := db.Raw(`SELECT count(*) FROM lead_events WHERE last IS NULL`).Scan(&unstamped).Error; err != nil {
			t.Fatal(err)
		}
		if unstamped == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends still without positions after 60 s", unstamped)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return logRows(t, db)
}

// checkAgainstLog fails unless got, after de-duplication by position, is
// exactly the log: every position once, the same event at each.
func checkAgainstLog(t *testing.T, name string, got, log []logged) {
	t.Helper()
	d := dedupe(got)
	if len(d) != len(log) {
		t.Errorf("%s: %d distinct positions received, the log has %d", name, len(d), len(log))
	}
	for i := range min(len(d), len(log)) {
		if d[i] != log[i] {
			t.Errorf("%s: at %d received %+v, the log has %+v", name, i, d[i], log[i])
			return
		}
	}
}

// checkLeadsMatchLog fails unless the leads table and the log agree: every
// stored lead has exactly one NEW_LEAD event and every NEW_LEAD is of a
// stored lead (an event of a rolled-back transaction would not be).
func checkLeadsMatchLog(t *testing.T, db *gorm.DB, log []logged) {
	t.Helper()
	var ids []int64
	if err := db.Raw(`SELECT id FROM leads ORDER BY id`).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	news := map[int64]int{}
	for _, l := range log {
		if l.Type == "NEW_LEAD" {
			news[l.LeadID]++
		}
	}
	for _, id := range ids {
		if news[id] != 1 {
			t.Errorf("lead %d is stored with %d NEW_LEAD events", id, news[id])
		}
		delete(news, id)
	}
	for id := range news {
		t.Errorf("NEW_LEAD of lead %d, which is not stored (a rolled-back transaction's event)", id)
	}
}
