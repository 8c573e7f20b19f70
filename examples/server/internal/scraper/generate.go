package scraper

import (
	"fmt"
	"strings"

	"github.com/leadupdates/leadupdates/examples/server/internal/lead"
)

// The word lists the simulated sources draw from: ASCII only, so that the
// derived emails and URLs are valid.
var (
	firstNames = []string{"Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken",
		"Frances", "Edsger", "Radia", "Tim", "Hedy", "John", "Sophie", "Carlos", "Amara", "Mei", "Ravi"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov",
		"Thompson", "Allen", "Dijkstra", "Perlman", "Berners", "Lamarr", "Backus", "Wilson", "Mendes", "Okafor",
		"Chen", "Patel"}
	companyStems = []string{"Northwind", "Bluebird", "Ironbridge", "Summit", "Riverside", "Brightpath", "Oakridge",
		"Harbor", "Silverline", "Keystone", "Evergreen", "Redwood", "Granite", "Lighthouse", "Crescent", "Pioneer"}
	companyKinds = map[string][]string{
		lead.SourceGoogle:      {"Software", "Analytics", "Digital", "Labs", "Systems"},
		lead.SourceLinkedIn:    {"Consulting", "Partners", "Technologies", "Capital", "Group"},
		lead.SourceFacebook:    {"Studio", "Boutique", "Events", "Fitness", "Bakery"},
		lead.SourceYellowPages: {"Plumbing", "Dental", "Auto Repair", "Roofing", "Landscaping"},
	}
	tlds     = []string{"com", "com", "io", "co.uk", "de", "net"}
	freeMail = []string{"gmail.com", "outlook.com", "yahoo.com"}
)

// generate makes one harvest's leads: New, from source, each owned by one
// of the configured owners. What a source knows differs as it would: a
// LinkedIn lead has a work email, a Facebook lead often a free-mail one, a
// Yellow Pages lead always a phone and sometimes no email.
func (s *Scraper) generate(source string) []lead.Lead {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	r := s.rand
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	leads := make([]lead.Lead, 1+r.IntN(s.cfg.batch))
	for i := range leads {
		first, last := pick(firstNames), pick(lastNames)
		company := pick(companyStems) + " " + pick(companyKinds[source])
		domain := strings.ToLower(strings.ReplaceAll(company, " ", "")) + "." + pick(tlds)
		l := lead.Lead{
			Name:    first + " " + last,
			Company: company,
			Source:  source,
			Status:  lead.StatusNew,
			Owner:   pick(s.cfg.owners),
		}
		local := strings.ToLower(first + "." + last)
		switch source {
		case lead.SourceFacebook:
			if r.IntN(2) == 0 {
				domain = pick(freeMail)
			} else {
				l.Website = "https://www." + domain
			}
			l.Email = local + "@" + domain
		case lead.SourceYellowPages:
			if r.IntN(3) > 0 {
				l.Email = "info@" + domain
			}
			l.Website = "https://www." + domain
		default:
			l.Email = local + "@" + domain
			l.Website = "https://www." + domain
		}
		if source == lead.SourceYellowPages || r.IntN(3) > 0 {
			l.Phone = fmt.Sprintf("+1 %03d-%03d-%04d", 201+r.IntN(780), 200+r.IntN(800), r.IntN(10000))
		}
		leads[i] = l
	}
	return leads
}
