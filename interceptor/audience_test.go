package interceptor_test

import (
	"fmt"
	"testing"

	"github.com/leadupdates/leadupdates/interceptor"
)

// TestAudienceFromCommittedRow: with Fields.Audience, each Change carries
// that column as the statement left the row, even when another writer (here
// a *gorm.DB without the plugin, as another instance would be) changed it
// since this process last saw the lead.
func TestAudienceFromCommittedRow(t *testing.T) {
	eachDB(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d, nil, interceptor.WithFields(interceptor.Fields{Audience: "Name"}))
		l := Lead{Name: "alice", Status: "New"}
		if err := e.db.Create(&l).Error; err != nil {
			t.Fatal(err)
		}
		many := []Lead{{Name: "carol", Status: "New"}}
		if err := e.db.Create(&many).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.plainOn(t).Model(&Lead{}).Where("id = ?", l.ID).Update("name", "bob").Error; err != nil {
			t.Fatal(err)
		}
		db := e.db.Model(&Lead{}).Where("id = ?", l.ID)
		if err := db.Updates(map[string]any{"status": "Enriching", "score": 5}).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.db.Model(&Lead{}).Where("id = ?", l.ID).Update("enrichment_data", `{"a":1}`).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.db.Delete(&Lead{}, l.ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.db.Unscoped().Delete(&Lead{}, many[0].ID).Error; err != nil {
			t.Fatal(err)
		}
		if err := e.p.Close(); err != nil {
			t.Fatal(err)
		}
		var got []string
		e.rec.mu.Lock()
		for _, b := range e.rec.batches {
			for _, c := range b {
				got = append(got, fmt.Sprintf("%s#%d %s", c.Op, c.LeadID, c.Audience))
			}
		}
		e.rec.mu.Unlock()
		want := []string{
			fmt.Sprintf("NEW_LEAD#%d alice", l.ID), fmt.Sprintf("NEW_LEAD#%d carol", many[0].ID),
			fmt.Sprintf("STATUS_UPDATE#%d bob", l.ID), fmt.Sprintf("SCORE_UPDATE#%d bob", l.ID),
			fmt.Sprintf("ENRICHMENT_UPDATE#%d bob", l.ID), fmt.Sprintf("LEAD_DELETED#%d bob", l.ID),
			fmt.Sprintf("LEAD_DELETED#%d carol", many[0].ID),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("changes\n%v\nwant\n%v", got, want)
		}
	})
}
