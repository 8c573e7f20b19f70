package interceptor_test

import (
	"flag"
	"runtime"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/interceptor"
)

var strictBench = flag.Bool("strict", false,
	"benchmarks: run the plugin WithStrict (the sink in the committing goroutine, no queue)")

// interleave runs op on plain GORM and on GORM with the plugin, alternating
// in blocks on the same table, and reports both costs and the throughput
// ratio plugin/plain (1.0 = free), and the heap allocations of each side.
// ns/op is the sum of both. The sink only counts (changes/op).
//
//	go test -run '^$' -bench Interceptor -benchtime 2000x ./interceptor/ [-args -strict]
func interleave(b *testing.B, op func(db *gorm.DB, i int) error) {
	var opts []interceptor.Option
	if *strictBench {
		opts = append(opts, interceptor.WithStrict())
	}
	e := newEnv(b, postgresDB, nil, opts...)
	e.rec.discard = true
	plain := e.plainOn(b)
	compare(b, plain, e.db, op)
	e.flush(b)
	b.ReportMetric(float64(e.rec.count)/float64(b.N), "changes/op")
}

// compare runs op alternately on plain and on withPlugin, in blocks, and
// reports each side's cost, the ratio plain/plugin and the allocations.
func compare(b *testing.B, plain, withPlugin *gorm.DB, op func(db *gorm.DB, i int) error) {
	const block = 50
	var tPlain, tPlugin time.Duration
	var aPlain, aPlugin uint64 // heap allocations, counted per block
	var ms runtime.MemStats
	b.ResetTimer()
	for i := 0; i < b.N; i += block {
		n := min(block, b.N-i)
		for k, db := range []*gorm.DB{plain, withPlugin} {
			if (i/block)%2 == 1 { // alternate which goes first
				db = []*gorm.DB{withPlugin, plain}[k]
			}
			runtime.ReadMemStats(&ms)
			allocs := ms.Mallocs
			start := time.Now()
			for j := range n {
				if err := op(db, i+j); err != nil {
					b.Fatal(err)
				}
			}
			d := time.Since(start)
			runtime.ReadMemStats(&ms)
			if db == plain {
				tPlain += d
				aPlain += ms.Mallocs - allocs
			} else {
				tPlugin += d
				aPlugin += ms.Mallocs - allocs
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(tPlain.Nanoseconds())/float64(b.N), "plain-ns/op")
	b.ReportMetric(float64(tPlugin.Nanoseconds())/float64(b.N), "plugin-ns/op")
	b.ReportMetric(float64(tPlain)/float64(tPlugin), "ratio")
	// Allocations of each side's blocks (the delivery goroutine's count
	// where they happen, mostly in the plugin's blocks).
	b.ReportMetric(float64(aPlain)/float64(b.N), "plain-allocs/op")
	b.ReportMetric(float64(aPlugin)/float64(b.N), "plugin-allocs/op")
}

func BenchmarkInterceptorCreate(b *testing.B) { interleave(b, benchCreate) }

func BenchmarkInterceptorCreateInBatches100(b *testing.B) { interleave(b, benchCreateInBatches100) }

func BenchmarkInterceptorUpdate(b *testing.B) { interleave(b, benchUpdate()) }

// BenchmarkInterceptorUpdateParallel4 runs 4 writers per operation block,
// each updating its own rows.
func BenchmarkInterceptorUpdateParallel4(b *testing.B) { interleave(b, benchUpdateParallel4()) }

// The operations of the benchmarks, shared by the plugin's own
// (Interceptor*) and those of its event log (EventLog*).

func benchCreate(db *gorm.DB, _ int) error {
	return db.Create(&Lead{Name: "a", Status: "new"}).Error
}

func benchCreateInBatches100(db *gorm.DB, _ int) error {
	rows := make([]Lead, 100)
	for i := range rows {
		rows[i] = Lead{Name: "a", Status: "new"}
	}
	return db.CreateInBatches(rows, 100).Error
}

// benchUpdate updates one of 100 rows it creates first. Its values come
// from a count of its own calls, not from i, which both sides of compare
// are given: every update changes its row, whichever side runs it.
func benchUpdate() func(db *gorm.DB, i int) error {
	statuses := []string{"new", "contacted"}
	seeded := false
	calls := 0
	return func(db *gorm.DB, _ int) error {
		calls++
		i := calls
		if !seeded {
			seeded = true
			rows := make([]Lead, 100)
			if err := db.CreateInBatches(rows, 100).Error; err != nil {
				return err
			}
		}
		return db.Model(&Lead{ID: uint(i%100 + 1)}).Updates(map[string]any{"status": statuses[i%2], "score": i}).Error
	}
}

// benchUpdateParallel4 has 4 writers update a row each, their own of 100,
// with values from a count of its calls (see benchUpdate).
func benchUpdateParallel4() func(db *gorm.DB, i int) error {
	seeded := false
	calls := 0
	return func(db *gorm.DB, _ int) error {
		calls++
		i := calls
		if !seeded {
			seeded = true
			if err := db.CreateInBatches(make([]Lead, 100), 100).Error; err != nil {
				return err
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for w := range 4 {
			wg.Go(func() {
				errs[w] = db.Model(&Lead{ID: uint(w*25 + i%25 + 1)}).Updates(map[string]any{"status": "s", "score": i}).Error
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}
