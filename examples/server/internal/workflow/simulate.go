package workflow

import (
	"encoding/json"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

// enrichment is what the simulated provider returns, stored as the lead's
// EnrichmentData JSON object.
type enrichment struct {
	Domain           string `json:"domain,omitempty"`
	Employees        int    `json:"employees"`
	Industry         string `json:"industry"`
	Location         string `json:"location"`
	Founded          int    `json:"founded"`
	AnnualRevenueUSD int64  `json:"annualRevenueUsd"`
	LinkedInURL      string `json:"linkedinUrl,omitempty"`
	Provider         string `json:"provider"`
}

func (e enrichment) json() (string, error) {
	b, err := json.Marshal(e)
	return string(b), err
}

var (
	industries = []string{"Software", "Logistics", "Healthcare", "Manufacturing", "Retail", "Financial Services",
		"Construction", "Hospitality", "Education", "Marketing"}
	locations = []string{"Austin, TX, US", "Boston, MA, US", "London, GB", "Berlin, DE", "Toronto, CA",
		"Dublin, IE", "Amsterdam, NL", "Denver, CO, US", "Sydney, AU", "Lyon, FR"}
	sizes = []int{3, 8, 15, 40, 85, 150, 320, 700, 1500, 5000}

	// failures are the simulated reasons each activity fails with.
	failures = map[string][]string{
		activityEnrich: {"enrichment provider timed out", "enrichment provider rate limit exceeded (HTTP 429)",
			"company domain could not be resolved"},
		activityScore: {"scoring service unavailable (HTTP 503)", "scoring model returned no result"},
		activityVet:   {"sanctions list check timed out", "vetting rules could not be loaded"},
		activityZoho: {"CRM rejected the record: duplicate email", "CRM authentication token expired",
			"CRM API quota exceeded"},
	}

	freeMail = []string{"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com"}
)

// failure reports whether activity fails this time, and why.
func (r *Runner) failure(activity string) (string, bool) {
	if r.cfg.failureRate == 0 {
		return "", false
	}
	r.randMu.Lock()
	defer r.randMu.Unlock()
	if r.rand.Float64() >= r.cfg.failureRate {
		return "", false
	}
	reasons := failures[activity]
	return reasons[r.rand.IntN(len(reasons))], true
}

// enrichment simulates the provider: plausible firmographics for the lead's
// company domain.
func (r *Runner) enrichment(l *lead.Lead) enrichment {
	r.randMu.Lock()
	defer r.randMu.Unlock()
	e := enrichment{
		Domain:    domain(l),
		Employees: sizes[r.rand.IntN(len(sizes))] + r.rand.IntN(10),
		Industry:  industries[r.rand.IntN(len(industries))],
		Location:  locations[r.rand.IntN(len(locations))],
		Founded:   1950 + r.rand.IntN(75),
		Provider:  "simulated",
	}
	e.AnnualRevenueUSD = int64(e.Employees) * int64(80_000+r.rand.IntN(120_000))
	if slug := slug(l.Company); slug != "" {
		e.LinkedInURL = "https://www.linkedin.com/company/" + slug
	}
	return e
}

// score rates the lead from 0 to 100: points for what is known about it and
// its company, plus a jitter of ±10 from the Runner's generator; one
// decimal.
func (r *Runner) score(l *lead.Lead, e enrichment) float64 {
	s := 20.0
	if l.Email != "" {
		s += 10
		if at := strings.LastIndexByte(l.Email, '@'); at >= 0 && !slices.Contains(freeMail, strings.ToLower(l.Email[at+1:])) {
			s += 10 // a company address
		}
	}
	if l.Phone != "" {
		s += 8
	}
	if l.Website != "" {
		s += 8
	}
	if l.Company != "" {
		s += 6
	}
	s += map[string]float64{
		lead.SourceLinkedIn: 12, lead.SourceGoogle: 8, lead.SourceManual: 8, lead.SourceYellowPages: 5, lead.SourceFacebook: 4,
	}[l.Source]
	switch {
	case e.Employees >= 500:
		s += 12
	case e.Employees >= 50:
		s += 8
	case e.Employees >= 10:
		s += 4
	}
	r.randMu.Lock()
	s += r.rand.Float64()*20 - 10
	r.randMu.Unlock()
	return math.Round(math.Max(0, math.Min(100, s))*10) / 10
}

// domain is the company's domain: the website's host, else the email's
// domain unless it is a free mail provider.
func domain(l *lead.Lead) string {
	if u, err := url.Parse(l.Website); err == nil && u.Hostname() != "" {
		return strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	}
	if at := strings.LastIndexByte(l.Email, '@'); at >= 0 {
		if d := strings.ToLower(l.Email[at+1:]); !slices.Contains(freeMail, d) {
			return d
		}
	}
	return ""
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteRune(c)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
