package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/workflow"
	"github.com/leadupdates/leadupdates/interceptor"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

// newRunner returns a Runner without step delay or failures unless opts
// say otherwise, closed in Cleanup.
func newRunner(t *testing.T, e *env, n workflow.Notifier, opts ...workflow.Option) *workflow.Runner {
	t.Helper()
	opts = append([]workflow.Option{workflow.WithStepDelay(0), workflow.WithFailureRate(0), workflow.WithSeed(1)}, opts...)
	r, err := workflow.New(e.db, n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func check[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// The interceptor's batches of one run, after NEW_LEAD.
var (
	enrichAndScore = [][]string{
		{"STATUS New->Enriching"},
		{"ENRICHMENT_UPDATE", "STATUS Enriching->Enriched"},
		{"SCORE", "STATUS Enriched->Scored"},
		{"STATUS Scored->Vetted"},
	}
	qualified    = append(clone(enrichAndScore), []string{"STATUS Vetted->Qualified"}, []string{"STATUS Qualified->SyncedToCrm"})
	disqualified = append(clone(enrichAndScore), []string{"STATUS Vetted->Disqualified"})
)

func clone(b [][]string) [][]string { return append([][]string(nil), b...) }

func concat(parts ...[][]string) [][]string {
	var out [][]string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestProcessQualified(t *testing.T) { testdb.Each(t, testProcessQualified) }

func testProcessQualified(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	n := &recorder{}
	reg := prometheus.NewPedanticRegistry()
	r := newRunner(t, e, n, workflow.WithThreshold(0), workflow.WithRegisterer(reg))
	id := e.newLead(t, lead.Lead{Company: "Analytical Engines Ltd", Email: "ada@engines.example", Website: "https://www.engines.example"})
	if err := r.Process(t.Context(), id); err != nil {
		t.Fatalf("Process: %v", err)
	}
	check(t, "notifier", n.got(), []string{
		fmt.Sprintf("WORKFLOW_STARTED #%d LeadProcessing", id),
		fmt.Sprintf("WORKFLOW_COMPLETED #%d LeadProcessing", id),
	})
	check(t, "interceptor", e.changes(t), concat([][]string{{"NEW_LEAD"}}, qualified))

	l := e.get(t, id)
	if l.Status != lead.StatusSyncedToCrm || l.ProcessedAt == nil || l.Score == nil || *l.Score < 0 || *l.Score > 100 {
		t.Errorf("lead = status %s, processedAt %v, score %v; want SyncedToCrm, set, 0–100", l.Status, l.ProcessedAt, l.Score)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(l.EnrichmentData), &data); err != nil {
		t.Fatalf("enrichment data %q: %v", l.EnrichmentData, err)
	}
	for _, k := range []string{"employees", "industry", "location", "linkedinUrl", "domain"} {
		if data[k] == nil || data[k] == "" {
			t.Errorf("enrichment data %s lacks %q", l.EnrichmentData, k)
		}
	}
	if data["domain"] != "engines.example" || data["linkedinUrl"] != "https://www.linkedin.com/company/analytical-engines-ltd" {
		t.Errorf("enrichment data %s: wrong domain or linkedinUrl", l.EnrichmentData)
	}
	if got := metric(t, reg, "leadupdates_workflow_runs_total", "synced"); got != 1 {
		t.Errorf("synced runs = %v, want 1", got)
	}
}

// metric returns the value of one counter or gauge of reg, with label as
// its first label's value unless empty.
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// TestEventOrder checks the order a client sees, API.md's: the notifier's
// events and the interceptor's changes in one log. It holds when the
// interceptor delivers as the transaction commits (WithStrict), as the
// example server wires it.
func TestEventOrder(t *testing.T) { testdb.Each(t, testEventOrder) }

func testEventOrder(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open, interceptor.WithStrict())
	n := &recorder{}
	e.sink.mu.Lock()
	e.sink.mirror = n
	e.sink.mu.Unlock()
	wf := func(ev string, id int64) string { return fmt.Sprintf("WORKFLOW_%s #%d LeadProcessing", ev, id) }
	// process creates l, runs the workflow on it and returns the log's new
	// entries and the workflow's failure reason.
	process := func(l lead.Lead, opts ...workflow.Option) (int64, []string, string) {
		before := len(n.got())
		id := e.newLead(t, l)
		err := newRunner(t, e, n, opts...).Process(t.Context(), id)
		var fe *workflow.FailedError
		if err != nil && !errors.As(err, &fe) {
			t.Fatal(err)
		}
		reason := ""
		if fe != nil {
			reason = fe.Reason
		}
		return id, n.got()[before:], reason
	}
	enrichScore := []string{"STATUS New->Enriching", "ENRICHMENT_UPDATE", "STATUS Enriching->Enriched",
		"SCORE", "STATUS Enriched->Scored", "STATUS Scored->Vetted"}

	id, got, _ := process(lead.Lead{Status: lead.StatusFailed}, workflow.WithThreshold(0))
	check(t, "qualified", got, slices.Concat([]string{"NEW_LEAD", wf("STARTED", id), "STATUS Failed->New"}, enrichScore,
		[]string{"STATUS Vetted->Qualified", "STATUS Qualified->SyncedToCrm", wf("COMPLETED", id)}))

	id, got, _ = process(lead.Lead{Source: lead.SourceFacebook})
	check(t, "disqualified", got, slices.Concat([]string{"NEW_LEAD", wf("STARTED", id)}, enrichScore,
		[]string{"STATUS Vetted->Disqualified", wf("COMPLETED", id)}))

	id, got, reason := process(lead.Lead{}, workflow.WithFailureRate(1))
	check(t, "failed", got, []string{"NEW_LEAD", wf("STARTED", id), "STATUS New->Enriching",
		"STATUS Enriching->Failed", wf("FAILED", id) + ": " + reason})
}

func TestProcessDisqualifiedThenAgain(t *testing.T) { testdb.Each(t, testProcessDisqualifiedThenAgain) }

func testProcessDisqualifiedThenAgain(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	n := &recorder{}
	// A lead with nothing but a name from Facebook scores at most 46.
	r := newRunner(t, e, n)
	id := e.newLead(t, lead.Lead{Source: lead.SourceFacebook})
	if err := r.Process(t.Context(), id); err != nil {
		t.Fatalf("Process: %v", err)
	}
	first := e.get(t, id)
	if first.Status != lead.StatusDisqualified || first.ProcessedAt == nil {
		t.Fatalf("lead = %s, processedAt %v; want Disqualified, set", first.Status, first.ProcessedAt)
	}
	// Disqualified is processable: the workflow moves it back to New first.
	if err := r.Process(t.Context(), id); err != nil {
		t.Fatalf("second Process: %v", err)
	}
	check(t, "interceptor", e.changes(t), concat([][]string{{"NEW_LEAD"}}, disqualified,
		[][]string{{"STATUS Disqualified->New"}}, disqualified))
	check(t, "notifier", len(n.got()), 4)
	if second := e.get(t, id); second.ProcessedAt == nil || !second.ProcessedAt.After(*first.ProcessedAt) {
		t.Errorf("processedAt %v after a second run, want later than %v", second.ProcessedAt, first.ProcessedAt)
	}
}

func TestFailures(t *testing.T) { testdb.Each(t, testFailures) }

func testFailures(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	n := &recorder{}
	reg := prometheus.NewPedanticRegistry()
	failing := newRunner(t, e, n, workflow.WithFailureRate(1), workflow.WithRegisterer(reg))
	id := e.newLead(t, lead.Lead{})
	err := failing.Process(t.Context(), id)
	var fe *workflow.FailedError
	if !errors.As(err, &fe) || fe.Activity != "Enrich" || fe.LeadID != id {
		t.Fatalf("Process = %v, want a FailedError in Enrich", err)
	}
	reasons := []string{"enrichment provider timed out", "enrichment provider rate limit exceeded (HTTP 429)",
		"company domain could not be resolved"}
	if !slices.Contains(reasons, fe.Reason) {
		t.Errorf("reason %q, want one of %q", fe.Reason, reasons)
	}
	if l := e.get(t, id); l.Status != lead.StatusFailed || l.ProcessedAt != nil {
		t.Errorf("lead = %s, processedAt %v; want Failed, unset", l.Status, l.ProcessedAt)
	}
	if got := metric(t, reg, "leadupdates_workflow_runs_total", "failed"); got != 1 {
		t.Errorf("failed runs = %v, want 1", got)
	}

	// With no failures the Failed lead is processed again, from New.
	ok := newRunner(t, e, n, workflow.WithThreshold(0))
	if err := ok.Process(t.Context(), id); err != nil {
		t.Fatalf("Process at rate 0: %v", err)
	}
	check(t, "notifier", n.got(), []string{
		fmt.Sprintf("WORKFLOW_STARTED #%d LeadProcessing", id),
		fmt.Sprintf("WORKFLOW_FAILED #%d LeadProcessing: %s", id, fe.Reason),
		fmt.Sprintf("WORKFLOW_STARTED #%d LeadProcessing", id),
		fmt.Sprintf("WORKFLOW_COMPLETED #%d LeadProcessing", id),
	})
	check(t, "interceptor", e.changes(t), concat([][]string{
		{"NEW_LEAD"}, {"STATUS New->Enriching"}, {"STATUS Enriching->Failed"}, {"STATUS Failed->New"},
	}, qualified))
}

// TestFailureRate runs many leads at a rate between 0 and 1: every run
// ends completed or failed with a reason, and the lead's status agrees; at
// rate 0 none fails.
func TestFailureRate(t *testing.T) { testdb.Each(t, testFailureRate) }

func testFailureRate(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	n := &recorder{}
	r := newRunner(t, e, n, workflow.WithFailureRate(0.2), workflow.WithThreshold(0), workflow.WithSeed(7))
	failed := 0
	for range 20 {
		id := e.newLead(t, lead.Lead{})
		err := r.Process(t.Context(), id)
		l := e.get(t, id)
		var fe *workflow.FailedError
		switch {
		case err == nil && l.Status == lead.StatusSyncedToCrm:
		case errors.As(err, &fe) && fe.Reason != "" && l.Status == lead.StatusFailed:
			failed++
		default:
			t.Errorf("lead %d: Process = %v, status %s", id, err, l.Status)
		}
	}
	if failed == 0 || failed == 20 {
		t.Errorf("%d of 20 failed at rate 0.2 per activity", failed)
	}
	// At rate 0 none fails.
	r0 := newRunner(t, e, n, workflow.WithThreshold(0), workflow.WithSeed(7))
	for range 10 {
		id := e.newLead(t, lead.Lead{})
		if err := r0.Process(t.Context(), id); err != nil {
			t.Errorf("lead %d at rate 0: %v", id, err)
		}
	}
}

func TestNotifierNeverFailsWorkflow(t *testing.T) { testdb.Each(t, testNotifierNeverFailsWorkflow) }

func testNotifierNeverFailsWorkflow(t *testing.T, d testdb.Dialect) {
	for _, tc := range []struct {
		name string
		n    *recorder
	}{
		{"error", &recorder{err: errors.New("hub down")}},
		{"panic", &recorder{panic: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, d.Open)
			reg := prometheus.NewPedanticRegistry()
			r := newRunner(t, e, tc.n, workflow.WithThreshold(0), workflow.WithRegisterer(reg))
			id := e.newLead(t, lead.Lead{})
			if err := r.Process(t.Context(), id); err != nil {
				t.Fatalf("Process: %v", err)
			}
			if l := e.get(t, id); l.Status != lead.StatusSyncedToCrm {
				t.Errorf("status %s, want SyncedToCrm", l.Status)
			}
			// A failing workflow still fails only for its own reason.
			f := newRunner(t, e, tc.n, workflow.WithFailureRate(1), workflow.WithRegisterer(prometheus.NewRegistry()))
			id2 := e.newLead(t, lead.Lead{})
			var fe *workflow.FailedError
			if err := f.Process(t.Context(), id2); !errors.As(err, &fe) || fe.Activity != "Enrich" {
				t.Fatalf("Process at rate 1 = %v", err)
			}
			if l := e.get(t, id2); l.Status != lead.StatusFailed {
				t.Errorf("status %s, want Failed", l.Status)
			}
			if got := metric(t, reg, "leadupdates_workflow_notify_errors_total", ""); got != 2 {
				t.Errorf("notify errors = %v, want 2", got)
			}
			check(t, "events", len(tc.n.got()), 4)
		})
	}
}

func TestStartRefusals(t *testing.T) { testdb.Each(t, testStartRefusals) }

func testStartRefusals(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	release := make(chan struct{})
	reached := make(chan string, 1)
	n := &recorder{block: map[string]chan struct{}{"WORKFLOW_STARTED": release}, reached: reached}
	r, err := workflow.New(e.db, n, workflow.WithStepDelay(0), workflow.WithFailureRate(0), workflow.WithConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	running := e.newLead(t, lead.Lead{})
	other := e.newLead(t, lead.Lead{})
	synced := e.newLead(t, lead.Lead{Status: lead.StatusSyncedToCrm})
	deleted := e.newLead(t, lead.Lead{})
	if err := e.db.Delete(&lead.Lead{}, deleted).Error; err != nil {
		t.Fatal(err)
	}

	if err := r.Start(t.Context(), running); err != nil {
		t.Fatalf("Start: %v", err)
	}
	<-reached // the workflow is running and held in WORKFLOW_STARTED
	if got := r.Running(); got != 1 {
		t.Errorf("Running() = %d, want 1", got)
	}
	for _, tc := range []struct {
		name   string
		id     int64
		want   error
		status int
	}{
		{"already running", running, workflow.ErrAlreadyRunning, http.StatusConflict},
		{"busy", other, workflow.ErrBusy, http.StatusServiceUnavailable},
	} {
		checkRefusal(t, tc.name, r.Start(t.Context(), tc.id), tc.want, tc.status)
	}
	close(release)
	if err := r.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := r.Running(); got != 0 {
		t.Errorf("Running() after Close = %d", got)
	}
	// Close waited for the held workflow instead of cancelling it.
	if l := e.get(t, running); l.Status != lead.StatusDisqualified && l.Status != lead.StatusSyncedToCrm {
		t.Errorf("held lead ended %s, want completed", l.Status)
	}
	checkRefusal(t, "closed", r.Start(t.Context(), other), workflow.ErrClosed, http.StatusServiceUnavailable)
	checkRefusal(t, "closed Process", r.Process(t.Context(), other), workflow.ErrClosed, http.StatusServiceUnavailable)

	r2 := newRunner(t, e, &recorder{})
	for _, tc := range []struct {
		name   string
		id     int64
		want   error
		status int
	}{
		{"not found", 1 << 40, workflow.ErrNotFound, http.StatusNotFound},
		{"deleted", deleted, workflow.ErrNotFound, http.StatusNotFound},
		{"not processable", synced, workflow.ErrNotProcessable, http.StatusConflict},
	} {
		checkRefusal(t, tc.name, r2.Start(t.Context(), tc.id), tc.want, tc.status)
		checkRefusal(t, tc.name+" Process", r2.Process(t.Context(), tc.id), tc.want, tc.status)
	}
	if err := r2.Start(t.Context(), other); err != nil {
		t.Errorf("Start after the refusals: %v", err)
	}
}

func checkRefusal(t *testing.T, name string, err, want error, status int) {
	t.Helper()
	var hs interface{ HTTPStatus() int }
	switch {
	case !errors.Is(err, want):
		t.Errorf("%s: err = %v, want %v", name, err, want)
	case !errors.As(err, &hs) || hs.HTTPStatus() != status:
		t.Errorf("%s: %v has no HTTPStatus %d", name, err, status)
	case err.(interface{ HTTPStatus() int }).HTTPStatus() != status:
		t.Errorf("%s: the error itself must carry HTTPStatus", name)
	}
}

func TestConcurrentStartSameLead(t *testing.T) { testdb.Each(t, testConcurrentStartSameLead) }

func testConcurrentStartSameLead(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	release := make(chan struct{})
	n := &recorder{block: map[string]chan struct{}{"WORKFLOW_STARTED": release}}
	r := newRunner(t, e, n, workflow.WithThreshold(0))
	id := e.newLead(t, lead.Lead{})
	const callers = 16
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() { errs <- r.Start(context.Background(), id) })
	}
	wg.Wait()
	close(errs)
	started := 0
	for err := range errs {
		switch {
		case err == nil:
			started++
		case !errors.Is(err, workflow.ErrAlreadyRunning):
			t.Errorf("Start = %v, want nil or ErrAlreadyRunning", err)
		}
	}
	if started != 1 {
		t.Errorf("%d workflows started, want 1", started)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, "interceptor", e.changes(t), concat([][]string{{"NEW_LEAD"}}, qualified))
}

// TestConcurrentChange changes or deletes the lead while the workflow is
// held: the conditional update sees it, the workflow fails, and the other
// writer's change stands.
func TestConcurrentChange(t *testing.T) { testdb.Each(t, testConcurrentChange) }

func testConcurrentChange(t *testing.T, d testdb.Dialect) {
	for _, tc := range []struct {
		name   string
		change func(e *env, id int64) error
		want   string
	}{
		{"status", func(e *env, id int64) error {
			return e.db.Model(&lead.Lead{ID: id}).Update("status", lead.StatusDisqualified).Error
		}, lead.StatusDisqualified},
		{"delete", func(e *env, id int64) error { return e.db.Delete(&lead.Lead{}, id).Error }, lead.StatusNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, d.Open)
			release := make(chan struct{})
			reached := make(chan string, 1)
			n := &recorder{block: map[string]chan struct{}{"WORKFLOW_STARTED": release}, reached: reached}
			r := newRunner(t, e, n)
			id := e.newLead(t, lead.Lead{})
			done := make(chan error, 1)
			go func() { done <- r.Process(context.Background(), id) }()
			<-reached
			if err := tc.change(e, id); err != nil {
				t.Fatal(err)
			}
			close(release)
			err := <-done
			var fe *workflow.FailedError
			if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "changed or deleted") {
				t.Fatalf("Process = %v, want a FailedError for the concurrent change", err)
			}
			if l := e.get(t, id); l.Status != tc.want {
				t.Errorf("status %s, want %s (the other writer's)", l.Status, tc.want)
			}
			got := n.got()
			if len(got) != 2 || !strings.HasPrefix(got[1], "WORKFLOW_FAILED") {
				t.Errorf("events %q, want STARTED and FAILED", got)
			}
		})
	}
}

// TestCloseCancels closes a Runner whose workflow would take an hour: Close
// returns when its context is done, the workflow is cancelled, the lead is
// Failed and WORKFLOW_FAILED says why.
func TestCloseCancels(t *testing.T) { testdb.Each(t, testCloseCancels) }

func testCloseCancels(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	n := &recorder{}
	r, err := workflow.New(e.db, n, workflow.WithStepDelay(time.Hour), workflow.WithFailureRate(0))
	if err != nil {
		t.Fatal(err)
	}
	id := e.newLead(t, lead.Lead{})
	if err := r.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if got := r.Running(); got != 0 {
		t.Errorf("Running() after Close = %d", got)
	}
	if l := e.get(t, id); l.Status != lead.StatusFailed {
		t.Errorf("status %s, want Failed", l.Status)
	}
	check(t, "notifier", n.got(), []string{
		fmt.Sprintf("WORKFLOW_STARTED #%d LeadProcessing", id),
		fmt.Sprintf("WORKFLOW_FAILED #%d LeadProcessing: workflow cancelled", id),
	})
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t, testdb.SQLite)
	for _, tc := range []struct {
		name string
		opts []workflow.Option
	}{
		{"failure rate", []workflow.Option{workflow.WithFailureRate(1.5)}},
		{"delay", []workflow.Option{workflow.WithStepDelay(-1)}},
		{"concurrency", []workflow.Option{workflow.WithConcurrency(0)}},
		{"threshold", []workflow.Option{workflow.WithThreshold(101)}},
	} {
		if _, err := workflow.New(e.db, &recorder{}, tc.opts...); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	if _, err := workflow.New(nil, &recorder{}); err == nil {
		t.Error("New with a nil db succeeded")
	}
	if _, err := workflow.New(e.db, nil); err == nil {
		t.Error("New with a nil Notifier succeeded")
	}
}

// TestManyAtOnce starts as many workflows as the Runner allows and closes
// it: Close waits for all of them, and each lead completed.
func TestManyAtOnce(t *testing.T) { testdb.Each(t, testManyAtOnce) }

func testManyAtOnce(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	n := &recorder{}
	const leads = 8
	r, err := workflow.New(e.db, n, workflow.WithStepDelay(0), workflow.WithFailureRate(0),
		workflow.WithThreshold(0), workflow.WithConcurrency(leads))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range leads {
		ids = append(ids, e.newLead(t, lead.Lead{}))
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if err := r.Start(context.Background(), id); err != nil {
				t.Errorf("Start(%d): %v", id, err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if l := e.get(t, id); l.Status != lead.StatusSyncedToCrm {
			t.Errorf("lead %d: %s, want SyncedToCrm", id, l.Status)
		}
	}
	if got := len(n.got()); got != 2*leads {
		t.Errorf("%d events, want %d", got, 2*leads)
	}
}
