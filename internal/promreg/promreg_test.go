package promreg_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadupdates/leadupdates/internal/promreg"
)

// build creates the collectors of one instance of a package.
func build(reg prometheus.Registerer) (prometheus.Counter, error) {
	f := promreg.With("pkg", reg)
	c := f.NewCounter(prometheus.CounterOpts{Name: "test_a_total", Help: "a"})
	f.NewGauge(prometheus.GaugeOpts{Name: "test_b", Help: "b"})
	return c, f.Err()
}

func TestSecondInstanceFailsClearly(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c, err := build(reg)
	if err != nil {
		t.Fatal(err)
	}
	c.Inc()
	_, err = build(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || !strings.HasPrefix(err.Error(), "pkg: metrics already registered on this registry") {
		t.Fatalf("second instance: %v", err)
	}
	// The first instance's collectors are still the registered ones.
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 2 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatalf("gathered %v, %v", mfs, err)
	}
}

func TestFailureUndoesPartialRegistration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_b", Help: "b"}))
	if _, err := build(reg); err == nil {
		t.Fatal("no error")
	}
	// test_a_total, registered before test_b failed, was removed again.
	mfs, _ := reg.Gather()
	if len(mfs) != 1 || mfs[0].GetName() != "test_b" {
		t.Fatalf("registry holds %v", mfs)
	}
}

func TestWrappedRegistriesWork(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for _, id := range []string{"1", "2"} {
		if _, err := build(prometheus.WrapRegistererWith(prometheus.Labels{"instance": id}, reg)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNilRegistersNothing(t *testing.T) {
	for range 2 {
		c, err := build(nil)
		if err != nil || c == nil {
			t.Fatal(err)
		}
		c.Inc()
	}
}
