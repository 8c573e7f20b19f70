package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

// Field limits, as in API.md; they fit the columns of lead.Lead.
const (
	maxName       = 200
	maxCompany    = 200
	maxEmail      = 254
	maxPhone      = 50
	maxWebsite    = 500
	maxOwner      = 100
	maxEnrichment = 16 << 10
	maxImport     = 1000
)

// newLead is the body of POST /api/leads and one row of an import.
type newLead struct {
	Name    string `json:"name"`
	Company string `json:"company"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Website string `json:"website"`
	Source  string `json:"source"`
	Owner   string `json:"owner"`
}

// toLead validates n for u and returns the lead to store; field names in
// errors get prefix. A salesperson's lead is theirs: an empty owner becomes
// u.id, another owner is forbidden.
func (n newLead) toLead(u user, prefix string) (*lead.Lead, error) {
	l := &lead.Lead{
		Name: strings.TrimSpace(n.Name), Company: strings.TrimSpace(n.Company),
		Email: strings.TrimSpace(n.Email), Phone: strings.TrimSpace(n.Phone),
		Website: strings.TrimSpace(n.Website), Source: strings.TrimSpace(n.Source),
		Owner: strings.TrimSpace(n.Owner), Status: lead.StatusNew,
	}
	if l.Name == "" {
		return nil, badRequest(prefix+"name", prefix+"name is required")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"name", l.Name, maxName}, {"company", l.Company, maxCompany}, {"email", l.Email, maxEmail},
		{"phone", l.Phone, maxPhone}, {"website", l.Website, maxWebsite}, {"owner", l.Owner, maxOwner},
	} {
		if err := checkText(prefix+f.name, f.v, f.max); err != nil {
			return nil, err
		}
	}
	if l.Email != "" && !validEmail(l.Email) {
		return nil, badRequest(prefix+"email", prefix+"email is not a valid address")
	}
	if l.Website != "" && !validURL(l.Website) {
		return nil, badRequest(prefix+"website", prefix+"website must be an http or https URL")
	}
	if l.Source == "" {
		l.Source = lead.SourceManual
	}
	if !lead.ValidSource(l.Source) {
		return nil, badRequest(prefix+"source", fmt.Sprintf("%ssource must be one of %s", prefix, strings.Join(lead.Sources, ", ")))
	}
	if !u.admin() {
		if l.Owner != "" && l.Owner != u.id {
			return nil, &apiError{status: http.StatusForbidden, msg: "a salesperson creates leads for themselves only", field: prefix + "owner"}
		}
		l.Owner = u.id
	}
	return l, nil
}

// checkText rejects text longer than max characters, and invalid UTF-8 and
// NUL bytes, which PostgreSQL refuses (a 500 otherwise). JSON decoding
// already replaced invalid UTF-8; query parameters have not.
func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return badRequest(field, field+" is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > max {
		return badRequest(field, fmt.Sprintf("%s is longer than %d characters", field, max))
	}
	if strings.ContainsRune(v, 0) {
		return badRequest(field, field+" contains a NUL character")
	}
	return nil
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// patchBody is the body of PATCH /api/leads/{id}; absent fields are nil, a
// JSON null is "null".
type patchBody struct {
	Status         json.RawMessage `json:"status"`
	Score          json.RawMessage `json:"score"`
	Owner          json.RawMessage `json:"owner"`
	EnrichmentData json.RawMessage `json:"enrichmentData"`
}

// patch is a validated patchBody: nil means "leave as is".
type patch struct {
	status     *string
	score      **float64 // *nil: clear the score
	owner      *string
	enrichment *string // compact JSON object
}

func isNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

func (b patchBody) validate() (patch, error) {
	var p patch
	if b.Status != nil {
		var s string
		if isNull(b.Status) || json.Unmarshal(b.Status, &s) != nil {
			return p, badRequest("status", "status must be a string")
		}
		if !lead.ValidStatus(s) {
			return p, badRequest("status", "status must be one of "+strings.Join(lead.Statuses, ", "))
		}
		p.status = &s
	}
	if b.Score != nil {
		var sc *float64
		if !isNull(b.Score) {
			var f float64
			if err := json.Unmarshal(b.Score, &f); err != nil {
				return p, badRequest("score", "score must be a number between 0 and 100, or null")
			}
			if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 100 {
				return p, badRequest("score", "score must be between 0 and 100")
			}
			sc = &f
		}
		p.score = &sc
	}
	if b.Owner != nil {
		var s string
		if isNull(b.Owner) || json.Unmarshal(b.Owner, &s) != nil {
			return p, badRequest("owner", `owner must be a string ("" for nobody)`)
		}
		s = strings.TrimSpace(s)
		if err := checkText("owner", s, maxOwner); err != nil {
			return p, err
		}
		p.owner = &s
	}
	if b.EnrichmentData != nil {
		var buf bytes.Buffer
		if err := json.Compact(&buf, b.EnrichmentData); err != nil || buf.Len() == 0 || buf.Bytes()[0] != '{' {
			return p, badRequest("enrichmentData", "enrichmentData must be a JSON object")
		}
		if buf.Len() > maxEnrichment {
			return p, badRequest("enrichmentData", fmt.Sprintf("enrichmentData is larger than %d bytes", maxEnrichment))
		}
		s := buf.String()
		p.enrichment = &s
	}
	return p, nil
}

// compact returns s compacted, or s when it is not JSON.
func compact(s string) string {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(s)) != nil {
		return s
	}
	return buf.String()
}
