package access_test

import (
	"errors"
	"testing"

	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/internal/testdb"
)

func TestCanSee(t *testing.T) {
	for _, tc := range []struct {
		id    string
		roles []string
		owner string
		want  bool
	}{
		{"ann", []string{"admin"}, "", true},
		{"ann", []string{"admin"}, "bob", true},
		{"alice", []string{"sales"}, "alice", true},
		{"alice", []string{"sales"}, "bob", false},
		{"alice", []string{"sales"}, "", false},
		{"", []string{"sales"}, "", false},
		{"alice", nil, "alice", false},
		{"alice", []string{"viewer"}, "alice", false},
	} {
		if got := access.CanSee(tc.id, tc.roles, tc.owner); got != tc.want {
			t.Errorf("CanSee(%q, %q, owner %q) = %v", tc.id, tc.roles, tc.owner, got)
		}
	}
}

// TestLeadOwner: LeadOwner reads live leads only.
func TestLeadOwner(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.Dialect) {
		db := testdb.Open(t, d.Open(t))
		if err := db.AutoMigrate(&lead.Lead{}); err != nil {
			t.Fatal(err)
		}
		rows := []lead.Lead{
			{Name: "a", Source: "Manual", Status: "New", Owner: "alice"},
			{Name: "b", Source: "Manual", Status: "New", Owner: "bob"},
			{Name: "c", Source: "Manual", Status: "New"},
		}
		if err := db.Create(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Delete(&rows[1]).Error; err != nil {
			t.Fatal(err)
		}
		if owner, err := access.LeadOwner(t.Context(), db, rows[0].ID); err != nil || owner != "alice" {
			t.Errorf("LeadOwner(a) = %q, %v", owner, err)
		}
		if _, err := access.LeadOwner(t.Context(), db, rows[1].ID); !errors.Is(err, access.ErrNotFound) {
			t.Errorf("LeadOwner(deleted) = %v, want ErrNotFound", err)
		}
		if _, err := access.LeadOwner(t.Context(), db, 1<<40); !errors.Is(err, access.ErrNotFound) {
			t.Errorf("LeadOwner(missing) = %v, want ErrNotFound", err)
		}
	})
}
