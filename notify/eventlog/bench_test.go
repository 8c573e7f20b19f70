package eventlog_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/notify/eventlog"
)

// benchLead is the small leads table of the write benchmarks.
type benchLead struct {
	ID        int64 `gorm:"primaryKey"`
	Name      string
	Status    string
	Score     float64
	UpdatedAt time.Time
}

// benchPayload is a typical lead message (a STATUS_UPDATE without the lead).
var benchPayload = []byte(`{"type":"STATUS_UPDATE","leadId":123456,"previousStatus":"Enriched","newStatus":"Scored","timestamp":"2026-12-03T21:00:00.000Z","message":"scored by the workflow"}`)

// benchDB opens PostgreSQL with durable commits (synchronous_commit on,
// the default, set explicitly), a log and a leads table of its own.
func benchDB(b *testing.B, opts ...eventlog.Option) (*gorm.DB, *eventlog.Log, string) {
	b.Helper()
	db := openGorm(b, postgres.Open(pgDSN()+"&synchronous_commit=on"))
	var sc string
	if err := db.Raw(`SHOW synchronous_commit`).Scan(&sc).Error; err != nil || sc != "on" {
		b.Fatalf("synchronous_commit = %q, %v", sc, err)
	}
	name := table()
	leads := name + "_leads"
	if err := db.Table(leads).AutoMigrate(&benchLead{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + leads + `"`) })
	// The log knows the leads table, as the example server's does; only
	// AppendBatch with Batch.Wrote makes use of it.
	opts = append([]eventlog.Option{eventlog.WithLeadTable(leads, "id")}, opts...)
	return db, openLog(b, db, name, opts...), leads
}

// waitHead waits until l has positioned want events.
func waitHead(b *testing.B, l *eventlog.Log, want uint64) {
	if err := eventlog.WaitHead(b.Context(), l, want); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWriteCost compares, side by side in one run, a plain GORM write
// transaction with the same transaction appending its events to the log
// (and the sequencer positioning them: each logged block ends when its
// events have positions). The two alternate in blocks of about 50 events,
// so that both see the same machine. ratio = plain time / logged time, the
// median over rounds (1 = free; the goal is >= 0.85); committed-µs/op is the
// mean logged time up to the last COMMIT of a block, without the wait for
// the last positions.
func BenchmarkWriteCost(b *testing.B) {
	type op func(db *gorm.DB, leads string, l *eventlog.Log, n int) (events int, err error)
	ctx := context.Background()
	insert := func(k int) op {
		return func(db *gorm.DB, leads string, l *eventlog.Log, n int) (int, error) {
			rows := make([]benchLead, k)
			for i := range rows {
				rows[i] = benchLead{Name: fmt.Sprintf("lead %d-%d", n, i), Status: "New", Score: 1}
			}
			err := db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Table(leads).Create(&rows).Error; err != nil {
					return err
				}
				if l == nil {
					return nil
				}
				evs := make([]eventlog.Event, k)
				for i, r := range rows {
					evs[i] = eventlog.Event{LeadID: r.ID, Type: "NEW_LEAD", Payload: benchPayload}
				}
				return l.Append(ctx, tx.Statement.ConnPool, evs...)
			})
			if err == nil && l != nil {
				l.Committed()
			}
			return k, err
		}
	}
	// update appends with the log's own lock, or (wrote) saying that the
	// transaction wrote the lead's row, which spares it.
	update := func(wrote bool) op {
		return func(db *gorm.DB, leads string, l *eventlog.Log, n int) (int, error) {
			id := int64(n%100 + 1)
			err := db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Table(leads).Where("id = ?", id).Update("status", fmt.Sprintf("S%d", n)).Error; err != nil {
					return err
				}
				if l == nil {
					return nil
				}
				b := eventlog.NewBatch()
				b.Add(eventlog.Event{LeadID: id, Type: "STATUS_UPDATE", Payload: benchPayload})
				if wrote {
					b.Wrote(leads, id)
				}
				return l.AppendBatch(ctx, tx.Statement.ConnPool, b)
			})
			if err == nil && l != nil {
				l.Committed()
			}
			return 1, err
		}
	}
	cases := []struct {
		name    string
		op      op
		unit    int // events per operation
		writers int
	}{
		{"insert", insert(1), 1, 1},
		{"insert100", insert(100), 100, 1},
		{"update", update(false), 1, 1},
		{"update_wrote", update(true), 1, 1},
		{"insert_4writers", insert(1), 1, 4},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			db, l, leads := benchDB(b)
			if _, err := insert(100)(db, leads, nil, 0); err != nil { // rows to update
				b.Fatal(err)
			}
			var (
				events   uint64
				appended time.Duration // logged blocks until their last COMMIT
			)
			// block runs n operations with or without the log and returns
			// the time they took (for the log: until they have positions).
			block := func(n, from int, logged bool) time.Duration {
				var lg *eventlog.Log
				if logged {
					lg = l
				}
				var (
					wg  sync.WaitGroup
					mu  sync.Mutex
					evs int
				)
				start := time.Now()
				for w := range c.writers {
					wg.Go(func() {
						for i := w; i < n; i += c.writers {
							k, err := c.op(db, leads, lg, from+i)
							if err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							evs += k
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if logged {
					appended += time.Since(start)
					events += uint64(evs)
					waitHead(b, l, events)
				}
				return time.Since(start)
			}
			block(20, 0, false) // warm both paths up (connections, statement caches)
			block(20, 0, true)
			// Rounds of one plain and one logged block, in alternating
			// order; the machine is shared, so each round's ratio compares
			// two neighbouring blocks, and the median ratio is reported.
			var plain, logged, ratios []float64
			size := max(1, 50/c.unit) // operations per block: ~50 events
			b.ResetTimer()
			appended = 0
			ops := 0 // logged operations
			// At least minRounds rounds, whatever b.N: the ratio is a median.
			for done, round := 0, 0; done < b.N || round < minRounds; round++ {
				n := size
				if done < b.N {
					n = min(size, b.N-done)
				}
				var p, l time.Duration
				if round%2 == 0 {
					p = block(n, done, false)
					l = block(n, done, true)
				} else {
					l = block(n, done, true)
					p = block(n, done, false)
				}
				plain = append(plain, float64(p.Nanoseconds())/float64(n))
				logged = append(logged, float64(l.Nanoseconds())/float64(n))
				ratios = append(ratios, float64(p)/float64(l))
				done += n
				ops += n
			}
			b.StopTimer()
			b.ReportMetric(median(logged), "ns/op")
			b.ReportMetric(median(plain)/1e3, "plain-µs/op")
			b.ReportMetric(median(logged)/1e3, "logged-µs/op")
			b.ReportMetric(float64(appended.Nanoseconds())/float64(ops)/1e3, "committed-µs/op")
			b.ReportMetric(median(ratios), "ratio")
			b.ReportMetric(float64(len(ratios)), "rounds")
		})
	}
}

// minRounds is the fewest rounds BenchmarkWriteCost runs per case.
const minRounds = 20

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkStamp measures the sequencer: b.N events committed unpositioned,
// in Appends of 1, 100 or 1000 events (a row each on PostgreSQL), then the
// time until all have positions (ns/op per event), and what the table and
// its indexes take per event, as written (with the row versions the
// stamping replaced) and compact (as after vacuum). Payloads differ as a
// workflow's would (lead id, time), so that compression is not flattered.
func BenchmarkStamp(b *testing.B) {
	for _, per := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("per_append=%d", per), func(b *testing.B) { benchStamp(b, per) })
	}
}

func benchStamp(b *testing.B, per int) {
	db, l, _ := benchDB(b, eventlog.WithPollInterval(time.Hour))
	s := sqlDB(b, db)
	ctx := b.Context()
	b.StopTimer()
	for start := 0; start < b.N; start += 1000 {
		tx, err := s.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		// Several Appends in one transaction, for the setup's speed: each
		// is a row of its own, as in a transaction of its own.
		for from := start; from < min(start+1000, b.N); from += per {
			var evs []eventlog.Event
			for i := from; i < min(from+per, start+1000, b.N); i++ {
				p := fmt.Sprintf(`{"type":"STATUS_UPDATE","leadId":%d,"previousStatus":"Enriched","newStatus":"Scored","timestamp":"2026-12-03T21:%02d:%02d.%03dZ","message":"scored by the workflow"}`,
					100000+i, i/60000%60, i/1000%60, i%1000)
				evs = append(evs, eventlog.Event{LeadID: int64(i%500 + 1), Type: "STATUS_UPDATE", Audience: "owner-7", Payload: []byte(p)})
			}
			if err := l.Append(ctx, tx, evs...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	l.Committed()
	waitHead(b, l, uint64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if b.N >= 10000 {
		size := func(table string) float64 {
			var n int64
			if err := s.QueryRowContext(ctx, `SELECT pg_total_relation_size($1)`, table).Scan(&n); err != nil {
				b.Fatal(err)
			}
			return float64(n) / float64(b.N)
		}
		b.ReportMetric(size(l.Table()), "B/event")
		// The same rows without the versions the stamping left behind, as
		// vacuum would leave them (VACUUM itself cannot drop them while
		// any other session of the cluster holds an older snapshot).
		compact := strings.Trim(l.Table(), `"`) + "_compact"
		for _, q := range []string{
			`CREATE TABLE "` + compact + `" (LIKE ` + l.Table() + ` INCLUDING ALL)`,
			`INSERT INTO "` + compact + `" SELECT * FROM ` + l.Table(),
		} {
			if _, err := s.ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		defer s.Exec(`DROP TABLE "` + compact + `"`)
		b.ReportMetric(size(`"`+compact+`"`), "B/event-compact")
	}
}

// BenchmarkStampBacklog measures the sequencer on a log of 100,000
// stamped rows that vacuum has not visited (autovacuum off on its table:
// with the default thresholds, a large log waits for a fifth of its rows
// to be dead): the time from one event's Append to its position (ns/op),
// with the sequencer scanning from its bound (bound-µs/op) and from the
// first id (first-µs/op), alternating in blocks on the same log; ratio =
// first / bound. The time includes the sequencer's pacing (10 ms). With
// snapshot_held, another session holds a snapshot taken before the rows
// were stamped (a long report, pg_dump), so that their old versions' index
// entries cannot be marked dead and each scan from the first id visits
// them all.
func BenchmarkStampBacklog(b *testing.B) {
	for _, held := range []bool{false, true} {
		name := "vacuum_pending"
		if held {
			name = "snapshot_held"
		}
		b.Run(name, func(b *testing.B) { benchStampBacklog(b, held) })
	}
}

func benchStampBacklog(b *testing.B, held bool) {
	db, l, _ := benchDB(b, eventlog.WithPollInterval(time.Hour))
	s := sqlDB(b, db)
	ctx := b.Context()
	if held {
		tx, err := s.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SELECT 1`); err != nil { // takes the snapshot
			b.Fatal(err)
		}
	}
	const backlog = 100000
	for _, q := range []string{
		`ALTER TABLE ` + l.Table() + ` SET (autovacuum_enabled = false)`,
		// Rows as Append writes them, one event each.
		`INSERT INTO ` + l.Table() + ` (count, lead_ids, types, audiences, payloads)
			SELECT 1, ARRAY[i % 500 + 1], ARRAY['STATUS_UPDATE'], ARRAY[''], ARRAY['{"i":' || i || '}']
			FROM generate_series(1, ` + fmt.Sprint(backlog) + `) AS i`,
	} {
		if _, err := s.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	l.Committed()
	waitHead(b, l, backlog)
	head := uint64(backlog)
	var times [2]time.Duration // bound, first
	var ops [2]int
	const block = 20
	b.ResetTimer()
	for i := 0; i < b.N; i += block {
		mode := (i / block) % 2
		if mode == 1 {
			eventlog.WithoutBound(l)
		}
		start := time.Now()
		n := min(block, b.N-i)
		ops[mode] += n
		for range n {
			if err := l.Append(ctx, nil, eventlog.Event{LeadID: 1, Type: "STATUS_UPDATE", Payload: benchPayload}); err != nil {
				b.Fatal(err)
			}
			head++
			waitHead(b, l, head)
		}
		times[mode] += time.Since(start)
		eventlog.WithBound(l)
	}
	b.StopTimer()
	per := func(m int) float64 { return float64(times[m].Microseconds()) / float64(max(ops[m], 1)) }
	b.ReportMetric(per(0), "bound-µs/op")
	b.ReportMetric(per(1), "first-µs/op")
	b.ReportMetric(per(1)/per(0), "ratio")
}

// BenchmarkRead measures Read in pages of 1000 over positioned events
// (ns/op per event).
func BenchmarkRead(b *testing.B) {
	db, l, _ := benchDB(b)
	_ = db
	const total = 50000
	for start := 0; start < total; start += 1000 {
		var evs []eventlog.Event
		for i := start; i < start+1000; i++ {
			evs = append(evs, eventlog.Event{LeadID: int64(i%500 + 1), Type: "STATUS_UPDATE", Payload: benchPayload})
		}
		if err := l.Append(b.Context(), nil, evs...); err != nil {
			b.Fatal(err)
		}
	}
	waitHead(b, l, total)
	b.ResetTimer()
	var after uint64
	for read := 0; read < b.N; {
		evs, err := l.Read(b.Context(), after, min(1000, b.N-read))
		if err != nil {
			b.Fatal(err)
		}
		read += len(evs)
		after = evs[len(evs)-1].Position
		if after >= total {
			after = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPrune measures pruning b.N positioned events (ns/op per event).
func BenchmarkPrune(b *testing.B) {
	db, l, _ := benchDB(b, eventlog.WithRetention(0))
	_ = db
	b.StopTimer()
	for start := 0; start < b.N; start += 1000 {
		var evs []eventlog.Event
		for i := start; i < min(start+1000, b.N); i++ {
			evs = append(evs, eventlog.Event{LeadID: int64(i%500 + 1), Type: "STATUS_UPDATE", Payload: benchPayload})
		}
		if err := l.Append(b.Context(), nil, evs...); err != nil {
			b.Fatal(err)
		}
	}
	waitHead(b, l, uint64(b.N))
	cutoff := time.Now().Add(time.Hour)
	b.StartTimer()
	n, err := eventlog.Prune(b.Context(), l, cutoff)
	b.StopTimer()
	if err != nil || n != int64(b.N) {
		b.Fatalf("Prune = %d, %v; want %d", n, err, b.N)
	}
}
