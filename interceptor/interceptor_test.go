package interceptor_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/leadupdates/leadupdates/interceptor"
)

func check(t *testing.T, got, want [][]string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batches:\n got  %q\n want %q", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateAndUpdateImplicitTransaction(t *testing.T) {
	eachDB(t, testCreateAndUpdateImplicitTransaction)
}

func testCreateAndUpdateImplicitTransaction(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	db := e.db
	l := Lead{Name: "a", Status: "new", Score: 2}
	must(t, db.Create(&l).Error)
	l.Status, l.Score = "contacted", 50
	must(t, db.Save(&l).Error)
	must(t, db.Model(&l).Update("status", "qualified").Error)
	must(t, db.Model(&Lead{ID: l.ID}).Updates(Lead{Score: 70, EnrichmentData: "x"}).Error)
	must(t, db.Model(&l).Updates(map[string]any{"status": "qualified"}).Error) // no-op
	must(t, db.Save(&Lead{Name: "b", Status: "new"}).Error)                    // Save of a new row
	var f Lead
	must(t, db.Where(Lead{Name: "c"}).FirstOrCreate(&f).Error)
	must(t, db.Where(Lead{Name: "c"}).FirstOrCreate(&f).Error) // found: nothing
	check(t, e.flush(t), [][]string{
		{"NEW_LEAD#1"},
		{"STATUS_UPDATE#1 new->contacted", "SCORE_UPDATE#1 2->50"},
		{"STATUS_UPDATE#1 contacted->qualified"},
		{"SCORE_UPDATE#1 50->70", "ENRICHMENT_UPDATE#1 x"},
		{"NEW_LEAD#2"},
		{"NEW_LEAD#3"},
	})
}

func TestNewLeadCarriesRow(t *testing.T) { eachDB(t, testNewLeadCarriesRow) }

func testNewLeadCarriesRow(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	l := Lead{Name: "a", Status: "new"}
	must(t, e.db.Create(&l).Error)
	e.flush(t)
	got := e.rec.batches[0][0].Lead.(*Lead)
	if got.ID != l.ID || got.Name != "a" || got == &l {
		t.Errorf("Lead = %+v (%p), want a copy of %+v", got, got, l)
	}
}

func TestCallerModelUnchanged(t *testing.T) { eachDB(t, testCallerModelUnchanged) }

func testCallerModelUnchanged(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	l := Lead{Name: "a", Status: "new", Score: 1}
	must(t, e.db.Create(&l).Error)
	must(t, e.db.Model(&Lead{}).Where("id = ?", l.ID).Update("status", "won").Error)
	m := Lead{ID: l.ID}
	must(t, e.db.Model(&m).Update("score", 9).Error)
	if m.Status != "" || m.Name != "" {
		t.Errorf("model changed as a side effect: %+v", m)
	}
	check(t, e.flush(t), [][]string{{"NEW_LEAD#1"}, {"STATUS_UPDATE#1 new->won"}, {"SCORE_UPDATE#1 1->9"}})
}

func TestTransactions(t *testing.T) { eachDB(t, testTransactions) }

func testTransactions(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	db := e.db
	// committed
	must(t, db.Transaction(func(tx *gorm.DB) error {
		l := Lead{Name: "a", Status: "new", Score: 3}
		must(t, tx.Create(&l).Error)
		must(t, tx.Model(&l).Updates(map[string]any{"status": "contacted", "score": 50}).Error)
		return tx.Delete(&l).Error
	}))
	// rolled back by error
	errBoom := errors.New("boom")
	if err := db.Transaction(func(tx *gorm.DB) error {
		must(t, tx.Create(&Lead{Name: "b", Status: "new"}).Error)
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	// Begin/Rollback
	tx := db.Begin()
	must(t, tx.Create(&Lead{Name: "c", Status: "new"}).Error)
	must(t, tx.Rollback().Error)
	// Begin/Commit
	tx = db.Begin()
	d := Lead{Name: "d", Status: "new"}
	must(t, tx.Create(&d).Error)
	must(t, tx.Model(&Lead{ID: d.ID}).Update("status", "won").Error)
	must(t, tx.Commit().Error)
	// PostgreSQL's sequence skips the ids of the rolled-back inserts (4);
	// SQLite reuses them (2).
	want := map[string]uint{"postgres": 4, "sqlite": 2}[dia.name]
	if d.ID != want {
		t.Errorf("id of d = %d, want %d", d.ID, want)
	}
	check(t, e.flush(t), [][]string{
		{"NEW_LEAD#1", "STATUS_UPDATE#1 new->contacted", "SCORE_UPDATE#1 3->50", "LEAD_DELETED#1 soft"},
		{fmt.Sprintf("NEW_LEAD#%d", d.ID), fmt.Sprintf("STATUS_UPDATE#%d new->won", d.ID)},
	})
}

func TestNothingBeforeCommit(t *testing.T) { eachDB(t, testNothingBeforeCommit) }

func testNothingBeforeCommit(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil, interceptor.WithStrict()) // strict: synchronous, so absence is observable
	tx := e.db.Begin()
	must(t, tx.Create(&Lead{Name: "a", Status: "new"}).Error)
	if got := e.rec.got(); len(got) != 0 {
		t.Fatalf("emitted before commit: %q", got)
	}
	must(t, tx.Commit().Error)
	if got := e.rec.got(); len(got) != 1 {
		t.Fatalf("after commit: %q", got)
	}
}

func TestSavepoints(t *testing.T) {
	eachDB(t, func(t *testing.T, dia dialect) { testSavepoints(t, dia, nil) })
}

// TestSavepointsPrepareStmt: in a PrepareStmt session, the application's
// own SAVEPOINT and ROLLBACK TO (tx.Exec) run as prepared statements,
// through StmtContext rather than Exec; what they roll back must still not
// be emitted.
func TestSavepointsPrepareStmt(t *testing.T) {
	eachDB(t, func(t *testing.T, dia dialect) {
		testSavepoints(t, dia, func(db *gorm.DB) *gorm.DB { return db.Session(&gorm.Session{PrepareStmt: true}) })
	})
}

func testSavepoints(t *testing.T, dia dialect, session func(*gorm.DB) *gorm.DB) {
	e := newEnv(t, dia, nil)
	db := e.db
	if session != nil {
		db = session(db)
	}
	c := Lead{Name: "c", Status: "new"}
	must(t, db.Transaction(func(tx *gorm.DB) error {
		must(t, tx.Create(&Lead{Name: "a", Status: "new"}).Error) // 1
		_ = tx.Transaction(func(tx2 *gorm.DB) error {
			must(t, tx2.Create(&Lead{Name: "b", Status: "new"}).Error) // 2, rolled back
			return errors.New("inner")
		})
		must(t, tx.Transaction(func(tx2 *gorm.DB) error {
			return tx2.Create(&c).Error // 3 on PostgreSQL; SQLite reuses the rolled-back 2
		}))
		must(t, tx.SavePoint("sp1").Error)
		must(t, tx.Model(&Lead{ID: 1}).Update("status", "won").Error) // dropped
		must(t, tx.RollbackTo("sp1").Error)
		must(t, tx.Model(&Lead{ID: 1}).Update("status", "lost").Error) // kept
		must(t, tx.RollbackTo("sp1").Error)                            // savepoint stays established
		// Savepoints of the application's own SQL (in a PrepareStmt
		// session, prepared statements).
		must(t, tx.Exec("SAVEPOINT sp2").Error)
		must(t, tx.Model(&Lead{ID: c.ID}).Update("score", 7).Error) // dropped
		must(t, tx.Exec("ROLLBACK TO SAVEPOINT sp2").Error)
		return tx.Model(&Lead{ID: c.ID}).Update("score", 5).Error
	}))
	check(t, e.flush(t), [][]string{{"NEW_LEAD#1", fmt.Sprintf("NEW_LEAD#%d", c.ID), fmt.Sprintf("SCORE_UPDATE#%d 0->5", c.ID)}})
}

func TestAbortedTransaction(t *testing.T) { eachDB(t, testAbortedTransaction) }

func testAbortedTransaction(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	tx := e.db.Begin()
	must(t, tx.Create(&Lead{Name: "a", Status: "new"}).Error)
	if err := tx.Create(&Lead{ID: 1, Name: "dup"}).Error; err == nil {
		t.Fatal("duplicate key accepted")
	}
	if dia.name == "sqlite" {
		// SQLite rolls back only the failed statement; the transaction goes
		// on and commits what came before it, and only that is emitted.
		must(t, tx.Commit().Error)
		check(t, e.flush(t), [][]string{{"NEW_LEAD#1"}})
		return
	}
	if err := tx.Commit().Error; err == nil {
		t.Fatal("commit of an aborted transaction succeeded")
	}
	check(t, e.flush(t), nil)
}

func TestSkipDefaultTransaction(t *testing.T) { eachDB(t, testSkipDefaultTransaction) }

func testSkipDefaultTransaction(t *testing.T, dia dialect) {
	e := newEnv(t, dia, &gorm.Config{SkipDefaultTransaction: true})
	db := e.db
	l := Lead{Name: "a", Status: "new"}
	must(t, db.Create(&l).Error)
	must(t, db.Model(&l).Update("status", "won").Error)
	tx := db.Begin()
	must(t, tx.Model(&l).Update("status", "lost").Error)
	must(t, tx.Rollback().Error)
	must(t, db.Delete(&l).Error)
	check(t, e.flush(t), [][]string{{"NEW_LEAD#1"}, {"STATUS_UPDATE#1 new->won"}, {"LEAD_DELETED#1 soft"}})
}

func TestBulkAndDeletes(t *testing.T) { eachDB(t, testBulkAndDeletes) }

func testBulkAndDeletes(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	db := e.db
	leads := []Lead{{Name: "a", Status: "new"}, {Name: "b", Status: "new"}, {Name: "c", Status: "old"}}
	must(t, db.Create(&leads).Error)
	must(t, db.CreateInBatches([]Lead{{Name: "d", Status: "new"}, {Name: "e", Status: "new"}, {Name: "f", Status: "new"}}, 2).Error)
	must(t, db.Model(&Lead{}).Where("status = ?", "new").Where("id < ?", 3).Update("status", "contacted").Error)
	must(t, db.Model(&Lead{}).Where("id IN ?", []int{5, 6}).UpdateColumns(map[string]any{"score": 7}).Error)
	must(t, db.Model(&Lead{ID: 3}).UpdateColumn("status", "dead").Error)
	must(t, db.Where("status = ?", "contacted").Delete(&Lead{}).Error) // soft, 2 rows
	must(t, db.Unscoped().Delete(&Lead{}, 4).Error)                    // hard
	must(t, db.Unscoped().Where("id = ?", 1).Delete(&Lead{}).Error)    // hard delete of a soft-deleted row
	must(t, db.Where("id = ?", 1).Delete(&Lead{}).Error)               // already gone: nothing
	check(t, e.flush(t), [][]string{
		{"NEW_LEAD#1", "NEW_LEAD#2", "NEW_LEAD#3"},
		{"NEW_LEAD#4", "NEW_LEAD#5", "NEW_LEAD#6"},
		{"STATUS_UPDATE#1 new->contacted", "STATUS_UPDATE#2 new->contacted"},
		{"SCORE_UPDATE#5 0->7", "SCORE_UPDATE#6 0->7"},
		{"STATUS_UPDATE#3 old->dead"},
		{"LEAD_DELETED#1 soft", "LEAD_DELETED#2 soft"},
		{"LEAD_DELETED#4"},
		{"LEAD_DELETED#1"},
	})
}

func TestMissingWhereAndOrPrecedence(t *testing.T) { eachDB(t, testMissingWhereAndOrPrecedence) }

func testMissingWhereAndOrPrecedence(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	db := e.db
	must(t, db.Create(&[]Lead{{Name: "a", Status: "new"}, {Name: "b", Status: "x"}, {Name: "c", Status: "y"}}).Error)
	if err := db.Model(&Lead{}).Update("status", "z").Error; !errors.Is(err, gorm.ErrMissingWhereClause) {
		t.Errorf("global update: err = %v, want ErrMissingWhereClause", err)
	}
	if err := db.Delete(&Lead{}).Error; !errors.Is(err, gorm.ErrMissingWhereClause) {
		t.Errorf("global delete: err = %v, want ErrMissingWhereClause", err)
	}
	// Where(A).Or(B).Where(C) touches the same rows as without the plugin
	// (GORM builds A OR B AND C): measured with Skip, then rolled back.
	or := func(tx *gorm.DB) *gorm.DB {
		return tx.Model(&Lead{}).Where("status = ?", "new").Or("status = ?", "x").Where("id > ?", 1)
	}
	plain := db.Begin()
	res0 := or(plain.Clauses(interceptor.Skip)).Update("score", 3)
	must(t, plain.Rollback().Error)
	res1 := or(db).Update("score", 3)
	must(t, res1.Error)
	if res0.RowsAffected != res1.RowsAffected || res1.RowsAffected != 2 {
		t.Errorf("RowsAffected: plain %d, plugin %d, want 2", res0.RowsAffected, res1.RowsAffected)
	}
	res := db.Model(&Lead{}).Where("name = ?", "c").Or("name = ?", "b").Update("score", 4)
	must(t, res.Error)
	if res.RowsAffected != 2 {
		t.Errorf("RowsAffected = %d, want 2", res.RowsAffected)
	}
	must(t, db.Session(&gorm.Session{AllowGlobalUpdate: true}).Model(&Lead{}).Update("status", "all").Error)
	check(t, e.flush(t), [][]string{
		{"NEW_LEAD#1", "NEW_LEAD#2", "NEW_LEAD#3"},
		{"SCORE_UPDATE#1 0->3", "SCORE_UPDATE#2 0->3"},
		{"SCORE_UPDATE#2 3->4", "SCORE_UPDATE#3 0->4"},
		{"STATUS_UPDATE#1 new->all", "STATUS_UPDATE#2 x->all", "STATUS_UPDATE#3 y->all"},
	})
}

func TestSkipAndFailedStatement(t *testing.T) { eachDB(t, testSkipAndFailedStatement) }

func testSkipAndFailedStatement(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	db := e.db
	must(t, db.Clauses(interceptor.Skip).Create(&Lead{Name: "a", Status: "new"}).Error)
	must(t, db.Clauses(interceptor.Skip).Model(&Lead{ID: 1}).Update("status", "won").Error)
	if err := db.Create(&Lead{ID: 1, Name: "dup"}).Error; err == nil {
		t.Fatal("duplicate accepted")
	}
	must(t, db.Clauses(clause.OnConflict{DoNothing: true}).Create(&Lead{ID: 1, Name: "dup"}).Error)
	check(t, e.flush(t), nil)
}

// Prospect is a user's own model with other field names.
type Prospect struct {
	Key    int64 `gorm:"primaryKey"`
	Stage  string
	Rating int
	Notes  string
}

func TestOwnModelAndFields(t *testing.T) { eachDB(t, testOwnModelAndFields) }

func testOwnModelAndFields(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	rec := &recorder{}
	p, err := interceptor.New(Prospect{}, rec, interceptor.WithFields(interceptor.Fields{
		Status: "Stage", Score: "Rating", Enrichment: []string{"Notes"},
	}))
	must(t, err)
	db := e.plainOn(t)
	must(t, db.Use(p))
	must(t, db.AutoMigrate(&Prospect{}))
	t.Cleanup(func() { _ = db.Migrator().DropTable(&Prospect{}) })
	must(t, db.Create(&Prospect{Stage: "new", Rating: 1}).Error)
	must(t, db.Model(&Prospect{Key: 1}).Updates(map[string]any{"stage": "won", "rating": gorm.Expr("rating + ?", 2), "notes": "n"}).Error)
	must(t, db.Create(&Lead{Name: "not watched"}).Error)
	must(t, p.Close())
	var got []string
	for _, b := range rec.batches {
		for _, c := range b {
			got = append(got, summary(c))
		}
	}
	want := []string{"NEW_LEAD#1", "STATUS_UPDATE#1 new->won", "SCORE_UPDATE#1 1->3", "ENRICHMENT_UPDATE#1 <nil>"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if n := rec.batches[1][2].Enrichment["notes"]; n != "n" {
		t.Errorf("enrichment notes = %v", n)
	}
}
