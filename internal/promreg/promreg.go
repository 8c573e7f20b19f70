// Package promreg is how every package of this module registers its
// Prometheus collectors: with promauto.With on the caller's
// prometheus.Registerer (nil: create the collectors, register none), and a
// second set of the same collectors on one registry is an error returned by
// the package's New, never a panic.
//
//	f := promreg.With("notify", reg)
//	sent := f.NewCounter(prometheus.CounterOpts{Name: "leadupdates_notify_events_sent_total", Help: "..."})
//	if err := f.Err(); err != nil {
//		return nil, err // nothing of this set stays registered
//	}
//
// A Factory is not safe for concurrent use; it is meant for one constructor.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// A Factory creates collectors as promauto.With(reg) does, but records a
// registration failure instead of panicking.
type Factory struct {
	promauto.Factory
	r *recorder
}

// With returns a Factory registering on reg; pkg names the package in
// errors. A nil reg creates collectors without registering them.
func With(pkg string, reg prometheus.Registerer) *Factory {
	r := &recorder{pkg: pkg, reg: reg}
	if reg == nil {
		return &Factory{Factory: promauto.With(nil), r: r}
	}
	return &Factory{Factory: promauto.With(r), r: r}
}

// Err returns the first registration failure, after unregistering every
// collector this Factory registered, so that a failed constructor leaves
// the registry as it found it. A collector already registered is reported
// as "<pkg>: metrics already registered on this registry; ...", wrapping
// the prometheus.AlreadyRegisteredError.
func (f *Factory) Err() error {
	r := f.r
	if r.err == nil {
		return nil
	}
	for _, c := range r.done {
		r.reg.Unregister(c)
	}
	r.done = nil
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(r.err, &are) {
		return fmt.Errorf("%s: metrics already registered on this registry; "+
			"give each instance its own, e.g. prometheus.WrapRegistererWith(prometheus.Labels{\"instance\": ...}, reg): %w", r.pkg, r.err)
	}
	return fmt.Errorf("%s: register metrics: %w", r.pkg, r.err)
}

// recorder is the Registerer promauto sees: MustRegister keeps the first
// error instead of panicking, and what it registered, to undo it.
type recorder struct {
	pkg  string
	reg  prometheus.Registerer
	done []prometheus.Collector
	err  error
}

func (r *recorder) Register(c prometheus.Collector) error {
	err := r.reg.Register(c)
	if err == nil {
		r.done = append(r.done, c)
	}
	return err
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil && r.err == nil {
			r.err = err
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }
