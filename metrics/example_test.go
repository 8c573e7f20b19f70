package metrics_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
)

// A Calculator over a leads table, and a Publisher handing its figures to a
// sink (in an application, the *notify.Notifier) until Close.
func Example() {
	dsn := os.Getenv("TEST_DATABASE_URL")
	if dsn == "" {
		dsn = defaultDSN
	}
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		fmt.Println(err)
		return
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	table := fmt.Sprintf("example_leads_%d", os.Getpid())
	db.Exec(`CREATE TABLE ` + table + ` (id bigserial PRIMARY KEY, source text, status text, score numeric,
		created_at timestamptz NOT NULL, processed_at timestamptz, deleted_at timestamptz)`)
	defer db.Exec(`DROP TABLE ` + table)
	now := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	db.Exec(`INSERT INTO `+table+` (source, status, score, created_at) VALUES
		('Google', 'Qualified', 80, ?), ('Google', 'New', NULL, ?), ('LinkedIn', 'New', 40, ?)`,
		now.Add(-time.Hour), now.Add(-25*time.Hour), now.Add(-time.Minute))

	ctx := context.Background()
	calc, err := metrics.New(db, metrics.WithTable(table), metrics.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := calc.Migrate(ctx); err != nil { // indexes and incremental aggregates; cheap once done
		fmt.Println(err)
		return
	}
	defer calc.DropAggregates(ctx) // an example leaves nothing behind
	m, err := calc.Snapshot(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d leads, %d qualified (%.2f%%), %d new today, by source %v\n",
		m.TotalLeads, m.QualifiedLeads, m.ConversionRate, m.NewLeadsToday, m.LeadsBySource)

	published := make(chan notify.Metrics, 1)
	pub, err := metrics.NewPublisher(calc, metrics.SinkFunc(func(_ context.Context, m notify.Metrics) error {
		select { // the Publisher computes once as it starts
		case published <- m:
		default:
		}
		return nil
	}), metrics.PublisherConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("published, average score:", (<-published).ScoreAverage)
	pub.Close() // stops its goroutine and waits for it
	// Output:
	// 3 leads, 1 qualified (33.33%), 2 new today, by source map[Google:2 LinkedIn:1]
	// published, average score: 60
}
