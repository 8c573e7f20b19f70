package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"

	"github.com/glebarez/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmihailenco/msgpack/v5"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// A logDB is a database the log tests run on, as a subtest: PostgreSQL
// (TEST_DATABASE_URL, by default the local test database) and SQLite in a
// temporary file.
type logDB struct {
	name string
	open func(t testing.TB) *gorm.DB
}

func pgDSN() string {
	return testdb.DSN()
}

var (
	pgLogDB = logDB{"postgres", func(t testing.TB) *gorm.DB {
		db := openGorm(t, postgres.Open(pgDSN()))
		sqlDB, _ := db.DB()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sqlDB.PingContext(ctx); err != nil {
			t.Fatalf("the log tests need PostgreSQL at %s: %v\nStart it with `make testenv` or set TEST_DATABASE_URL.", pgDSN(), err)
		}
		return db
	}}
	sqliteLogDB = logDB{"sqlite", func(t testing.TB) *gorm.DB {
		return openGorm(t, sqlite.Open(filepath.Join(t.TempDir(), "log.db")+
			"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"))
	}}
	logDBs = []logDB{pgLogDB, sqliteLogDB}
)

func eachLogDB(t *testing.T, f func(t *testing.T, d logDB)) {
	for _, d := range logDBs {
		t.Run(d.name, func(t *testing.T) { f(t, d) })
	}
}

func openGorm(t testing.TB, d gorm.Dialector) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	return db
}

var logSeq atomic.Int64

// testLog is an event log of its own on db, with its table.
type testLog struct {
	*eventlog.Log
	db    *gorm.DB
	table string
}

// openLog opens a log in a table of its own, dropped when the test ends.
func openLog(t testing.TB, db *gorm.DB, opts ...eventlog.Option) *testLog {
	t.Helper()
	table := fmt.Sprintf("nl_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, logSeq.Add(1))
	opts = append([]eventlog.Option{eventlog.WithTable(table), eventlog.WithPollInterval(50 * time.Millisecond)}, opts...)
	l, err := eventlog.Open(t.Context(), db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		db.Exec(`DROP TABLE IF EXISTS ` + table)
		db.Exec(`DROP TABLE IF EXISTS ` + table + `_meta`)
	})
	return &testLog{Log: l, db: db, table: table}
}

// prune deletes the events up to position upto and raises the floor, as the
// log's pruner would once they are older than the retention.
func (l *testLog) prune(t testing.TB, upto uint64) {
	t.Helper()
	err := l.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE `+l.table+`_meta SET floor = ? WHERE id = 1`, upto).Error; err != nil {
			return err
		}
		// On PostgreSQL a row holds one Append's events, the last at last;
		// these tests append one event per transaction.
		column := "position"
		if tx.Dialector.Name() == "postgres" {
			column = "last"
		}
		return tx.Exec(`DELETE FROM `+l.table+` WHERE `+column+` <= ?`, upto).Error
	})
	if err != nil {
		t.Fatal(err)
	}
}

// await waits until the fake hub holds n sends and returns them.
func await(t testing.TB, rec *recordingClients, n int) []sent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		if got := rec.all(); len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the hub was sent %d messages, want %d: %+v", len(rec.all()), n, rec.all())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestLogRelay: with WithLog every lead event is appended to the log and
// published from it, in order, with its position as sequence; metrics keep
// the direct path.
func TestLogRelay(t *testing.T) { eachLogDB(t, testLogRelay) }

func testLogRelay(t *testing.T, d logDB) {
	ctx := t.Context()
	l := openLog(t, d.open(t))
	rec := &recordingClients{}
	n := newNotifier(t, rec, notify.WithLog(l.Log))
	lead := crmLead{ID: 7, Name: "Ada", Owner: "bob"}
	must(t, n.NotifyNewLead(ctx, 7, lead, "Google"))
	must(t, n.NotifyLeadStatusUpdate(ctx, 7, "New", "Enriching"))
	must(t, n.NotifyLeadScoreUpdate(ctx, 7, 0, 91.5))
	must(t, n.NotifyLeadEnrichment(ctx, 7, lead))
	must(t, n.NotifyWorkflowStarted(ctx, 7, "LeadProcessing"))
	must(t, n.NotifyWorkflowCompleted(ctx, 7, "LeadProcessing"))
	must(t, n.NotifyWorkflowFailed(ctx, 7, "CrmSync", "down"))
	must(t, n.NotifyLeadDeleted(ctx, 7))
	got := await(t, rec, 8)

	evs, err := l.Read(ctx, 0, 100)
	must(t, err)
	if len(evs) != 8 {
		t.Fatalf("the log holds %d events, want 8", len(evs))
	}
	types := []string{notify.TypeNewLead, notify.TypeStatusUpdate, notify.TypeScoreUpdate, notify.TypeEnrichmentUpdate,
		notify.TypeWorkflowStarted, notify.TypeWorkflowCompleted, notify.TypeWorkflowFailed, notify.TypeLeadDeleted}
	for i, s := range got {
		m, ok := s.arg.(*notify.LeadUpdateMessage)
		if !ok {
			t.Fatalf("send %d: %T, want *notify.LeadUpdateMessage", i, s.arg)
		}
		ev := evs[i]
		if s.position != ev.Position || m.Sequence != ev.Position || m.Type != types[i] || ev.Type != types[i] || m.LeadID != 7 {
			t.Errorf("send %d: %s sequence %d at position %d, want %s at %d", i, m.Type, m.Sequence, s.position, types[i], ev.Position)
		}
		if s.target != notify.MethodLeadUpdate || !slices.Equal(s.groups, []string{hub.DefaultGroup, hub.LeadGroup(7)}) || s.filter != "" {
			t.Errorf("send %d: %s to %v filtered %q, want ReceiveLeadUpdate to LeadUpdates and Lead_7, unfiltered", i, s.target, s.groups, s.filter)
		}
	}
	if m := got[2].arg.(*notify.LeadUpdateMessage); m.PreviousScore == nil || *m.PreviousScore != 0 || *m.NewScore != 91.5 {
		t.Errorf("score update %+v", m)
	}
	if m := got[6].arg.(*notify.LeadUpdateMessage); m.Message != "CrmSync failed: down" {
		t.Errorf("workflow failure message %q", m.Message)
	}

	must(t, n.NotifyMetricsUpdate(ctx, notify.Metrics{TotalLeads: 1}))
	if s := await(t, rec, 9)[8]; s.target != notify.MethodMetricsUpdate || s.position != 0 {
		t.Errorf("metrics went %s at position %d, want the direct path", s.target, s.position)
	}
	if h, err := l.Head(ctx); err != nil || h != evs[7].Position {
		t.Errorf("head %d (%v) after metrics, want %d: metrics are not logged", h, err, evs[7].Position)
	}
}

// TestLogBatch: under a ctx carrying a batch, the event goes into the batch
// (the caller's transaction), not to the log.
func TestLogBatch(t *testing.T) {
	l := openLog(t, pgLogDB.open(t))
	rec := &recordingClients{}
	n := newNotifier(t, rec, notify.WithLog(l.Log))
	b := eventlog.NewBatch()
	ctx := eventlog.NewContext(t.Context(), b)
	must(t, n.NotifyWorkflowStarted(ctx, 3, "LeadProcessing"))
	must(t, n.NotifyLeadStatusUpdate(notify.ForAudience(ctx, "bob"), 3, "New", "Won"))
	evs := b.Events()
	if len(evs) != 2 || evs[0].Type != notify.TypeWorkflowStarted || evs[1].Type != notify.TypeStatusUpdate ||
		evs[0].LeadID != 3 || evs[1].Audience != "bob" || evs[0].Audience != "" {
		t.Fatalf("batch %+v", evs)
	}
	var m map[string]any
	must(t, json.Unmarshal(evs[1].Payload, &m))
	if _, ok := m["sequence"]; ok || m["newStatus"] != "Won" {
		t.Errorf("payload %s: want the message without sequence", evs[1].Payload)
	}
	if h, err := l.Head(t.Context()); err != nil || h != 0 {
		t.Fatalf("head %d (%v): the batch was appended by the Notifier", h, err)
	}
	// The caller appends and commits: then the events are published.
	must(t, l.Append(t.Context(), nil, evs...))
	got := await(t, rec, 2)
	if got[1].filter != notify.FilterName || got[1].key != "bob" || got[0].filter != "" {
		t.Errorf("filters %q(%q), %q(%q): want the second only, for bob", got[0].filter, got[0].key, got[1].filter, got[1].key)
	}
}

// TestLogErrors: an event that cannot be logged is the caller's error.
func TestLogErrors(t *testing.T) {
	l := openLog(t, pgLogDB.open(t))
	n := newNotifier(t, &recordingClients{}, notify.WithLog(l.Log))
	if err := n.NotifyNewLead(t.Context(), 1, map[string]any{"f": func() {}}, "x"); !errors.Is(err, notify.ErrInvalid) {
		t.Errorf("unencodable lead: %v, want ErrInvalid", err)
	}
	l.Close()
	err := n.NotifyWorkflowStarted(t.Context(), 1, "LeadProcessing")
	if !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("append to a closed log: %v, want eventlog.ErrClosed", err)
	}
	n.Close()
	if err := n.NotifyWorkflowStarted(t.Context(), 1, "LeadProcessing"); !errors.Is(err, notify.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestLogAudience: in log mode events are filtered as on the live path:
// every event under WithAudience, else those given ForAudience.
func TestLogAudience(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     []notify.Option
		audience *string // ForAudience's key, if any
		filter   string
		key      string
	}{
		{"none", nil, nil, "", ""},
		{"ForAudience", nil, ptr("bob"), notify.FilterName, "bob"},
		{"WithAudience", []notify.Option{notify.WithAudience(func(*notify.LeadUpdateMessage) string { return "" })}, nil, notify.FilterName, ""},
		{"WithAudience, ForAudience wins", []notify.Option{notify.WithAudience(func(*notify.LeadUpdateMessage) string { return "alice" })}, ptr("bob"), notify.FilterName, "bob"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, pgLogDB.open(t))
			rec := &recordingClients{}
			n := newNotifier(t, rec, append(tt.opts, notify.WithLog(l.Log))...)
			ctx := t.Context()
			if tt.audience != nil {
				ctx = notify.ForAudience(ctx, *tt.audience)
			}
			must(t, n.NotifyLeadDeleted(ctx, 5))
			s := await(t, rec, 1)[0]
			if s.filter != tt.filter || s.key != tt.key {
				t.Errorf("relay: filter %q(%q), want %q(%q)", s.filter, s.key, tt.filter, tt.key)
			}
			// CatchUp reads the same through a HubLog given the same options.
			es, err := notify.NewHubLog(l.Log, tt.opts...).Read(t.Context(), 0, 10)
			must(t, err)
			if len(es) != 1 || es[0].Filter != tt.filter || es[0].Arg != tt.key {
				t.Errorf("hub log: %+v, want filter %q(%q)", es, tt.filter, tt.key)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestLogRelayResumes: when the events after the relay's cursor are pruned
// under it, Tail fails; the relay resumes from the oldest event kept and
// goes on publishing.
func TestLogRelayResumes(t *testing.T) {
	ctx := t.Context()
	l := openLog(t, pgLogDB.open(t))
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	rec := &recordingClients{}
	rec.hook = func(s sent) {
		if s.position == 1 {
			blocked <- struct{}{}
			<-release
		}
	}
	reg := prometheus.NewPedanticRegistry()
	n := newNotifier(t, rec, notify.WithLog(l.Log), notify.WithRegisterer(reg))
	must(t, n.NotifyWorkflowStarted(ctx, 1, "A"))
	<-blocked // the relay is publishing position 1
	for i := range 9 {
		must(t, n.NotifyWorkflowStarted(ctx, int64(i+2), "A"))
	}
	waitHead(t, l, 10)
	l.prune(t, 5) // 2..5 are gone before the relay read them
	close(release)
	must(t, n.NotifyWorkflowStarted(ctx, 11, "A"))
	got := await(t, rec, 7)
	var positions []uint64
	for _, s := range got {
		positions = append(positions, s.position)
	}
	if want := []uint64{1, 6, 7, 8, 9, 10, 11}; !slices.Equal(positions, want) {
		t.Errorf("published positions %v, want %v", positions, want)
	}
	if f := counterSum(t, reg, "leadupdates_notify_relay_failures_total"); f != 1 {
		t.Errorf("relay failures %v, want 1", f)
	}
	if f := counterSum(t, reg, "leadupdates_notify_events_dropped_total"); f != 4 {
		t.Errorf("dropped %v, want the 4 pruned", f)
	}
}

// waitHead waits until the log has positioned head events.
func waitHead(t testing.TB, l *testLog, head uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		h, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h >= head {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("head %d, want %d", h, head)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestHubLog: CatchUp's reads give the relay's messages; a position below
// the floor is ErrPruned and gets the reload message.
func TestHubLog(t *testing.T) {
	ctx := t.Context()
	l := openLog(t, pgLogDB.open(t))
	rec := &recordingClients{}
	n := newNotifier(t, rec, notify.WithLog(l.Log))
	for id := range int64(5) {
		must(t, n.NotifyNewLead(ctx, id+1, crmLead{ID: id + 1, Name: "<Ada & co>"}, "Google"))
	}
	live := await(t, rec, 5)
	hl := notify.NewHubLog(l.Log)
	es, err := hl.Read(ctx, 2, 2)
	must(t, err)
	if len(es) != 2 || es[0].Position != 3 || es[1].Position != 4 {
		t.Fatalf("read after 2, limit 2: %+v", es)
	}
	for i, e := range es {
		want := live[i+2]
		if e.Target != want.target || !slices.Equal(e.Groups, want.groups) || e.Filter != want.filter || e.Arg != want.key {
			t.Errorf("entry %d: %+v, want as published %+v", e.Position, e, want)
		}
		if got, want := mustJSON(t, e.Args[0]), mustJSON(t, want.arg); !bytes.Equal(got, want) {
			t.Errorf("entry %d: %s, want as published %s", e.Position, got, want)
		}
	}

	l.prune(t, 3)
	for _, after := range []uint64{0, 2} {
		if _, err := hl.Read(ctx, after, 10); !errors.Is(err, hub.ErrPruned) {
			t.Errorf("read after %d below floor 3: %v, want hub.ErrPruned", after, err)
		}
	}
	if es, err := hl.Read(ctx, 3, 10); err != nil || len(es) != 2 {
		t.Errorf("read after the floor: %d entries, %v; want 4 and 5", len(es), err)
	}
	target, args := hl.Reload(1)
	m, ok := args[0].(notify.ReloadMessage)
	if target != notify.MethodReload || len(args) != 1 || !ok || m.Type != notify.TypeReloadRequired ||
		m.Position != 5 || m.OldestPosition != 4 || time.Since(m.Timestamp.Time) > time.Hour {
		t.Errorf("reload: %s %+v, want ReceiveReload at head 5, oldest 4", target, args)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// richLead has the JSON types a lead may carry, and values that test their
// conversion: integers of every size, fractions, a float that is whole,
// strings that encoding/json escapes, nesting, null.
type richLead struct {
	ID       int64          `json:"id"`
	Big      uint64         `json:"big"`
	Negative int64          `json:"negative"`
	Small    int8           `json:"small"`
	Score    float64        `json:"score"`
	Whole    float64        `json:"whole"`
	Tiny     float64        `json:"tiny"`
	Name     string         `json:"name"`
	Tags     []string       `json:"tags"`
	Active   bool           `json:"active"`
	Nothing  *string        `json:"nothing"`
	Extra    map[string]any `json:"extra"`
	Nested   struct {
		Z, A int
	} `json:"nested"`
}

// TestLoggedMessageEncoding: an event from the log reaches JSON and
// MessagePack clients as the same value (integers as integers), and as the
// live path sends it.
func TestLoggedMessageEncoding(t *testing.T) { eachLogDB(t, testLoggedMessageEncoding) }

func testLoggedMessageEncoding(t *testing.T, d logDB) {
	ctx := t.Context()
	lead := richLead{
		ID: 42, Big: math.MaxUint64, Negative: math.MinInt64, Small: -7, Score: 87.25, Whole: 3, Tiny: 1e-9,
		Name: "<Ada & \"Bob\"> \u2028 é 😀", Tags: []string{"a", "b"}, Active: true,
		Extra: map[string]any{"k": []any{1, 2.5, "x", nil, map[string]any{}}},
	}
	l := openLog(t, d.open(t))
	rec := &recordingClients{}
	n := newNotifier(t, rec, notify.WithLog(l.Log))
	must(t, n.NotifyNewLead(ctx, 42, lead, "Google"))
	must(t, n.NotifyLeadScoreUpdate(ctx, 42, math.NaN(), 0))
	got := await(t, rec, 2)

	liveRec := &recordingClients{}
	live := newNotifier(t, liveRec)
	must(t, live.NotifyNewLead(ctx, 42, lead, "Google"))
	must(t, live.NotifyLeadScoreUpdate(ctx, 42, math.NaN(), 0))
	live.Close()
	liveGot := liveRec.all()

	for i, s := range got {
		logged := s.arg
		fromJSON := wireJSON(t, logged)
		fromMsgpack := wireMsgpack(t, msgpackLikeHub, logged)
		if !reflect.DeepEqual(fromMsgpack, fromJSON) {
			t.Errorf("message %d: MessagePack differs from JSON\n got: %v\nwant: %v", i, fromMsgpack, fromJSON)
		}
		// As the live path sends it, but for the sequence and timestamp.
		want := wireJSON(t, liveGot[i].arg)
		for _, m := range []map[string]any{fromJSON, want} {
			delete(m, "sequence")
			delete(m, "timestamp")
		}
		if !reflect.DeepEqual(fromJSON, want) {
			t.Errorf("message %d: logged %v, live %v", i, fromJSON, want)
		}
	}

	// Integers stay integers for MessagePack clients; fractions are floats.
	var buf bytes.Buffer
	must(t, msgpackLikeHub(&buf).Encode(got[0].arg))
	dec := msgpack.NewDecoder(&buf)
	dec.UseLooseInterfaceDecoding(true) // integers as int64/uint64, floats as float64
	var m map[string]any
	must(t, dec.Decode(&m))
	lm := m["lead"].(map[string]any)
	for k, want := range map[string]any{
		"id": int64(42), "big": uint64(math.MaxUint64), "negative": int64(math.MinInt64), "small": int64(-7),
		"score": 87.25, "whole": int64(3), "tiny": 1e-9, "name": lead.Name, "active": true, "nothing": nil,
	} {
		if !reflect.DeepEqual(lm[k], want) {
			t.Errorf("lead.%s = %#v (%T), want %#v (%T)", k, lm[k], lm[k], want, want)
		}
	}
	if m["leadId"] != int64(42) || m["sequence"] != int64(got[0].position) {
		t.Errorf("leadId %#v, sequence %#v", m["leadId"], m["sequence"])
	}
	// The JSON escapes as encoding/json does on the live path.
	if b := mustJSON(t, got[0].arg); !bytes.Contains(b, []byte(`\u003cAda \u0026 \"Bob\"\u003e \u2028`)) {
		t.Errorf("JSON %s: the name is not escaped as encoding/json does", b)
	}
}

// TestLoggedMessageEncodingStable: the same event encodes to the same bytes
// every time (objects keep their stored key order), so a replayed event
// and a live one are alike.
func TestLoggedMessageEncodingStable(t *testing.T) {
	l := openLog(t, pgLogDB.open(t))
	lead := map[string]any{}
	for i := range 50 {
		lead[fmt.Sprintf("k%d", i)] = i
	}
	rec := &recordingClients{}
	n := newNotifier(t, rec, notify.WithLog(l.Log))
	must(t, n.NotifyNewLead(t.Context(), 1, lead, "x"))
	await(t, rec, 1)
	hl := notify.NewHubLog(l.Log)
	var first []byte
	for range 5 {
		es, err := hl.Read(t.Context(), 0, 1)
		must(t, err)
		var buf bytes.Buffer
		must(t, msgpackLikeHub(&buf).Encode(es[0].Args[0]))
		if first == nil {
			first = buf.Bytes()
		} else if !bytes.Equal(buf.Bytes(), first) {
			t.Fatalf("MessagePack differs between reads:\n%x\n%x", buf.Bytes(), first)
		}
	}
}
