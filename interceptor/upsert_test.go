package interceptor_test

import (
	"errors"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

func TestUpserts(t *testing.T) { eachDB(t, testUpserts) }

// On PostgreSQL an upsert emits NEW_LEAD for the rows it inserted and
// nothing for the rows it updated or skipped; on SQLite, where the two
// cannot be told apart, it emits nothing.
func testUpserts(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	db := e.db
	must(t, db.Create(&Lead{Name: "a", Status: "new"}).Error) // #1
	// inserting
	b := Lead{Name: "b", Status: "new"}
	must(t, db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&b).Error)
	if b.ID != 2 {
		t.Fatalf("upserted id = %d, want 2", b.ID)
	}
	// updating
	byID := clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.AssignmentColumns([]string{"status"})}
	u := Lead{ID: 1, Name: "a", Status: "won"}
	must(t, db.Clauses(byID).Create(&u).Error)
	// DO NOTHING
	must(t, db.Clauses(clause.OnConflict{DoNothing: true}).Create(&Lead{ID: 1, Name: "dup"}).Error)
	// mixed batch: #2 updated, #10 inserted
	batch := []Lead{{ID: 2, Name: "b2", Status: "lost"}, {ID: 10, Name: "j", Status: "new"}}
	must(t, db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&batch).Error)
	// mixed DO NOTHING batch: #1 skipped, #11 inserted
	must(t, db.Clauses(clause.OnConflict{DoNothing: true}).Create(&[]Lead{{ID: 1, Name: "x"}, {ID: 11, Name: "k"}}).Error)
	// Save of a missing non-zero id: GORM's insert fallback is an upsert
	must(t, db.Save(&Lead{ID: 20, Name: "s", Status: "new"}).Error)
	// a rolled-back upsert emits nothing
	errBoom := errors.New("boom")
	if err := db.Transaction(func(tx *gorm.DB) error {
		must(t, tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&Lead{ID: 30, Name: "r"}).Error)
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}

	var got []Lead
	must(t, db.Order("id").Find(&got).Error)
	if len(got) != 5 || got[0].Status != "won" || got[1].Status != "lost" || got[1].Name != "b2" {
		t.Errorf("rows after upserts: %+v", got)
	}
	if dia.name == "sqlite" {
		check(t, e.flush(t), [][]string{{"NEW_LEAD#1"}})
		return
	}
	check(t, e.flush(t), [][]string{
		{"NEW_LEAD#1"}, {"NEW_LEAD#2"}, {"NEW_LEAD#10"}, {"NEW_LEAD#11"}, {"NEW_LEAD#20"},
	})
	for i, want := range map[int]string{1: "b", 2: "j", 3: "k", 4: "s"} {
		if l, ok := e.rec.batches[i][0].Lead.(*Lead); !ok || l.Name != want {
			t.Errorf("batch %d Lead = %+v, want Name %q", i, e.rec.batches[i][0].Lead, want)
		}
	}
}

func TestUpsertPrepareStmt(t *testing.T) { eachDB(t, testUpsertPrepareStmt) }

func testUpsertPrepareStmt(t *testing.T, dia dialect) {
	e := newEnv(t, dia, &gorm.Config{PrepareStmt: true})
	must(t, e.db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&Lead{ID: 5, Name: "p"}).Error)
	must(t, e.db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&Lead{ID: 5, Name: "q"}).Error)
	if dia.name == "sqlite" {
		check(t, e.flush(t), nil)
		return
	}
	check(t, e.flush(t), [][]string{{"NEW_LEAD#5"}})
}
