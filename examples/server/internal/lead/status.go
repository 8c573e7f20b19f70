package lead

import "slices"

// The statuses of a lead, in the order the workflow moves it through them.
const (
	StatusNew          = "New"
	StatusEnriching    = "Enriching"
	StatusEnriched     = "Enriched"
	StatusScored       = "Scored"
	StatusVetted       = "Vetted"
	StatusQualified    = "Qualified"
	StatusDisqualified = "Disqualified"
	StatusSyncedToCrm  = "SyncedToCrm"
	StatusFailed       = "Failed"
)

// Statuses lists every status.
var Statuses = []string{
	StatusNew, StatusEnriching, StatusEnriched, StatusScored, StatusVetted,
	StatusQualified, StatusDisqualified, StatusSyncedToCrm, StatusFailed,
}

// The sources a lead comes from: the four scrapers and manual entry.
const (
	SourceGoogle      = "Google"
	SourceLinkedIn    = "LinkedIn"
	SourceFacebook    = "Facebook"
	SourceYellowPages = "YellowPages"
	SourceManual      = "Manual"
)

// Sources lists every source.
var Sources = []string{SourceGoogle, SourceLinkedIn, SourceFacebook, SourceYellowPages, SourceManual}

// transitions are the moves the workflow and the API may make. Any status
// may go to Failed (an activity failed) except the terminal SyncedToCrm;
// Failed and Disqualified leads may be reopened as New and processed again.
var transitions = map[string][]string{
	StatusNew:          {StatusEnriching, StatusDisqualified},
	StatusEnriching:    {StatusEnriched},
	StatusEnriched:     {StatusScored},
	StatusScored:       {StatusVetted, StatusDisqualified},
	StatusVetted:       {StatusQualified, StatusDisqualified},
	StatusQualified:    {StatusSyncedToCrm, StatusDisqualified},
	StatusDisqualified: {StatusNew},
	StatusFailed:       {StatusNew},
	StatusSyncedToCrm:  {},
}

// ValidStatus reports whether s is one of Statuses.
func ValidStatus(s string) bool { return slices.Contains(Statuses, s) }

// ValidSource reports whether s is one of Sources.
func ValidSource(s string) bool { return slices.Contains(Sources, s) }

// CanMove reports whether a lead may go from status from to status to.
// Staying put is allowed (a no-op).
func CanMove(from, to string) bool {
	if from == to {
		return ValidStatus(to)
	}
	if to == StatusFailed {
		return from != StatusSyncedToCrm && ValidStatus(from)
	}
	return slices.Contains(transitions[from], to)
}

// Processable reports whether the workflow may start on a lead in status s.
func Processable(s string) bool {
	return s == StatusNew || s == StatusFailed || s == StatusDisqualified
}
