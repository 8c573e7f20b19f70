package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"gorm.io/gorm"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

// page is the answer of GET /api/leads.
type page struct {
	Items    []lead.View `json:"items"`
	Page     int         `json:"page"`
	PageSize int         `json:"pageSize"`
	Total    int64       `json:"total"`
	// Position is the event log's head read before the page: every event
	// at or below it is reflected in the page, so a client catches up from
	// it (CatchUp). Absent without a log; 0 for an empty one.
	Position *uint64 `json:"position,omitempty"`
}

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// list serves GET /api/leads: newest first, filtered by status, source and
// owner; a salesperson sees only their own leads.
func (a *API) list(w http.ResponseWriter, r *http.Request, u user) error {
	q := r.URL.Query()
	pg, err := intParam(q.Get("page"), "page", 1, 1, math.MaxInt32)
	if err != nil {
		return err
	}
	size, err := intParam(q.Get("pageSize"), "pageSize", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return err
	}
	status, source, owner := q.Get("status"), q.Get("source"), q.Get("owner")
	if status != "" && !lead.ValidStatus(status) {
		return badRequest("status", "status is not a lead status")
	}
	if source != "" && !lead.ValidSource(source) {
		return badRequest("source", "source is not a lead source")
	}
	if err := checkText("owner", owner, maxOwner); err != nil {
		return err
	}
	filter := func(db *gorm.DB) *gorm.DB {
		if status != "" {
			db = db.Where("status = ?", status)
		}
		if source != "" {
			db = db.Where("source = ?", source)
		}
		if owner != "" {
			db = db.Where("owner = ?", owner)
		}
		if !u.admin() {
			db = db.Where("owner = ?", u.id)
		}
		return db
	}
	ctx := r.Context()
	var position *uint64
	if a.log != nil {
		head, err := a.log.Head(ctx)
		if err != nil {
			return fmt.Errorf("event log head: %w", err)
		}
		position = &head
	}
	var total int64
	if err := a.db.WithContext(ctx).Model(&lead.Lead{}).Scopes(filter).Count(&total).Error; err != nil {
		return fmt.Errorf("count leads: %w", err)
	}
	var rows []lead.Lead
	if err := a.db.WithContext(ctx).Scopes(filter).Order("created_at DESC, id DESC").
		Limit(size).Offset((pg - 1) * size).Find(&rows).Error; err != nil {
		return fmt.Errorf("list leads: %w", err)
	}
	out := page{Items: make([]lead.View, 0, len(rows)), Page: pg, PageSize: size, Total: total, Position: position}
	for i := range rows {
		out.Items = append(out.Items, rows[i].View())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// intParam parses a query parameter, def when empty.
func intParam(s, name string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(name, fmt.Sprintf("%s must be an integer from %d to %d", name, lo, hi))
	}
	return n, nil
}

// create serves POST /api/leads.
func (a *API) create(w http.ResponseWriter, r *http.Request, u user) error {
	var n newLead
	if err := readBody(w, r, &n); err != nil {
		return err
	}
	l, err := n.toLead(u, "")
	if err != nil {
		return err
	}
	if err := a.db.WithContext(r.Context()).Create(l).Error; err != nil {
		return fmt.Errorf("create lead: %w", err)
	}
	w.Header().Set("Location", "/api/leads/"+strconv.FormatInt(l.ID, 10))
	writeJSON(w, http.StatusCreated, l.View())
	return nil
}

// importBatch is how many rows one INSERT of an import carries.
const importBatch = 100

// importLeads serves POST /api/leads/import: every row is validated first,
// then all are stored in one transaction, or none.
func (a *API) importLeads(w http.ResponseWriter, r *http.Request, u user) error {
	var raw []json.RawMessage
	if err := readBody(w, r, &raw); err != nil {
		return err
	}
	if len(raw) == 0 || len(raw) > maxImport {
		return badRequest("", fmt.Sprintf("an import has 1 to %d rows, not %d", maxImport, len(raw)))
	}
	rows := make([]*lead.Lead, len(raw))
	for i, b := range raw {
		prefix := "[" + strconv.Itoa(i) + "]."
		var n newLead
		if err := decodeStrict(b, &n, prefix); err != nil {
			return err
		}
		l, err := n.toLead(u, prefix)
		if err != nil {
			return err
		}
		rows[i] = l
	}
	err := a.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		return tx.CreateInBatches(rows, importBatch).Error
	})
	if err != nil {
		return fmt.Errorf("import %d leads: %w", len(rows), err)
	}
	views := make([]lead.View, len(rows))
	for i, l := range rows {
		views[i] = l.View()
	}
	writeJSON(w, http.StatusCreated, struct {
		Items []lead.View `json:"items"`
	}{views})
	return nil
}

// leadID parses the {id} of the path.
func leadID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("id", "id must be a positive integer")
	}
	return id, nil
}

// find returns the live lead of the path's id that u may see.
func (a *API) find(ctx context.Context, r *http.Request, u user) (*lead.Lead, error) {
	id, err := leadID(r)
	if err != nil {
		return nil, err
	}
	l, err := a.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !u.canSee(l.Owner) {
		// The same answer as for a lead that does not exist, so that lead
		// ids cannot be enumerated.
		return nil, errNotFound
	}
	return l, nil
}

// load reads a live lead.
func (a *API) load(ctx context.Context, id int64) (*lead.Lead, error) {
	var l lead.Lead
	err := a.db.WithContext(ctx).Take(&l, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read lead %d: %w", id, err)
	}
	return &l, nil
}

// get serves GET /api/leads/{id}.
func (a *API) get(w http.ResponseWriter, r *http.Request, u user) error {
	l, err := a.find(r.Context(), r, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l.View())
	return nil
}

// patch serves PATCH /api/leads/{id}. It writes only the columns that
// change, on the condition that status and owner are still those it checked
// (otherwise 409), so that a concurrent move is never overwritten by a
// transition validated against the old status.
func (a *API) patch(w http.ResponseWriter, r *http.Request, u user) error {
	if _, err := leadID(r); err != nil {
		return err
	}
	var body patchBody
	if err := readBody(w, r, &body); err != nil {
		return err
	}
	p, err := body.validate()
	if err != nil {
		return err
	}
	ctx := r.Context()
	l, err := a.find(ctx, r, u)
	if err != nil {
		return err
	}
	changes := map[string]any{}
	if p.status != nil && *p.status != l.Status {
		if !lead.CanMove(l.Status, *p.status) {
			return conflict(fmt.Sprintf("a lead cannot move from %s to %s", l.Status, *p.status))
		}
		changes["status"] = *p.status
	}
	if p.score != nil && !sameScore(l.Score, *p.score) {
		if *p.score == nil {
			changes["score"] = nil
		} else {
			changes["score"] = **p.score
		}
	}
	if p.owner != nil && *p.owner != l.Owner {
		if !u.admin() {
			return forbidden("a salesperson cannot reassign leads")
		}
		changes["owner"] = *p.owner
	}
	if p.enrichment != nil && *p.enrichment != compact(l.EnrichmentData) {
		changes["enrichment_data"] = *p.enrichment
	}
	if len(changes) == 0 {
		writeJSON(w, http.StatusOK, l.View())
		return nil
	}
	res := a.db.WithContext(ctx).Model(&lead.Lead{}).
		Where("id = ? AND status = ? AND owner = ?", l.ID, l.Status, l.Owner).Updates(changes)
	if res.Error != nil {
		return fmt.Errorf("update lead %d: %w", l.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return a.changedMeanwhile(ctx, l.ID)
	}
	if l, err = a.load(ctx, l.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l.View())
	return nil
}

// changedMeanwhile explains a conditional write that matched no row: the
// lead is gone (404) or its status or owner moved (409).
func (a *API) changedMeanwhile(ctx context.Context, id int64) error {
	l, err := a.load(ctx, id)
	if err != nil {
		return err
	}
	return conflict(fmt.Sprintf("the lead changed meanwhile (status %s); reload and retry", l.Status))
}

func sameScore(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// delete serves DELETE /api/leads/{id}: a soft delete, conditional on the
// owner that was checked.
func (a *API) delete(w http.ResponseWriter, r *http.Request, u user) error {
	ctx := r.Context()
	l, err := a.find(ctx, r, u)
	if err != nil {
		return err
	}
	res := a.db.WithContext(ctx).Where("id = ? AND owner = ?", l.ID, l.Owner).Delete(&lead.Lead{})
	if res.Error != nil {
		return fmt.Errorf("delete lead %d: %w", l.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return a.changedMeanwhile(ctx, l.ID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
