package notify_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// e2eLead is the application's lead model in the end-to-end test.
type e2eLead struct {
	ID     uint `gorm:"primaryKey"`
	Name   string
	Status string
	Score  float64
	Owner  string
}

// logApp is an application with the durable log: GORM with the interceptor
// WithEventLog, whose Sink calls a Notifier WithLog as
// examples/server/internal/events does, and a hub whose clients catch up
// from the log.
type logApp struct {
	db  *gorm.DB
	log *testLog
	n   *notify.Notifier
	srv *hub.Server
	url string
}

func newLogApp(t *testing.T) *logApp {
	t.Helper()
	a := &logApp{}
	db := pgLogDB.open(t)
	a.log = openLog(t, db)
	sqlDB, err := db.DB()
	must(t, err)
	a.db, err = gorm.Open(pgDialectOn(sqlDB), &gorm.Config{
		Logger:         logger.Discard,
		NamingStrategy: schema.NamingStrategy{TablePrefix: fmt.Sprintf("nle%d_%d_", logSeq.Add(1), time.Now().UnixNano()%1e6)},
	})
	must(t, err)
	must(t, a.db.AutoMigrate(&e2eLead{}))
	t.Cleanup(func() { a.db.Migrator().DropTable(&e2eLead{}) })

	// The wiring of an application: the same options for the Notifier and
	// the hub's log, the hub first.
	roles := map[string][]string{"alice": {"admin"}, "bob": {"sales"}}
	opts := []notify.Option{notify.WithLog(a.log.Log), notify.WithAudience(func(*notify.LeadUpdateMessage) string { return "" })}
	srv, ts := startHub(t,
		hub.WithLog(notify.NewHubLog(a.log.Log, opts...)),
		hub.WithAuthenticator(hub.AuthenticatorFunc(func(r *http.Request) (*hub.Principal, error) {
			if rs, ok := roles[hub.BearerToken(r)]; ok {
				return &hub.Principal{ID: hub.BearerToken(r), Roles: rs}, nil
			}
			return nil, errors.New("unknown token")
		})),
		hub.WithFilter(notify.FilterName, func(owner string, p *hub.Principal) bool {
			return p.HasRole("admin") || owner == p.ID
		}))
	a.srv, a.url = srv, ts.URL+srv.Path()
	a.n = newNotifier(t, srv, opts...)

	p, err := interceptor.New(&e2eLead{}, interceptor.SinkFunc(a.publish),
		interceptor.WithEventLog(a.log.Log), interceptor.WithFields(interceptor.Fields{Audience: "Owner"}))
	must(t, err)
	t.Cleanup(func() { p.Close() })
	must(t, a.db.Use(p))
	return a
}

// publish is the interceptor's Sink: one notification per change, under
// the audience the statement committed; a failure fails the write.
func (a *logApp) publish(ctx context.Context, cs []interceptor.Change) error {
	for _, c := range cs {
		ctx := notify.ForAudience(ctx, c.Audience)
		var err error
		switch c.Op {
		case interceptor.OpNewLead:
			l := c.Lead.(*e2eLead)
			if l.Name == "refused" {
				return errors.New("the CRM refuses this lead")
			}
			err = a.n.NotifyNewLead(ctx, c.LeadID, map[string]any{"id": c.LeadID, "name": l.Name, "owner": l.Owner}, "test")
		case interceptor.OpStatusUpdate:
			err = a.n.NotifyLeadStatusUpdate(ctx, c.LeadID, c.PreviousStatus, c.NewStatus)
		case interceptor.OpScoreUpdate:
			err = a.n.NotifyLeadScoreUpdate(ctx, c.LeadID, c.PreviousScore, c.NewScore)
		case interceptor.OpLeadDeleted:
			err = a.n.NotifyLeadDeleted(ctx, c.LeadID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// client is a connection of one user in one protocol, reading what the hub
// sends.
type client struct {
	t     *testing.T
	conn  *signalrtest.Conn
	proto signalrtest.Protocol
}

func (a *logApp) connect(t *testing.T, user string, p signalrtest.Protocol) *client {
	t.Helper()
	c := &signalrtest.Client{URL: a.url, AccessToken: user}
	conn, err := c.Connect(t.Context(), p)
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, proto: p}
}

// received is one hub message: an invocation (type 1) or a completion
// (type 3), its first argument or result as JSON decodes it, and the
// record as sent.
type received struct {
	typ    int
	target string
	value  map[string]any
	raw    []byte
}

// next returns the next invocation or completion, skipping pings.
func (c *client) next() received {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 20*time.Second)
	defer cancel()
	for {
		rec, err := c.conn.ReadRecord(ctx)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		r := received{raw: bytes.Clone(rec.Data)}
		var arg any
		if c.proto == signalrtest.JSON {
			m, err := signalrtest.DecodeJSON(rec.Data)
			must(c.t, err)
			r.typ, r.target = m.Type, m.Target
			switch {
			case m.Type == 1 && len(m.Arguments) > 0:
				must(c.t, json.Unmarshal(m.Arguments[0], &arg))
			case m.Type == 3 && m.Result != nil:
				must(c.t, json.Unmarshal(m.Result, &arg))
			}
		} else {
			a, err := signalrtest.DecodeMessagePack(rec.Data)
			must(c.t, err)
			r.typ = int(toInt(a[0]))
			switch {
			case r.typ == 1:
				r.target, _ = a[3].(string)
				if args, _ := a[4].([]any); len(args) > 0 {
					arg = args[0]
				}
			case r.typ == 3 && len(a) > 4:
				arg = a[4]
			}
			arg = wireNormalize(c.t, stringKeys(arg))
		}
		if r.typ == 6 {
			continue
		}
		r.value, _ = arg.(map[string]any)
		return r
	}
}

// invoke calls a hub method with invocation id "1".
func (c *client) invoke(method string, args ...any) {
	c.t.Helper()
	if c.proto == signalrtest.JSON {
		must(c.t, c.conn.Write(c.t.Context(), websocket.MessageText, signalrtest.JSONInvocation("1", method, args...)))
		return
	}
	must(c.t, c.conn.Write(c.t.Context(), websocket.MessageBinary, signalrtest.MessagePackFrame(1, map[string]any{}, "1", method, args)))
}

// leadUpdates reads n lead updates.
func (c *client) leadUpdates(n int) []received {
	c.t.Helper()
	var out []received
	for len(out) < n {
		r := c.next()
		if r.typ != 1 || r.target != notify.MethodLeadUpdate {
			c.t.Fatalf("got %s, want a lead update", r.raw)
		}
		out = append(out, r)
	}
	return out
}

func toInt(v any) int64 {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		return int64(v)
	}
	return -1
}

// stringKeys turns the map[any]any of a MessagePack decoding into
// map[string]any, recursively.
func stringKeys(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = stringKeys(e)
		}
	}
	return v
}

// summary is "TYPE#lead@sequence".
func (r received) summary() string {
	return fmt.Sprintf("%v#%v@%v", r.value["type"], r.value["leadId"], r.value["sequence"])
}

func summaries(rs []received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.summary())
	}
	return out
}

func raws(rs []received) [][]byte {
	var out [][]byte
	for _, r := range rs {
		out = append(out, r.raw)
	}
	return out
}

// TestLogEndToEnd: GORM writes through the interceptor and a Notifier's
// own events reach hub clients from the durable log with their positions
// as sequence; rolled-back and refused writes log and send nothing;
// CatchUp replays what a client missed byte for byte as live, in JSON and
// MessagePack, then live; a position older than the log gets the reload
// message.
func TestLogEndToEnd(t *testing.T) {
	a := newLogApp(t)
	ctx := t.Context()
	aliceJSON := a.connect(t, "alice", signalrtest.JSON)
	aliceMP := a.connect(t, "alice", signalrtest.MessagePack)
	bobMP := a.connect(t, "bob", signalrtest.MessagePack)

	must(t, a.db.Create(&e2eLead{Name: "Ada", Status: "New", Owner: "bob"}).Error)
	must(t, a.db.Create(&e2eLead{Name: "Grace", Status: "New", Owner: "alice"}).Error)
	must(t, a.db.Transaction(func(tx *gorm.DB) error {
		return tx.Model(&e2eLead{ID: 1}).Updates(map[string]any{"status": "Enriched", "score": 80}).Error
	}))
	rolledBack := errors.New("rolled back")
	if err := a.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&e2eLead{ID: 1}).Update("status", "Lost").Error; err != nil {
			return err
		}
		return rolledBack
	}); !errors.Is(err, rolledBack) {
		t.Fatalf("rolled-back transaction: %v", err)
	}
	if err := a.db.Create(&e2eLead{Name: "refused", Status: "New", Owner: "bob"}).Error; err == nil {
		t.Fatal("a write whose Sink failed succeeded")
	}
	must(t, a.n.NotifyWorkflowStarted(notify.ForAudience(ctx, "bob"), 1, "LeadProcessing")) // its own transaction
	must(t, a.db.Delete(&e2eLead{ID: 2}).Error)

	waitHead(t, a.log, 6)
	evs, err := a.log.Read(ctx, 0, 100)
	must(t, err)
	var logged []string
	for _, ev := range evs {
		logged = append(logged, fmt.Sprintf("%s#%d@%d", ev.Type, ev.LeadID, ev.Position))
	}
	wantLog := []string{"NEW_LEAD#1@1", "NEW_LEAD#2@2", "STATUS_UPDATE#1@3", "SCORE_UPDATE#1@4", "WORKFLOW_STARTED#1@5", "LEAD_DELETED#2@6"}
	if !slices.Equal(logged, wantLog) {
		t.Fatalf("log %v, want %v (nothing of the rolled-back and refused writes)", logged, wantLog)
	}
	var rows int64
	must(t, a.db.Model(&e2eLead{}).Unscoped().Where("name = ?", "refused").Count(&rows).Error)
	if rows != 0 {
		t.Errorf("the refused write committed")
	}

	bobWants := []string{"NEW_LEAD#1@1", "STATUS_UPDATE#1@3", "SCORE_UPDATE#1@4", "WORKFLOW_STARTED#1@5"}
	liveJSON, liveMP := aliceJSON.leadUpdates(6), aliceMP.leadUpdates(6)
	for name, got := range map[string][]string{
		"alice JSON": summaries(liveJSON), "alice MessagePack": summaries(liveMP),
	} {
		if !slices.Equal(got, wantLog) {
			t.Errorf("%s received %v, want %v", name, got, wantLog)
		}
	}
	if got := summaries(bobMP.leadUpdates(4)); !slices.Equal(got, bobWants) {
		t.Errorf("bob received %v, want %v", got, bobWants)
	}

	// Late clients catch up from 0: the same records as live, then the
	// completion, then live.
	for _, tt := range []struct {
		name string
		user string
		p    signalrtest.Protocol
		want [][]byte
	}{
		{"JSON", "alice", signalrtest.JSON, raws(liveJSON)},
		{"MessagePack", "alice", signalrtest.MessagePack, raws(liveMP)},
	} {
		t.Run("catch up "+tt.name, func(t *testing.T) {
			c := a.connect(t, tt.user, tt.p)
			c.invoke("CatchUp", 0)
			got := raws(c.leadUpdates(len(tt.want)))
			for i := range tt.want {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("replayed record %d differs from live:\n got %q\nwant %q", i, got[i], tt.want[i])
				}
			}
			if r := c.next(); r.typ != 3 || r.value["position"] != float64(6) || r.value["reload"] != false {
				t.Errorf("CatchUp answered %s, want position 6, no reload", r.raw)
			}
		})
	}
	bobLate := a.connect(t, "bob", signalrtest.JSON)
	bobLate.invoke("CatchUp", 2)
	if got := summaries(bobLate.leadUpdates(3)); !slices.Equal(got, bobWants[1:]) {
		t.Errorf("bob caught up after 2 with %v, want %v", got, bobWants[1:])
	}
	if r := bobLate.next(); r.typ != 3 || r.value["position"] != float64(6) {
		t.Errorf("CatchUp answered %s, want position 6", r.raw)
	}

	// Live again, once, for everyone.
	must(t, a.db.Model(&e2eLead{ID: 1}).Update("status", "Won").Error)
	for _, c := range []*client{aliceJSON, aliceMP, bobMP, bobLate} {
		if got := c.leadUpdates(1)[0].summary(); got != "STATUS_UPDATE#1@7" {
			t.Errorf("next live message %s, want STATUS_UPDATE#1@7", got)
		}
	}

	// Beyond retention: the reload message, and CatchUp says so.
	a.log.prune(t, 3)
	c := a.connect(t, "alice", signalrtest.JSON)
	c.invoke("CatchUp", 1)
	r := c.next()
	if r.typ != 1 || r.target != notify.MethodReload || r.value["type"] != notify.TypeReloadRequired ||
		r.value["position"] != float64(7) || r.value["oldestPosition"] != float64(4) {
		t.Errorf("catch-up below the floor got %s, want the reload message at 7, oldest 4", r.raw)
	}
	if r := c.next(); r.typ != 3 || r.value["reload"] != true {
		t.Errorf("CatchUp answered %s, want reload", r.raw)
	}
}

// pgDialectOn is PostgreSQL through an open pool.
func pgDialectOn(c *sql.DB) gorm.Dialector { return postgres.New(postgres.Config{Conn: c}) }

// TestLogInstances: three instances — each its own Log on the same table,
// Notifier and hub, no backplane — send every client the same events in
// the same order, whichever instance wrote them.
func TestLogInstances(t *testing.T) {
	ctx := t.Context()
	db := pgLogDB.open(t)
	first := openLog(t, db)
	type instance struct {
		n *notify.Notifier
		c *client
	}
	var insts []instance
	for i := range 3 {
		l := first.Log
		if i > 0 {
			var err error
			l, err = eventlog.Open(ctx, db, eventlog.WithTable(first.table), eventlog.WithPollInterval(50*time.Millisecond))
			must(t, err)
			t.Cleanup(func() { l.Close() })
		}
		opts := []notify.Option{notify.WithLog(l)}
		srv, ts := startHub(t, hub.WithLog(notify.NewHubLog(l, opts...)))
		n := newNotifier(t, srv, opts...)
		app := &logApp{url: ts.URL + srv.Path()}
		insts = append(insts, instance{n: n, c: app.connect(t, "", signalrtest.JSON)})
	}
	const events = 30
	for i := range events {
		must(t, insts[i%3].n.NotifyWorkflowStarted(ctx, int64(i%4+1), fmt.Sprintf("W%d", i)))
	}
	var want []string
	for i, in := range insts {
		got := summaries(in.c.leadUpdates(events))
		if i == 0 {
			want = got
			for j, s := range got {
				if !strings.HasSuffix(s, fmt.Sprintf("@%d", j+1)) {
					t.Fatalf("instance 0 received %v: want positions 1..%d in order", got, events)
				}
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("instance %d sent %v, instance 0 %v", i, got, want)
		}
	}
}
