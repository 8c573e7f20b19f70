package interceptor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

func TestCreateFromMaps(t *testing.T) { eachDB(t, testCreateFromMaps) }

// A create from a map, *map or *[]map emits NEW_LEAD per row with the id
// the database returned and a *Lead filled from the map.
func testCreateFromMaps(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	db := e.db
	must(t, db.Model(&Lead{}).Create(map[string]any{"name": "m1", "Status": "new", "score": 3}).Error)
	must(t, db.Model(&Lead{}).Create(&map[string]any{"name": "m2", "status": "new"}).Error)
	ms := []map[string]any{{"name": "m3", "status": "a"}, {"Name": "m4", "status": "b", "score": 2.5}}
	must(t, db.Model(&Lead{}).Create(&ms).Error)
	// Non-pointer []map: GORM 1.31 cannot scan the RETURNING rows into
	// it, fails the statement and rolls it back; emitted only if it works.
	plainSlice := []map[string]any{{"name": "m5"}, {"name": "m6"}}
	sliceErr := db.Model(&Lead{}).Create(plainSlice).Error
	// Select, Omit and SQL expressions: only the values written are in Lead.
	must(t, db.Model(&Lead{}).Select("name").Create(map[string]any{"name": "m7", "status": "skipped"}).Error)
	must(t, db.Model(&Lead{}).Omit("status").Create(map[string]any{"name": "m8", "status": "skipped"}).Error)
	must(t, db.Model(&Lead{}).Create(map[string]any{"name": "m9", "score": gorm.Expr("1 + 1")}).Error)
	// rolled back: nothing
	errBoom := errors.New("boom")
	if err := db.Transaction(func(tx *gorm.DB) error {
		must(t, tx.Model(&Lead{}).Create(map[string]any{"name": "rb"}).Error)
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	// in a committed transaction, with a struct create after it
	must(t, db.Transaction(func(tx *gorm.DB) error {
		must(t, tx.Model(&Lead{}).Create(map[string]any{"name": "t1"}).Error)
		return tx.Create(&Lead{Name: "t2"}).Error
	}))
	// an upsert from one map: NEW_LEAD on PostgreSQL, nothing on SQLite
	must(t, db.Model(&Lead{}).Clauses(clause.OnConflict{DoNothing: true}).Create(map[string]any{"name": "u1", "status": "new"}).Error)

	id := func(name string) uint {
		var l Lead
		must(t, db.Unscoped().Where("name = ?", name).First(&l).Error)
		return l.ID
	}
	nl := func(names ...string) []string {
		var s []string
		for _, n := range names {
			s = append(s, fmt.Sprintf("NEW_LEAD#%d", id(n)))
		}
		return s
	}
	want := [][]string{nl("m1"), nl("m2"), nl("m3", "m4")}
	if sliceErr == nil {
		want = append(want, nl("m5", "m6"))
	} else {
		var n int64
		must(t, db.Model(&Lead{}).Where("name IN ?", []string{"m5", "m6"}).Count(&n).Error)
		if n != 0 {
			t.Fatalf("failed []map create left %d rows", n)
		}
	}
	want = append(want, nl("m7"), nl("m8"), nl("m9"), nl("t1", "t2"))
	if dia.name == "postgres" {
		want = append(want, nl("u1"))
	}
	check(t, e.flush(t), want)

	leads := map[string]Lead{}
	for _, b := range e.rec.batches {
		for _, c := range b {
			l, ok := c.Lead.(*Lead)
			if !ok || l == nil {
				t.Fatalf("%s#%d: Lead = %#v, want *Lead", c.Op, c.LeadID, c.Lead)
			}
			if uint(c.LeadID) != l.ID {
				t.Errorf("LeadID %d, Lead.ID %d", c.LeadID, l.ID)
			}
			leads[l.Name] = *l
		}
	}
	for name, w := range map[string]Lead{
		"m1": {Status: "new", Score: 3}, "m2": {Status: "new"}, "m3": {Status: "a"}, "m4": {Status: "b", Score: 2.5},
		"m7": {}, "m8": {}, "m9": {}, "t1": {},
	} {
		g, ok := leads[name]
		if !ok {
			t.Errorf("no NEW_LEAD carries %s", name)
			continue
		}
		if g.Status != w.Status || g.Score != w.Score {
			t.Errorf("%s: Lead = %+v, want status %q score %g", name, g, w.Status, w.Score)
		}
	}
	if dia.name == "postgres" {
		if g := leads["u1"]; g.Status != "new" {
			t.Errorf("u1: Lead = %+v", g)
		}
	}
}

// sqlLog keeps the SQL of every statement.
type sqlLog struct {
	logger.Interface
	mu  sync.Mutex
	sql []string
}

func (l *sqlLog) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	s, _ := fc()
	l.mu.Lock()
	l.sql = append(l.sql, s)
	l.mu.Unlock()
}

func TestUpdateReadsOnlyAssignedColumns(t *testing.T) { eachDB(t, testUpdateReadsOnlyAssignedColumns) }

// An update reads the previous values of the status, score and enrichment
// columns it assigns; one assigning none of them is not rewritten at all.
func testUpdateReadsOnlyAssignedColumns(t *testing.T, dia dialect) {
	e := newEnv(t, dia, nil)
	log := &sqlLog{Interface: logger.Discard}
	db := e.db.Session(&gorm.Session{Logger: log})
	l := Lead{Name: "a", Status: "new", Score: 1, EnrichmentData: "e0"}
	must(t, db.Create(&l).Error)
	must(t, db.Model(&l).Update("name", "b").Error)
	must(t, db.Model(&Lead{}).Where("name = ?", "b").Updates(map[string]any{"name": "c"}).Error)
	nameOnly := len(log.sql)
	must(t, db.Model(&l).Update("status", "won").Error)
	must(t, db.Model(&l).Updates(map[string]any{"enrichment_data": "e1"}).Error)
	must(t, db.Model(&Lead{ID: l.ID}).Updates(Lead{Score: 5, Name: "d"}).Error)
	l.Status, l.EnrichmentData = "lost", "e2"
	must(t, db.Save(&l).Error)
	for i, s := range log.sql {
		captured := strings.Contains(s, "FOR UPDATE") || (dia.name == "sqlite" && strings.Contains(s, "WHERE 0"))
		if i < nameOnly && captured {
			t.Errorf("name-only update captured: %s", s)
		}
	}
	check(t, e.flush(t), [][]string{
		{"NEW_LEAD#1"},
		{"STATUS_UPDATE#1 new->won"},
		{"ENRICHMENT_UPDATE#1 e1"},
		{"SCORE_UPDATE#1 1->5"},
		{"STATUS_UPDATE#1 won->lost", "SCORE_UPDATE#1 5->1", "ENRICHMENT_UPDATE#1 e2"}, // l.Score is still 1
	})
}
