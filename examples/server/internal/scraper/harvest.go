package scraper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/outage"
)

// Harvest runs one harvest of the job for source now: the simulated fetch,
// then 1 to WithBatch new leads stored in one INSERT, then a workflow start
// for each. It returns the ids of the stored leads. A failed fetch or
// insert is logged, counted and returned; a refused start (e.g. the runner
// is busy) is logged and counted only, the lead stays New. Run calls it;
// it is exported for tests and for a manual trigger.
func (s *Scraper) Harvest(ctx context.Context, source string) ([]int64, error) {
	job, ok := jobNames[source]
	if !ok {
		return nil, fmt.Errorf("scraper: unknown job %q", source)
	}
	s.active.Add(1)
	s.tel.active.Inc()
	defer func() {
		s.tel.active.Dec()
		s.active.Add(-1)
	}()
	logger := log.With(s.cfg.logger, "job", job)

	if err := s.cfg.fetch(ctx, source); err != nil {
		if ctx.Err() == nil {
			s.tel.errors.WithLabelValues(source, stageFetch).Inc()
			level.Warn(logger).Log("msg", "harvest fetch failed", "err", err)
		}
		return nil, fmt.Errorf("scraper: %s fetch: %w", job, err)
	}
	leads := s.generate(source)
	s.tel.harvested.WithLabelValues(source).Add(float64(len(leads)))
	if err := s.store(ctx, logger, source, leads); err != nil {
		return nil, fmt.Errorf("scraper: %s insert: %w", job, err)
	}
	s.tel.leads.WithLabelValues(source).Add(float64(len(leads)))
	ids := make([]int64, len(leads))
	for i, l := range leads {
		ids[i] = l.ID
		if err := s.starter.Start(ctx, l.ID); err != nil {
			s.tel.errors.WithLabelValues(source, stageStart).Inc()
			lv := level.Warn(logger)
			var hs interface{ HTTPStatus() int }
			if errors.As(err, &hs) && hs.HTTPStatus() == http.StatusServiceUnavailable {
				lv = level.Info(logger) // busy or shutting down: expected under load
			}
			lv.Log("msg", "workflow not started; the lead stays New", "lead_id", l.ID, "err", err)
		}
	}
	level.Debug(logger).Log("msg", "harvested", "leads", len(leads))
	return ids, nil
}

// Backoff of the retries of a harvest's insert while the database is
// unavailable: insertRetryBase doubling up to insertRetryMax.
const (
	insertRetryBase = 250 * time.Millisecond
	insertRetryMax  = 10 * time.Second
)

// store inserts the harvested leads in one statement. While the database
// is unavailable (outage.Is) it tries again with a growing pause, counted
// and logged, until the leads are stored or ctx ends: what was harvested is
// not lost to an outage. Any other error is returned at once.
func (s *Scraper) store(ctx context.Context, logger log.Logger, source string, leads []lead.Lead) error {
	delay := insertRetryBase
	for attempt := 1; ; attempt++ {
		err := s.db.WithContext(ctx).CreateInBatches(&leads, len(leads)).Error
		if err == nil {
			return nil
		}
		for i := range leads {
			leads[i].ID = 0 // not stored: let the next INSERT number them
		}
		if ctx.Err() != nil {
			return err
		}
		s.tel.errors.WithLabelValues(source, stageInsert).Inc()
		if !outage.Is(err) {
			level.Error(logger).Log("msg", "storing harvested leads failed", "leads", len(leads), "err", err)
			return err
		}
		s.tel.retries.WithLabelValues(stageInsert).Inc()
		level.Warn(logger).Log("msg", "database unavailable; harvested leads kept and retried", "leads", len(leads), "attempt", attempt, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			level.Warn(logger).Log("msg", "harvested leads not stored: stopping", "leads", len(leads))
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, insertRetryMax)
	}
}
