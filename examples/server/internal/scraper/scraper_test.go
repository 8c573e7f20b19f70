package scraper_test

import (
	"context"
	"errors"
	"net/mail"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/scraper"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

func noFetch(context.Context, string) error { return nil }

func newScraper(t *testing.T, e *env, s scraper.Starter, opts ...scraper.Option) *scraper.Scraper {
	t.Helper()
	opts = append([]scraper.Option{scraper.WithFetch(noFetch), scraper.WithSeed(1)}, opts...)
	sc, err := scraper.New(e.db, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// checkLead reports what is invalid in l by the API's rules.
func checkLead(t *testing.T, l lead.Lead, owners []string) {
	t.Helper()
	if l.Name == "" || len(l.Name) > 200 || len(l.Company) > 200 || len(l.Phone) > 50 {
		t.Errorf("lead %d: bad name, company or phone: %+v", l.ID, l)
	}
	if !lead.ValidSource(l.Source) || l.Source == lead.SourceManual || l.Status != lead.StatusNew {
		t.Errorf("lead %d: source %q, status %q", l.ID, l.Source, l.Status)
	}
	if l.Email != "" {
		if a, err := mail.ParseAddress(l.Email); err != nil || a.Address != l.Email {
			t.Errorf("lead %d: email %q: %v", l.ID, l.Email, err)
		}
	}
	if l.Website != "" {
		if u, err := url.Parse(l.Website); err != nil || u.Scheme != "https" || u.Host == "" {
			t.Errorf("lead %d: website %q", l.ID, l.Website)
		}
	}
	if !slices.Contains(owners, l.Owner) {
		t.Errorf("lead %d: owner %q, want one of %q", l.ID, l.Owner, owners)
	}
	if l.Score != nil || l.ProcessedAt != nil || l.EnrichmentData != "" {
		t.Errorf("lead %d: not fresh: %+v", l.ID, l)
	}
}

func TestHarvest(t *testing.T) { testdb.Each(t, testHarvest) }

func testHarvest(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	st := &starter{}
	reg := prometheus.NewPedanticRegistry()
	owners := []string{"carol", ""}
	sc := newScraper(t, e, st, scraper.WithOwners(owners...), scraper.WithBatch(5), scraper.WithRegisterer(reg))
	var all []int64
	for _, source := range []string{lead.SourceGoogle, lead.SourceLinkedIn, lead.SourceFacebook, lead.SourceYellowPages} {
		for range 5 {
			ids, err := sc.Harvest(t.Context(), source)
			if err != nil {
				t.Fatalf("Harvest(%s): %v", source, err)
			}
			if len(ids) < 1 || len(ids) > 5 {
				t.Errorf("Harvest(%s) found %d leads, want 1–5", source, len(ids))
			}
			all = append(all, ids...)
		}
	}
	leads := e.leads(t)
	if len(leads) != len(all) {
		t.Fatalf("%d leads stored, harvests returned %d", len(leads), len(all))
	}
	for i, l := range leads {
		if l.ID != all[i] {
			t.Errorf("lead %d stored, harvest returned %d", l.ID, all[i])
		}
		checkLead(t, l, owners)
	}
	if got := st.got(); !reflect.DeepEqual(got, all) {
		t.Errorf("workflows started for %v, want %v", got, all)
	}
	if got := e.newLeads(t); !reflect.DeepEqual(got, all) {
		t.Errorf("interceptor reported NEW_LEAD %v, want %v", got, all)
	}
	if got := metric(t, reg, "leadupdates_scraper_leads_total"); got != float64(len(all)) {
		t.Errorf("leads_total = %v, want %d", got, len(all))
	}
	if _, err := sc.Harvest(t.Context(), lead.SourceManual); err == nil {
		t.Error("Harvest(Manual) succeeded")
	}
}

// metric sums every series of one family of reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestRun runs every job at a high rate until a lead of each source has
// been started, then stops it.
func TestRun(t *testing.T) { testdb.Each(t, testRun) }

func testRun(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	st := &starter{started: make(chan int64)}
	sc := newScraper(t, e, st, scraper.WithRate(60000))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	// Until a lead of every source has been started.
	seen := map[string]bool{}
	for len(seen) < 4 {
		var l lead.Lead
		if err := e.db.Take(&l, <-st.started).Error; err != nil {
			t.Error(err)
			break
		}
		seen[l.Source] = true
	}
	// Every job that has harvested is running (a job counts itself before
	// its first harvest).
	if got := sc.Jobs(); got != 4 {
		t.Errorf("Jobs() while running = %d, want 4", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if got := sc.Active(); got != 0 {
		t.Errorf("Active() after Run = %d", got)
	}
	if got := sc.Jobs(); got != 0 {
		t.Errorf("Jobs() after Run = %d", got)
	}
	sources := map[string]int{}
	for _, l := range e.leads(t) {
		checkLead(t, l, []string{"alice", "bob", ""})
		sources[l.Source]++
	}
	for _, s := range []string{lead.SourceGoogle, lead.SourceLinkedIn, lead.SourceFacebook, lead.SourceYellowPages} {
		if sources[s] == 0 {
			t.Errorf("no lead from %s: %v", s, sources)
		}
	}
}

// TestActive holds two harvests in their fetch and checks that Active
// counts them, and no longer once they finish.
func TestActive(t *testing.T) { testdb.Each(t, testActive) }

func testActive(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	entered := make(chan string)
	release := make(chan struct{})
	fetch := func(ctx context.Context, source string) error {
		entered <- source
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	reg := prometheus.NewPedanticRegistry()
	sc := newScraper(t, e, &starter{}, scraper.WithFetch(fetch), scraper.WithRegisterer(reg))
	if got := sc.Active(); got != 0 {
		t.Errorf("Active() before = %d", got)
	}
	var wg sync.WaitGroup
	for _, source := range []string{lead.SourceGoogle, lead.SourceYellowPages} {
		wg.Go(func() {
			if _, err := sc.Harvest(context.Background(), source); err != nil {
				t.Errorf("Harvest(%s): %v", source, err)
			}
		})
	}
	<-entered
	<-entered
	if got := sc.Active(); got != 2 {
		t.Errorf("Active() during two harvests = %d, want 2", got)
	}
	if got := metric(t, reg, "leadupdates_scraper_active_harvests"); got != 2 {
		t.Errorf("active_harvests = %v, want 2", got)
	}
	close(release)
	wg.Wait()
	if got := sc.Active(); got != 0 {
		t.Errorf("Active() after = %d", got)
	}
}

// TestClosedDB closes the database under a running Scraper: each harvest
// fails, is logged and counted, and Run goes on until its context ends.
func TestClosedDB(t *testing.T) { testdb.Each(t, testClosedDB) }

func testClosedDB(t *testing.T, d testdb.Dialect) {
	e := newEnv(t, d.Open)
	sqlDB, err := e.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	harvests := make(chan struct{})
	fetch := func(ctx context.Context, _ string) error {
		select {
		case harvests <- struct{}{}:
		case <-ctx.Done():
		}
		return nil
	}
	l := &logs{}
	reg := prometheus.NewPedanticRegistry()
	st := &starter{}
	sc := newScraper(t, e, st, scraper.WithFetch(fetch), scraper.WithRate(60000),
		scraper.WithJobs(lead.SourceLinkedIn), scraper.WithLogger(l), scraper.WithRegisterer(reg))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	// The third harvest began: the first two failed without stopping Run.
	for range 3 {
		<-harvests
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if got := l.grep("storing harvested leads failed"); len(got) < 2 {
		t.Errorf("logged %q, want at least 2 insert failures", got)
	}
	if got := metric(t, reg, "leadupdates_scraper_errors_total"); got < 2 {
		t.Errorf("errors_total = %v, want at least 2", got)
	}
	if got := st.got(); len(got) != 0 {
		t.Errorf("workflows started for %v", got)
	}
}

type busyError struct{}

func (busyError) Error() string   { return "workflow: too many workflows running" }
func (busyError) HTTPStatus() int { return 503 }

// TestStartRefused: a Starter that refuses is logged, the leads stay.
func TestStartRefused(t *testing.T) { testdb.Each(t, testStartRefused) }

func testStartRefused(t *testing.T, d testdb.Dialect) {
	for _, tc := range []struct {
		name  string
		err   error
		level string
	}{
		{"busy", busyError{}, "info"},
		{"other", errors.New("boom"), "warn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, d.Open)
			l := &logs{}
			sc := newScraper(t, e, &starter{err: tc.err}, scraper.WithLogger(l))
			ids, err := sc.Harvest(t.Context(), lead.SourceFacebook)
			if err != nil {
				t.Fatalf("Harvest: %v", err)
			}
			if got := len(e.leads(t)); got != len(ids) {
				t.Errorf("%d leads stored, want %d", got, len(ids))
			}
			if got := l.grep("workflow not started"); len(got) != len(ids) || !slices.ContainsFunc(got, func(s string) bool {
				return slices.Contains(strings.Fields(s), tc.level)
			}) {
				t.Errorf("logged %q, want %d lines at %s", got, len(ids), tc.level)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t, testdb.SQLite)
	for _, tc := range []struct {
		name string
		opts []scraper.Option
	}{
		{"rate", []scraper.Option{scraper.WithRate(0)}},
		{"batch", []scraper.Option{scraper.WithBatch(0)}},
		{"no jobs", []scraper.Option{scraper.WithJobs()}},
		{"manual job", []scraper.Option{scraper.WithJobs(lead.SourceManual)}},
		{"twice", []scraper.Option{scraper.WithJobs(lead.SourceGoogle, lead.SourceGoogle)}},
		{"no owners", []scraper.Option{scraper.WithOwners()}},
	} {
		if _, err := scraper.New(e.db, &starter{}, tc.opts...); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	if _, err := scraper.New(nil, &starter{}); err == nil {
		t.Error("New with a nil db succeeded")
	}
	if _, err := scraper.New(e.db, nil); err == nil {
		t.Error("New with a nil Starter succeeded")
	}
}
