package hub_test

import (
	"encoding/json"
	"testing"

	"github.com/leadupdates/leadupdates/hub"
)

// connectAs opens a JSON WebSocket connection for a static token's user.
func connectAs(t *testing.T, e *env, token string) *rawWS {
	t.Helper()
	w, _ := e.connectAs(t, token)
	return w
}

func TestGroupsFilteredPerConnection(t *testing.T) {
	var asked []string
	owner := func(arg string, p *hub.Principal) bool {
		asked = append(asked, p.ID)
		return p.ID == arg
	}
	e := newEnv(t, hub.WithAuthenticator(staticTokens), hub.WithFilter("owner", owner))
	alice, bob := connectAs(t, e, "alice"), connectAs(t, e, "bob")
	e.s.GroupsFiltered("owner", "alice", hub.DefaultGroup).Send("ReceiveLeadUpdate", "for alice")
	e.s.GroupsFiltered("no such filter", "", hub.DefaultGroup).Send("ReceiveLeadUpdate", "for nobody")
	e.s.Groups(hub.DefaultGroup).Send("ReceiveLeadUpdate", "for everyone")

	for _, tt := range []struct {
		name string
		w    *rawWS
		want []string
	}{
		{"alice", alice, []string{"for alice", "for everyone"}},
		{"bob", bob, []string{"for everyone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, want := range tt.want {
				m := tt.w.nextJSON(true)
				var got string
				if m.Type != 1 || len(m.Arguments) != 1 || json.Unmarshal(m.Arguments[0], &got) != nil || got != want {
					t.Fatalf("got %s, want %q", m.Raw, want)
				}
			}
		})
	}
	if len(asked) != 2 {
		t.Errorf("the filter was asked %d times, want once per connection: %v", len(asked), asked)
	}
}
