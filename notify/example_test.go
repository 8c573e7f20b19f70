package notify_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/philippseith/signalr"
)

// printingHub stands in for *hub.Server: it prints what it is asked to
// send, and whether bob, a salesperson, would see it through keep (the
// filter the application registers as notify.FilterName on the hub).
type printingHub struct {
	keep hub.Filter
}

func (h printingHub) Groups(groups ...string) signalr.ClientProxy {
	return printingProxy{func(*hub.Principal) bool { return true }, groups}
}

func (h printingHub) GroupsFiltered(filter, key string, groups ...string) signalr.ClientProxy {
	return printingProxy{func(p *hub.Principal) bool { return h.keep(key, p) }, groups}
}

func (h printingHub) Publish(e hub.Entry) {
	if e.Filter == "" {
		h.Groups(e.Groups...).Send(e.Target, e.Args...)
	} else {
		h.GroupsFiltered(e.Filter, e.Arg, e.Groups...).Send(e.Target, e.Args...)
	}
}

type printingProxy struct {
	keep   func(*hub.Principal) bool
	groups []string
}

func (p printingProxy) Send(method string, args ...any) {
	m := args[0].(*notify.LeadUpdateMessage)
	b, _ := json.Marshal(struct {
		Type      string `json:"type"`
		LeadID    int64  `json:"leadId"`
		NewStatus string `json:"newStatus"`
	}{m.Type, m.LeadID, m.NewStatus})
	fmt.Printf("%s to %v: %s; bob sees it: %v\n", method, p.groups, b, p.keep(&hub.Principal{ID: "bob", Roles: []string{"sales"}}))
}

// The application wires a Notifier to the hub (here a stand-in that
// prints), with an audience so that salespeople only see their own leads:
// the notifier names each event's owner, the hub's filter decides.
func Example() {
	owners := map[int64]string{7: "bob", 8: "alice"}
	h := printingHub{keep: func(owner string, p *hub.Principal) bool {
		return p.HasRole("admin") || owner == p.ID
	}}
	n, err := notify.New(h, notify.WithAudience(func(ev *notify.LeadUpdateMessage) string { return owners[ev.LeadID] }))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = n.NotifyLeadStatusUpdate(ctx, 7, "Scored", "Qualified")
	_ = n.NotifyLeadStatusUpdate(ctx, 8, "New", "Enriching")
	invalid := n.NotifyLeadStatusUpdate(ctx, 8, "New", "New")
	n.Close() // delivers what is queued, then stops
	fmt.Println(invalid)
	fmt.Println(n.NotifyLeadDeleted(ctx, 7))
	// Output:
	// ReceiveLeadUpdate to [LeadUpdates Lead_7]: {"type":"STATUS_UPDATE","leadId":7,"newStatus":"Qualified"}; bob sees it: true
	// ReceiveLeadUpdate to [LeadUpdates Lead_8]: {"type":"STATUS_UPDATE","leadId":8,"newStatus":"Enriching"}; bob sees it: false
	// notify: invalid event: status of lead 8 did not change ("New")
	// notify: notifier closed
}
