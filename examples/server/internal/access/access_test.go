package access_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glebarez/sqlite"
	"github.com/leadupdates/leadupdates/examples/server/internal/access"
	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
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
	for name, open := range map[string]func(t *testing.T) *gorm.DB{"postgres": openPostgres, "sqlite": openSQLite} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
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
}

func openSQLite(t *testing.T) *gorm.DB {
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "a.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return db
}

// openPostgres gives the test a schema of its own on the real PostgreSQL.
func openPostgres(t *testing.T) *gorm.DB {
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "access_" + hex.EncodeToString(b)
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("PostgreSQL is needed at %s (or set TEST_DATABASE_URL): %v", base, err)
	}
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	db, err := gorm.Open(postgres.Open(base+sep+"search_path="+schema), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if s, err := admin.DB(); err == nil {
			s.Close()
		}
	})
	return db
}
