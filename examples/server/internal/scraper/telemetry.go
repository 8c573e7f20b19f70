package scraper

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type telemetry struct {
	leads     *prometheus.CounterVec
	harvested *prometheus.CounterVec
	errors    *prometheus.CounterVec
	retries   *prometheus.CounterVec
	active    prometheus.Gauge
}

// The stages of a harvest that can fail, as counted.
const (
	stageFetch  = "fetch"
	stageInsert = "insert"
	stageStart  = "start"
)

func newTelemetry(reg prometheus.Registerer) (*telemetry, error) {
	t := &telemetry{
		leads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_scraper_leads_total",
			Help: "Leads the simulated scrapers stored, by source.",
		}, []string{"source"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_scraper_errors_total",
			Help: "Scraper failures by source and stage: fetch, insert (the database), start (the workflow refused or failed to start).",
		}, []string{"source", "stage"}),
		harvested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_scraper_harvested_total",
			Help: "Leads the simulated scrapers found, by source; each is stored (leadupdates_scraper_leads_total), retried while the database is away, or logged as lost.",
		}, []string{"source"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadupdates_scraper_retries_total",
			Help: "Retries by stage: insert (the database was unavailable; the harvested leads are kept and stored again).",
		}, []string{"stage"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadupdates_scraper_active_harvests",
			Help: "Harvests running now.",
		}),
	}
	if reg == nil {
		return t, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{t.leads, t.harvested, t.errors, t.retries, t.active} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scraper: register collectors: %w", err)
	}
	return t, nil
}
