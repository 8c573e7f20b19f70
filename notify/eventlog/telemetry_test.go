package eventlog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

func TestMetrics(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		reg := prometheus.NewPedanticRegistry()
		l := openLog(t, db, table(), eventlog.WithRegisterer(reg), eventlog.WithRetention(0))
		if err := l.Append(t.Context(), nil, ev(1, "X", 1), ev(2, "X", 2), ev(3, "X", 3)); err != nil {
			t.Fatal(err)
		}
		collect(t, l, 0, 3)
		if _, err := eventlog.Prune(t.Context(), l, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		stamped := 3.0
		if d.name == "sqlite" {
			stamped = 0 // the row id is the position: nothing to stamp
		}
		got := gather(t, reg)
		for name, want := range map[string]float64{
			"leadupdates_eventlog_appended_total": 3,
			"leadupdates_eventlog_head_position":  3,
			"leadupdates_eventlog_pruned_total":   3,
			"leadupdates_eventlog_stamped_total":  stamped,
		} {
			if got[name] != want {
				t.Errorf("%s = %v, want %v", name, got[name], want)
			}
		}
		if _, ok := got["leadupdates_eventlog_sequencer_lag_seconds"]; !ok {
			t.Error("no leadupdates_eventlog_sequencer_lag_seconds")
		}
		if _, err := eventlog.Open(t.Context(), db, eventlog.WithTable(table()), eventlog.WithRegisterer(reg)); err == nil ||
			!strings.Contains(err.Error(), "already registered") {
			t.Errorf("a second log on one registry: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	db := sqliteDB.open(t)
	for _, opts := range [][]eventlog.Option{
		{eventlog.WithTable("Bad-Name")},
		{eventlog.WithTable("a.b")}, // SQLite: no schema
		{eventlog.WithPollInterval(0)},
		{eventlog.WithPruneInterval(-1)},
	} {
		if l, err := eventlog.Open(t.Context(), db, opts...); err == nil {
			l.Close()
			t.Errorf("Open(%d options) succeeded", len(opts))
		}
	}
	for _, opts := range [][]eventlog.Option{
		{eventlog.WithLeadTable("Leads", "id")},
		{eventlog.WithLeadTable("leads", "a.id")},
		{eventlog.WithLeadTable("", "id")},
		{eventlog.WithLeadTable("no_such_table", "id")},
	} {
		pg, name := pgDB.open(t), table()
		t.Cleanup(func() { pg.Exec(`DROP TABLE IF EXISTS "` + name + `", "` + name + `_meta"`) })
		if l, err := eventlog.Open(t.Context(), pg, append(opts, eventlog.WithTable(name))...); err == nil {
			l.Close()
			t.Errorf("Open with a lead table %d succeeded", len(opts))
		}
	}
	if _, err := eventlog.Open(t.Context(), nil); err == nil {
		t.Error("Open(nil) succeeded")
	}
}

// gather returns the value of every counter and gauge of reg by name, and
// the sample count of every histogram.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
