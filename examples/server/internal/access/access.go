package access

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
	"gorm.io/gorm"
)

// The roles a token may carry.
const (
	RoleAdmin = "admin"
	RoleSales = "sales"
)

// CanSee reports whether the user with id and roles may see a lead owned by
// owner.
func CanSee(id string, roles []string, owner string) bool {
	if slices.Contains(roles, RoleAdmin) {
		return true
	}
	return slices.Contains(roles, RoleSales) && id != "" && owner == id
}

// ErrNotFound is returned by LeadOwner for a lead that does not exist.
var ErrNotFound = errors.New("access: lead not found")

// LeadOwner reads the owner of a live lead from the database, for decisions
// that are rare and must be exact (joining a lead's group).
func LeadOwner(ctx context.Context, db *gorm.DB, id int64) (string, error) {
	var l lead.Lead
	err := db.WithContext(ctx).Select("id", "owner").Take(&l, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("access: lead owner: %w", err)
	}
	return l.Owner, nil
}
