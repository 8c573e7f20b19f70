package metrics_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/metrics"
	"github.com/leadupdates/leadupdates/notify"
	"gorm.io/gorm"
)

func TestEnsureIndexes(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db)
		c, err := metrics.New(db, metrics.WithTable(schemaOf(db)+"."+table))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second call finds them
			if err := c.EnsureIndexes(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		got := indexNames(t, db, table)
		want := []string{table + "_metrics_created", table + "_metrics_processed", table + "_metrics_source_status"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("indexes %q, want %q", got, want)
		}
	})
}

// TestColumns reads a table whose names differ from the defaults and need
// quoting.
func TestColumns(t *testing.T) {
	eachDB(t, func(t *testing.T, db *gorm.DB) {
		table := newTable(t, db) + "_Custom"
		err := db.Exec(`CREATE TABLE "` + table + `" (
			"Src" text, "State" text, "Rating" integer, "Inserted" timestamptz, "Done" timestamptz, "Removed" timestamptz)`).Error
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dropTable(t, db, table) })
		now := time.Date(2026, time.June, 1, 12, 0, 0, 0, time.UTC)
		err = db.Exec(`INSERT INTO "`+table+`" VALUES
			('Web', 'Qualified', 3, ?, ?, NULL),
			('Ads', 'New', 4, ?, NULL, NULL),
			('Ads', 'New', 9, ?, NULL, ?)`,
			now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-25*time.Hour), now.Add(-time.Hour), now).Error
		if err != nil {
			t.Fatal(err)
		}
		c, err := metrics.New(db, metrics.WithTable(table),
			metrics.WithClock(func() time.Time { return now }),
			metrics.WithColumns(metrics.Columns{
				Source: "Src", Status: "State", Score: "Rating",
				CreatedAt: "Inserted", ProcessedAt: "Done", DeletedAt: "Removed",
			}))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Migrate(t.Context()); err != nil { // the aggregates too, on PostgreSQL
			t.Fatal(err)
		}
		if on, err := c.Aggregated(t.Context()); err != nil || on != (db.Dialector.Name() == "postgres") {
			t.Errorf("Aggregated = %v, %v", on, err)
		}
		got, err := c.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := notify.Metrics{
			TotalLeads:     2,
			QualifiedLeads: 1,
			ConversionRate: 50,
			ProcessingTime: 3600,
			ScoreAverage:   3.5,
			NewLeadsToday:  1,
			ProcessedToday: 1,
			DailyGrowth:    0, // (1 − 1) / 1
			WeeklyGrowth:   0, // nothing the week before
			LeadsBySource:  map[string]int64{"Web": 1, "Ads": 1},
			LeadsByStatus:  map[string]int64{"Qualified": 1, "New": 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Snapshot\n got %+v\nwant %+v", got, want)
		}

		// The triggers read the renamed columns.
		err = db.Exec(`UPDATE "` + table + `" SET "State" = 'Qualified', "Rating" = 6 WHERE "Src" = 'Ads' AND "Removed" IS NULL`).Error
		if err != nil {
			t.Fatal(err)
		}
		if got, err = c.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
		want.QualifiedLeads, want.ConversionRate, want.ScoreAverage = 2, 100, 4.5
		want.LeadsByStatus = map[string]int64{"Qualified": 2}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Snapshot after an update\n got %+v\nwant %+v", got, want)
		}
	})
}
