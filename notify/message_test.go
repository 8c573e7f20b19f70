package notify_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden/*.json and ts/golden.check.ts from the code")

// goldenLead is an application's lead model: notify sends it as it is.
type goldenLead struct {
	ID      int64   `json:"id"`
	Name    string  `json:"name"`
	Company string  `json:"company"`
	Email   string  `json:"email"`
	Source  string  `json:"source"`
	Status  string  `json:"status"`
	Score   float64 `json:"score"`
	Owner   string  `json:"owner"`
}

// goldenAt is the time of every golden message: not UTC and finer than a
// millisecond, so the goldens show both conversions.
var goldenAt = notify.Timestamp{Time: time.Date(2026, 11, 26, 19, 11, 29, 123456789, time.FixedZone("CET", 3600))}

func floatPtr(f float64) *float64 { return &f }

// goldenCase is one golden message: testdata/golden/<name>.json holds its
// exact JSON, and ts/golden.check.ts declares it as <ident>.
type goldenCase struct {
	name string
	msg  any // a notify message: LeadUpdateMessage, MetricsUpdateMessage, AnalyticsUpdateMessage, ReloadMessage
}

func goldenCases() []goldenCase {
	acme := goldenLead{
		ID: 42, Name: "Ada Lovelace", Company: "Analytical Engines Ltd", Email: "ada@engines.example",
		Source: "google_maps", Status: "New", Score: 0, Owner: "sam@leadupdates.example",
	}
	enriched := acme
	enriched.Status, enriched.Score = "Enriched", 87.5
	return []goldenCase{
		{"new_lead", notify.LeadUpdateMessage{
			Type: notify.TypeNewLead, LeadID: 42, Lead: acme, Source: "google_maps",
			Timestamp: goldenAt, Message: "New lead from google_maps", Sequence: 1,
		}},
		{"status_update", notify.LeadUpdateMessage{
			Type: notify.TypeStatusUpdate, LeadID: 42, PreviousStatus: "New", NewStatus: "Enriched",
			Timestamp: goldenAt, Sequence: 2,
		}},
		{"score_update", notify.LeadUpdateMessage{
			Type: notify.TypeScoreUpdate, LeadID: 42, PreviousScore: floatPtr(0), NewScore: floatPtr(87.5),
			Timestamp: goldenAt, Sequence: 3,
		}},
		{"enrichment_update", notify.LeadUpdateMessage{
			Type: notify.TypeEnrichmentUpdate, LeadID: 42, Lead: enriched,
			Timestamp: goldenAt, Message: "Enrichment completed", Sequence: 4,
		}},
		{"workflow_started", notify.LeadUpdateMessage{
			Type: notify.TypeWorkflowStarted, LeadID: 42, Timestamp: goldenAt, Message: "LeadProcessingWorkflow started",
		}},
		{"workflow_completed", notify.LeadUpdateMessage{
			Type: notify.TypeWorkflowCompleted, LeadID: 42, Timestamp: goldenAt, Message: "LeadProcessingWorkflow completed",
		}},
		{"workflow_failed", notify.LeadUpdateMessage{
			Type: notify.TypeWorkflowFailed, LeadID: 42, Timestamp: goldenAt,
			Message: `LeadProcessingWorkflow failed: zoho upsert: 503 "Service Unavailable" <retrying>`,
		}},
		{"lead_deleted", notify.LeadUpdateMessage{
			Type: notify.TypeLeadDeleted, LeadID: 42, Timestamp: goldenAt, Sequence: 9,
		}},
		{"metrics_update", notify.MetricsUpdateMessage{
			Type: notify.TypeMetricsUpdate,
			Metrics: notify.Metrics{
				TotalLeads: 1250, QualifiedLeads: 310, ConversionRate: 24.8, ActiveHarvesters: 3,
				ProcessingTime: 1.75, ScoreAverage: 68.25, DailyGrowth: 4.2, WeeklyGrowth: -1.5,
				NewLeadsToday: 57, ProcessedToday: 49,
				LeadsBySource: map[string]int64{"google_maps": 700, "linkedin": 350, "facebook": 120, "yellow_pages": 80},
				LeadsByStatus: map[string]int64{"New": 400, "Enriched": 300, "Qualified": 310, "Rejected": 240},
			},
			Timestamp: goldenAt, Sequence: 10,
		}},
		{"metrics_update_empty", notify.MetricsUpdateMessage{
			Type: notify.TypeMetricsUpdate,
			Metrics: notify.Metrics{
				ConversionRate: math.NaN(), ScoreAverage: math.Inf(1), DailyGrowth: math.Inf(-1),
			},
			Timestamp: goldenAt,
		}},
		{"analytics_update", notify.AnalyticsUpdateMessage{
			Type: notify.TypeAnalyticsUpdate,
			Analytics: notify.Analytics{
				Start: notify.Timestamp{Time: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}, BucketSeconds: 300, Buckets: 3,
				Created:   map[string][]int64{"Google": {4, 0, 2}, "LinkedIn": {1, 1, 0}},
				Processed: map[string][]int64{"Google": {0, 3, 1}},
				Failures:  map[string][]int64{"Enrich": {0, 1, 0}},
				ProcessingTime: notify.ProcessingTimes{
					LastHour: notify.Percentiles{Count: 4, P50: 2.5, P95: 7.25, Max: 8},
					LastDay:  notify.Percentiles{Count: 9, P50: 3, P95: 11.5, Max: 14.1},
				},
				Funnel: []notify.FunnelStep{
					{Status: "New", Leads: 8, Conversion: 100},
					{Status: "Enriched", Leads: 5, Conversion: 62.5},
				},
			},
			Timestamp: goldenAt, Sequence: 11,
		}},
		{"reload_required", notify.ReloadMessage{
			Type: notify.TypeReloadRequired, Position: 10042, OldestPosition: 9001, Timestamp: goldenAt,
		}},
		{"analytics_update_empty", notify.AnalyticsUpdateMessage{
			Type: notify.TypeAnalyticsUpdate, Timestamp: goldenAt,
			Analytics: notify.Analytics{
				Created:        map[string][]int64{"Google": nil},
				ProcessingTime: notify.ProcessingTimes{LastDay: notify.Percentiles{P95: math.NaN()}},
				Funnel:         []notify.FunnelStep{{Status: "New", Conversion: math.Inf(1)}},
			},
		}},
	}
}

// ident is the TypeScript name of a golden: new_lead -> newLead.
func (c goldenCase) ident() string {
	parts := strings.Split(c.name, "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

func (c goldenCase) path() string { return filepath.Join("testdata", "golden", c.name+".json") }

// marshal returns the exact bytes a JSON client receives (the hub uses
// encoding/json), plus the newline that ends the golden file.
func (c goldenCase) marshal(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(c.msg)
	if err != nil {
		t.Fatalf("marshal %s: %v", c.name, err)
	}
	return append(b, '\n')
}

// TestGolden compares the JSON of every message type with its golden file,
// byte for byte: compact, as clients receive it. Run with -update to rewrite
// the files, then review the diff, because the goldens are what TypeScript
// clients were written against.
func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			got := c.marshal(t)
			if *updateGolden {
				if err := os.WriteFile(c.path(), got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(c.path())
			if err != nil {
				t.Fatalf("%v (run go test ./notify -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("JSON of %s differs from %s (rerun with -update if the change is intended)\n got: %s\nwant: %s",
					c.name, c.path(), got, want)
			}
		})
		switch m := c.msg.(type) {
		case notify.LeadUpdateMessage:
			seen[m.Type] = true
		case notify.MetricsUpdateMessage:
			seen[m.Type] = true
		case notify.AnalyticsUpdateMessage:
			seen[m.Type] = true
		case notify.ReloadMessage:
			seen[m.Type] = true
		}
	}
	for _, typ := range goldenTypes {
		if !seen[typ] {
			t.Errorf("no golden message of type %s", typ)
		}
	}
}

var goldenTypes = []string{
	notify.TypeNewLead, notify.TypeStatusUpdate, notify.TypeScoreUpdate, notify.TypeEnrichmentUpdate,
	notify.TypeWorkflowStarted, notify.TypeWorkflowCompleted, notify.TypeWorkflowFailed, notify.TypeLeadDeleted,
	notify.TypeMetricsUpdate, notify.TypeAnalyticsUpdate, notify.TypeReloadRequired,
}

const goldenCheckFile = "ts/golden.check.ts"

// TestGoldenTypeScript checks that ts/golden.check.ts is what the goldens
// generate (-update rewrites it). TestTypeScriptContract then has tsc check
// that file against ts/leadupdates.ts: every golden must satisfy the declared
// type (a wrong type string, a renamed or extra field, a string where a number
// is declared fail), and every declared field, type and constant must occur in
// the Go side (a field or type the server never sends fails).
func TestGoldenTypeScript(t *testing.T) {
	got := generateCheck(t)
	if *updateGolden {
		if err := os.WriteFile(goldenCheckFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenCheckFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: run go test ./notify -run 'TestGolden' -update and commit it", goldenCheckFile)
	}
}

func generateCheck(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`// Code generated by go test ./notify -run TestGolden -update. DO NOT EDIT.

// Every golden message of notify/testdata/golden as a typed literal, and the
// Go constants, checked against leadupdates.ts by tsc (TestTypeScriptContract).

import { ClientMethods, LEAD_UPDATES_GROUP, leadGroup } from './leadupdates';
import type { AnalyticsUpdateMessage, LeadUpdateMessage, LeadUpdateType, MetricsUpdateMessage, ReloadMessage } from './leadupdates';

// Equal is true when A and B are the same type.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// Missing is true when every member of Declared is in Sent; otherwise it is
// the members missing from Sent, which tsc then names in its error.
type Missing<Declared, Sent> = [Exclude<Declared, Sent>] extends [never] ? true : Exclude<Declared, Sent>;
`)
	var leads, metrics, analytics, reloads []string
	for _, c := range goldenCases() {
		var js bytes.Buffer
		if err := json.Indent(&js, bytes.TrimSpace(c.marshal(t)), "", "  "); err != nil {
			t.Fatal(err)
		}
		typ := "LeadUpdateMessage"
		if _, ok := c.msg.(notify.MetricsUpdateMessage); ok {
			typ = "MetricsUpdateMessage"
			metrics = append(metrics, c.ident())
		} else if _, ok := c.msg.(notify.AnalyticsUpdateMessage); ok {
			typ = "AnalyticsUpdateMessage"
			analytics = append(analytics, c.ident())
		} else if _, ok := c.msg.(notify.ReloadMessage); ok {
			typ = "ReloadMessage"
			reloads = append(reloads, c.ident())
		} else {
			leads = append(leads, c.ident())
		}
		fmt.Fprintf(&b, "\n// testdata/golden/%s.json\nexport const %s = %s satisfies %s;\n", c.name, c.ident(), js.Bytes(), typ)
	}
	of := func(idents []string, suffix string) string {
		var parts []string
		for _, id := range idents {
			parts = append(parts, "typeof "+id+suffix)
		}
		return strings.Join(parts, " | ")
	}
	keys := func(idents []string) string {
		var parts []string
		for _, id := range idents {
			parts = append(parts, "keyof typeof "+id)
		}
		return strings.Join(parts, " | ")
	}
	fmt.Fprintf(&b, `
// Every declared type, field and constant is one the server sends.
export const everyLeadTypeSent: Missing<LeadUpdateType, %s> = true;
export const everyLeadFieldSent: Missing<keyof LeadUpdateMessage, %s> = true;
export const everyMetricsFieldSent: Missing<keyof MetricsUpdateMessage, %s> = true;
export const everyAnalyticsFieldSent: Missing<keyof AnalyticsUpdateMessage, %s> = true;
export const everyReloadFieldSent: Missing<keyof ReloadMessage, %s> = true;
export const clientMethods: Equal<typeof ClientMethods, { readonly leadUpdate: %q; readonly metricsUpdate: %q; readonly analyticsUpdate: %q; readonly reload: %q }> = true;
export const allGroup: Equal<typeof LEAD_UPDATES_GROUP, %q> = true;
export const leadGroupName: Equal<ReturnType<typeof leadGroup>, `+"`%s${number}`"+`> = true;
`,
		of(leads, ".type"), keys(leads), keys(metrics), keys(analytics), keys(reloads),
		notify.MethodLeadUpdate, notify.MethodMetricsUpdate, notify.MethodAnalyticsUpdate, notify.MethodReload, hub.DefaultGroup,
		strings.TrimSuffix(hub.LeadGroup(0), "0"))
	return b.Bytes()
}

// TestTypeScriptContract type-checks ts/ (leadupdates.ts and the generated
// golden.check.ts) with the pinned tsc in strict mode.
func TestTypeScriptContract(t *testing.T) {
	tsc := filepath.Join("ts", "node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		t.Fatalf("TypeScript is not installed in notify/ts: run `make deps` (or `npm ci --prefix notify/ts`): %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: the TypeScript contract check needs Node.js 20 or later")
	}
	cmd := exec.CommandContext(t.Context(), "node", tsc, "--noEmit", "--pretty", "false", "-p", "ts")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc -p notify/ts: %v\n%s", err, out)
	}
}

// msgpackLikeHub is configured as the hub's MessagePack protocol (msgpackFrame in
// hub/protocol.go) configures its encoder.
func msgpackLikeHub(w *bytes.Buffer) *msgpack.Encoder {
	e := msgpack.NewEncoder(w)
	e.SetCustomStructTag("json")
	e.UseCompactInts(true)
	return e
}

// wireNormalize turns a decoded value into what encoding/json decodes the same
// value to (float64 numbers, map[string]any objects), so that MessagePack
// and JSON decodings compare with reflect.DeepEqual.
func wireNormalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("MessagePack decoded to a value JSON cannot hold: %v: %#v", err, v)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func wireJSON(t *testing.T, msg any) map[string]any {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func wireMsgpack(t *testing.T, enc func(*bytes.Buffer) *msgpack.Encoder, msg any) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := enc(&buf).Encode(msg); err != nil {
		t.Fatalf("msgpack encode: %v", err)
	}
	v, err := msgpack.NewDecoder(&buf).DecodeInterface()
	if err != nil {
		t.Fatalf("msgpack decode: %v", err)
	}
	m, ok := wireNormalize(t, v).(map[string]any)
	if !ok {
		t.Fatalf("MessagePack decoded to %T, want a map", v)
	}
	return m
}

// TestMsgpackMatchesJSON checks that a MessagePack client of the hub receives
// the same fields and values as a JSON client, for every golden message.
func TestMsgpackMatchesJSON(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			want := wireJSON(t, c.msg)
			got := wireMsgpack(t, msgpackLikeHub, c.msg)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("MessagePack differs from JSON\n got: %v\nwant: %v", got, want)
			}
		})
	}
}

// TestMsgpackEncoderConfig checks that the contract's own fields do not
// depend on how the MessagePack encoder is configured: only the
// application's lead value does (its json tags need SetCustomStructTag).
func TestMsgpackEncoderConfig(t *testing.T) {
	configs := []struct {
		name string
		enc  func(*bytes.Buffer) *msgpack.Encoder
	}{
		{"default", func(w *bytes.Buffer) *msgpack.Encoder { return msgpack.NewEncoder(w) }},
		{"compact floats, sorted keys", func(w *bytes.Buffer) *msgpack.Encoder {
			e := msgpack.NewEncoder(w)
			e.UseCompactFloats(true)
			e.SetSortMapKeys(true)
			return e
		}},
		{"omit empty, array-encoded structs", func(w *bytes.Buffer) *msgpack.Encoder {
			e := msgpack.NewEncoder(w)
			e.SetOmitEmpty(true)
			e.UseArrayEncodedStructs(true)
			return e
		}},
	}
	for _, cfg := range configs {
		for _, c := range goldenCases() {
			t.Run(cfg.name+"/"+c.name, func(t *testing.T) {
				want := wireJSON(t, c.msg)
				got := wireMsgpack(t, cfg.enc, c.msg)
				delete(want, "lead")
				delete(got, "lead")
				if !reflect.DeepEqual(got, want) {
					t.Errorf("MessagePack differs from JSON\n got: %v\nwant: %v", got, want)
				}
			})
		}
	}
}

// TestMsgpackDecode checks that a Go client decoding MessagePack with json
// tags, as the hub encodes it, gets the message back.
func TestMsgpackDecode(t *testing.T) {
	want := notify.MetricsUpdateMessage{
		Type:      notify.TypeMetricsUpdate,
		Metrics:   notify.Metrics{TotalLeads: 3, ConversionRate: 0.5, LeadsBySource: map[string]int64{"linkedin": 3}, LeadsByStatus: map[string]int64{}},
		Timestamp: notify.Timestamp{Time: time.Date(2026, 11, 26, 18, 11, 29, 123e6, time.UTC)},
		Sequence:  7,
	}
	var buf bytes.Buffer
	if err := msgpackLikeHub(&buf).Encode(want); err != nil {
		t.Fatal(err)
	}
	d := msgpack.NewDecoder(&buf)
	d.SetCustomStructTag("json")
	var got notify.MetricsUpdateMessage
	if err := d.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestOmitted checks which fields are on the wire: the optional fields of a
// LeadUpdateMessage only when set (a score of 0 is set), every field of the
// metrics always.
func TestOmitted(t *testing.T) {
	ts := notify.Timestamp{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	tests := []struct {
		name string
		msg  any
		want []string // top-level keys
	}{
		{"zero optional fields", notify.LeadUpdateMessage{Type: notify.TypeLeadDeleted, Timestamp: ts},
			[]string{"timestamp", "type"}},
		{"zero scores are sent", notify.LeadUpdateMessage{Type: notify.TypeScoreUpdate, LeadID: 1, PreviousScore: floatPtr(0), NewScore: floatPtr(0), Timestamp: ts},
			[]string{"leadId", "newScore", "previousScore", "timestamp", "type"}},
		{"NaN and infinite scores are left out", notify.LeadUpdateMessage{Type: notify.TypeScoreUpdate, LeadID: 1, PreviousScore: floatPtr(math.NaN()), NewScore: floatPtr(math.Inf(1)), Timestamp: ts},
			[]string{"leadId", "timestamp", "type"}},
		{"nil lead is left out", notify.LeadUpdateMessage{Type: notify.TypeNewLead, LeadID: 1, Lead: nil, Timestamp: ts},
			[]string{"leadId", "timestamp", "type"}},
		{"zero metrics are sent", notify.MetricsUpdateMessage{Type: notify.TypeMetricsUpdate, Timestamp: ts},
			[]string{"metrics", "timestamp", "type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range []map[string]any{wireJSON(t, tt.msg), wireMsgpack(t, msgpackLikeHub, tt.msg)} {
				if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, tt.want) {
					t.Errorf("keys %v, want %v", got, tt.want)
				}
			}
		})
	}

	t.Run("metrics fields", func(t *testing.T) {
		want := []string{
			"activeHarvesters", "conversionRate", "dailyGrowth", "leadsBySource", "leadsByStatus", "newLeadsToday",
			"processedToday", "processingTime", "qualifiedLeads", "scoreAverage", "totalLeads", "weeklyGrowth",
		}
		b, err := json.Marshal(notify.Metrics{})
		if err != nil {
			t.Fatal(err)
		}
		if got, wantJSON := string(b), `{"totalLeads":0,"qualifiedLeads":0,"conversionRate":0,"activeHarvesters":0,"processingTime":0,"scoreAverage":0,"dailyGrowth":0,"weeklyGrowth":0,"newLeadsToday":0,"processedToday":0,"leadsBySource":{},"leadsByStatus":{}}`; got != wantJSON {
			t.Errorf("zero Metrics:\n got %s\nwant %s", got, wantJSON)
		}
		m := wireMsgpack(t, msgpackLikeHub, notify.Metrics{})
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, want) {
			t.Errorf("MessagePack keys %v, want %v", got, want)
		}
		for _, k := range []string{"leadsBySource", "leadsByStatus"} {
			if v, ok := m[k].(map[string]any); !ok || len(v) != 0 {
				t.Errorf("MessagePack %s = %#v, want an empty map", k, m[k])
			}
		}
	})
}

func TestTimestampMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"UTC", time.Date(2026, 11, 26, 18, 11, 29, 123e6, time.UTC), "2026-11-26T18:11:29.123Z"},
		{"other zone is converted", time.Date(2026, 11, 26, 13, 11, 29, 123e6, time.FixedZone("EST", -5*3600)), "2026-11-26T18:11:29.123Z"},
		{"zone across midnight", time.Date(2026, 1, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "2025-12-31T23:30:00.000Z"},
		{"no fraction gets three zeros", time.Date(2026, 11, 26, 18, 11, 29, 0, time.UTC), "2026-11-26T18:11:29.000Z"},
		{"trailing zeros kept", time.Date(2026, 11, 26, 18, 11, 29, 100e6, time.UTC), "2026-11-26T18:11:29.100Z"},
		{"nanoseconds truncated, not rounded", time.Date(2026, 11, 26, 18, 11, 29, 999999999, time.UTC), "2026-11-26T18:11:29.999Z"},
		{"zero", time.Time{}, "0001-01-01T00:00:00.000Z"},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC), "9999-12-31T23:59:59.999Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := notify.Timestamp{Time: tt.in}
			b, err := json.Marshal(ts)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(b), `"`+tt.want+`"`; got != want {
				t.Errorf("JSON %s, want %s", got, want)
			}
			text, err := ts.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if got := string(text); got != tt.want {
				t.Errorf("text %s, want %s", got, tt.want)
			}
			var buf bytes.Buffer
			if err := msgpackLikeHub(&buf).Encode(ts); err != nil {
				t.Fatal(err)
			}
			var got any
			if err := msgpack.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("MessagePack %#v, want %q", got, tt.want)
			}
		})
	}

	t.Run("year outside RFC 3339", func(t *testing.T) {
		for _, y := range []int{-1, 10000} {
			ts := notify.Timestamp{Time: time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)}
			if b, err := json.Marshal(ts); err == nil {
				t.Errorf("year %d: JSON %s, want an error", y, b)
			}
			if b, err := msgpack.Marshal(ts); err == nil {
				t.Errorf("year %d: MessagePack %x, want an error", y, b)
			}
		}
	})
}

func TestTimestampUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr bool
	}{
		{"milliseconds", `"2026-11-26T18:11:29.123Z"`, time.Date(2026, 11, 26, 18, 11, 29, 123e6, time.UTC), false},
		{"ASP.NET Core's seven digits", `"2026-11-26T18:11:29.1234567Z"`, time.Date(2026, 11, 26, 18, 11, 29, 123456700, time.UTC), false},
		{"no fraction, offset", `"2026-11-26T19:11:29+01:00"`, time.Date(2026, 11, 26, 18, 11, 29, 0, time.UTC), false},
		{"not RFC 3339", `"26/11/2026"`, time.Time{}, true},
		{"not a string", `1764180689123`, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got notify.Timestamp
			err := json.Unmarshal([]byte(tt.in), &got)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got.Time, tt.want)
			}
		})
	}

	t.Run("null leaves the value", func(t *testing.T) {
		want := time.Date(2026, 11, 26, 18, 11, 29, 0, time.UTC)
		got := notify.Timestamp{Time: want}
		if err := json.Unmarshal([]byte(`null`), &got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Errorf("got %v, want %v", got.Time, want)
		}
	})
}

// FuzzTimestamp checks that whatever RFC 3339 time a Go client decodes is
// sent again as the same instant, truncated to the millisecond.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"2026-11-26T18:11:29.123Z", "2026-11-26T18:11:29.1234567-05:30", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var ts notify.Timestamp
		if err := ts.UnmarshalText([]byte(s)); err != nil {
			return
		}
		b, err := json.Marshal(ts)
		if err != nil {
			if y := ts.UTC().Year(); y >= 0 && y <= 9999 {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		var back notify.Timestamp
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		if want := ts.UTC().Truncate(time.Millisecond); !back.Equal(want) || len(b) != len(`"2006-01-02T15:04:05.000Z"`) {
			t.Fatalf("%q -> %s -> %v, want %v", s, b, back.Time, want)
		}
	})
}

func TestGroups(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"all", hub.DefaultGroup, "LeadUpdates"},
		{"lead", hub.LeadGroup(42), "Lead_42"},
		{"large lead id", hub.LeadGroup(math.MaxInt64), "Lead_9223372036854775807"},
		{"lead method", notify.MethodLeadUpdate, "ReceiveLeadUpdate"},
		{"metrics method", notify.MethodMetricsUpdate, "ReceiveMetricsUpdate"},
		{"reload method", notify.MethodReload, "ReceiveReload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func BenchmarkMarshalLeadUpdate(b *testing.B) {
	msg := goldenCases()[0].msg
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		e := msgpackLikeHub(&buf)
		for b.Loop() {
			buf.Reset()
			if err := e.Encode(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
