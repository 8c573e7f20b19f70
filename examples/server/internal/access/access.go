package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

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

// Owners is a concurrency-safe cache of lead id → owner for the leads that
// have one. Producers keep it current: Remember when a lead is created or
// its owner changes (before the event is sent), Load once at start.
type Owners struct {
	mu sync.RWMutex
	m  map[int64]string
}

// NewOwners returns an empty cache.
func NewOwners() *Owners { return &Owners{m: make(map[int64]string)} }

// Load fills the cache with every lead that has an owner, deleted or not
// (an event about a deleted lead still needs its owner).
func (o *Owners) Load(ctx context.Context, db *gorm.DB) error {
	var rows []struct {
		ID    int64
		Owner string
	}
	err := db.WithContext(ctx).Unscoped().Model(&lead.Lead{}).
		Where("owner <> ''").Select("id", "owner").
		FindInBatches(&rows, 10000, func(*gorm.DB, int) error {
			o.mu.Lock()
			for _, r := range rows {
				o.m[r.ID] = r.Owner
			}
			o.mu.Unlock()
			return nil
		}).Error
	if err != nil {
		return fmt.Errorf("access: load owners: %w", err)
	}
	return nil
}

// Remember records that lead id belongs to owner ("" = nobody).
func (o *Owners) Remember(id int64, owner string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if owner == "" {
		delete(o.m, id)
		return
	}
	o.m[id] = owner
}

// Owner returns the owner of lead id, "" when it has none or is unknown.
func (o *Owners) Owner(id int64) string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.m[id]
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
