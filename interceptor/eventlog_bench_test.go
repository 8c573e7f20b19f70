package interceptor_test

import (
	"testing"

	"gorm.io/gorm"
)

// eventLogBench runs op on plain GORM and on GORM with the plugin
// WithEventLog, whose Sink adds one event per change to the transaction's
// batch as a *notify.Notifier WithLog does, alternating in blocks on the
// same table (see compare): the ratio is what logging every change in the
// writer's own transaction costs it (1.0 = free). Commits are durable
// (PostgreSQL's default synchronous_commit), the log's sequencer runs as
// in production, and the log knows the leads table (WithLeadTable), as the
// example server's does.
//
//	go test -run '^$' -bench EventLog ./interceptor/
func eventLogBench(b *testing.B, op func(db *gorm.DB, i int) error) {
	e := newLogEnv(b, postgresDB, nil)
	compare(b, e.plainOn(b), e.db, op)
	b.ReportMetric(float64(e.sink.calls.Load())/float64(b.N), "batches/op")
}

func BenchmarkEventLogCreate(b *testing.B) { eventLogBench(b, benchCreate) }

func BenchmarkEventLogCreateInBatches100(b *testing.B) { eventLogBench(b, benchCreateInBatches100) }

func BenchmarkEventLogUpdate(b *testing.B) { eventLogBench(b, benchUpdate()) }

// BenchmarkEventLogUpdateParallel4: 4 concurrent writers per operation.
func BenchmarkEventLogUpdateParallel4(b *testing.B) { eventLogBench(b, benchUpdateParallel4()) }
