package lead

import (
	"encoding/json"
	"time"

	"gorm.io/gorm"
)

// Lead is one prospective customer, as stored in the leads table. Every
// write goes through GORM so that the interceptor sees it.
type Lead struct {
	ID      int64  `gorm:"primaryKey"`
	Name    string `gorm:"size:200;not null"`
	Company string `gorm:"size:200"`
	Email   string `gorm:"size:254"`
	Phone   string `gorm:"size:50"`
	Website string `gorm:"size:500"`
	Source  string `gorm:"size:32;not null"`
	Status  string `gorm:"size:32;not null"`
	// Score is nil until the lead has been scored.
	Score *float64
	// Owner is the user id of the salesperson the lead belongs to; empty
	// for an unassigned lead, which only admins see.
	Owner string `gorm:"size:100;index"`
	// EnrichmentData is a JSON object, empty until enriched.
	EnrichmentData string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// ProcessedAt is set when the workflow finished with the lead.
	ProcessedAt *time.Time
	DeletedAt   gorm.DeletedAt `gorm:"index"`
}

// View is a lead as clients see it: in REST responses and as the `lead` of
// a NEW_LEAD or ENRICHMENT_UPDATE message. It holds only JSON types (times
// are RFC 3339 strings), so JSON and MessagePack clients see the same value.
type View struct {
	ID             int64          `json:"id"`
	Name           string         `json:"name"`
	Company        string         `json:"company,omitempty"`
	Email          string         `json:"email,omitempty"`
	Phone          string         `json:"phone,omitempty"`
	Website        string         `json:"website,omitempty"`
	Source         string         `json:"source"`
	Status         string         `json:"status"`
	Score          *float64       `json:"score,omitempty"`
	Owner          string         `json:"owner,omitempty"`
	EnrichmentData map[string]any `json:"enrichmentData,omitempty"`
	CreatedAt      string         `json:"createdAt"`
	UpdatedAt      string         `json:"updatedAt"`
	ProcessedAt    string         `json:"processedAt,omitempty"`
}

// timeFormat is the wire contract's: RFC 3339 UTC with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t as the wire contract does; the zero time is "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

// DecodeEnrichment decodes stored enrichment data; nil when there is none
// or it is not a JSON object. It is decoded rather than passed through as
// raw JSON because a MessagePack client must see a map, not bytes.
func DecodeEnrichment(s string) map[string]any {
	if s == "" {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

// View returns the client view of l.
func (l *Lead) View() View {
	v := View{
		ID: l.ID, Name: l.Name, Company: l.Company, Email: l.Email, Phone: l.Phone,
		Website: l.Website, Source: l.Source, Status: l.Status, Score: l.Score, Owner: l.Owner,
		CreatedAt: FormatTime(l.CreatedAt), UpdatedAt: FormatTime(l.UpdatedAt),
	}
	v.EnrichmentData = DecodeEnrichment(l.EnrichmentData)
	if l.ProcessedAt != nil {
		v.ProcessedAt = FormatTime(*l.ProcessedAt)
	}
	return v
}
