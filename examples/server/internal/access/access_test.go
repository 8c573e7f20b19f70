package access_test

import (
	"errors"
	"testing"

	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"github.com/leadupdates/leadupdates/examples/server/internal/testdb"
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

// TestOwners: the cache loads every owned lead, deleted ones included, and
// follows Remember; LeadOwner reads live leads only.
func TestOwners(t *testing.T) {
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
		o := access.NewOwners()
		if err := o.Load(t.Context(), db); err != nil {
			t.Fatal(err)
		}
		if o.Owner(rows[0].ID) != "alice" || o.Owner(rows[1].ID) != "bob" || o.Owner(rows[2].ID) != "" {
			t.Errorf("loaded owners %q %q %q", o.Owner(rows[0].ID), o.Owner(rows[1].ID), o.Owner(rows[2].ID))
		}
		o.Remember(rows[2].ID, "carol")
		o.Remember(rows[0].ID, "")
		if o.Owner(rows[2].ID) != "carol" || o.Owner(rows[0].ID) != "" {
			t.Errorf("after Remember: %q %q", o.Owner(rows[2].ID), o.Owner(rows[0].ID))
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
