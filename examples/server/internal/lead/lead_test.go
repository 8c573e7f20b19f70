package lead_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

func TestCanMove(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"New", "Enriching", true}, {"New", "New", true}, {"New", "Qualified", false},
		{"Enriching", "Enriched", true}, {"Enriched", "Scored", true}, {"Scored", "Vetted", true},
		{"Vetted", "Qualified", true}, {"Vetted", "Disqualified", true}, {"Qualified", "SyncedToCrm", true},
		{"Scored", "Failed", true}, {"SyncedToCrm", "Failed", false}, {"SyncedToCrm", "New", false},
		{"Failed", "New", true}, {"Disqualified", "New", true}, {"Failed", "Enriching", false},
		{"New", "Bogus", false}, {"Bogus", "Bogus", false}, {"Bogus", "Failed", false},
	} {
		if got := lead.CanMove(tc.from, tc.to); got != tc.want {
			t.Errorf("CanMove(%s, %s) = %v", tc.from, tc.to, got)
		}
	}
	for _, s := range lead.Statuses {
		if !lead.ValidStatus(s) {
			t.Errorf("%s is not valid", s)
		}
	}
}

// TestViewIsPlainJSON: the view has only JSON types, times in the wire
// format, enrichment as an object and empty optional fields omitted.
func TestViewIsPlainJSON(t *testing.T) {
	score := 81.5
	at := time.Date(2026, 11, 26, 20, 41, 7, 123456789, time.FixedZone("CET", 3600))
	l := lead.Lead{ID: 42, Name: "Ada", Source: "LinkedIn", Status: "Scored", Score: &score,
		EnrichmentData: `{"employees":120}`, CreatedAt: at, UpdatedAt: at}
	b, err := json.Marshal(l.View())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":42,"name":"Ada","source":"LinkedIn","status":"Scored","score":81.5,"enrichmentData":{"employees":120},"createdAt":"2026-11-26T19:41:07.123Z","updatedAt":"2026-11-26T19:41:07.123Z"}`
	if string(b) != want {
		t.Errorf("view\n got %s\nwant %s", b, want)
	}
	if v := (&lead.Lead{EnrichmentData: "not json"}).View(); v.EnrichmentData != nil {
		t.Errorf("invalid enrichment data decoded to %v", v.EnrichmentData)
	}
}
