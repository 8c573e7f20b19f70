package hub_test

import (
	"encoding/json"
	"testing"

	"github.com/leadupdates/leadupdates/hub"
)

// connectAs opens a JSON WebSocket connection for a static token's user.
func connectAs(t *testing.T, e *env, token string) *rawWS {
	t.Helper()
	r := e.negotiate(t, "negotiateVersion=1&access_token="+token)
	w := e.open(t, "id="+*r.ConnectionToken+"&access_token="+token, false)
	w.handshake()
	w.invoke("sync", "LeaveLeadGroup", 1).ok(t)
	return w
}

func TestGroupsWhereFiltersPerConnection(t *testing.T) {
	e := newEnv(t, hub.WithAuthenticator(staticTokens))
	alice, bob := connectAs(t, e, "alice"), connectAs(t, e, "bob")
	var asked []string
	onlyAlice := func(user string, roles []string) bool {
		asked = append(asked, user)
		return user == "alice"
	}
	e.s.GroupsWhere(onlyAlice, hub.DefaultGroup).Send("ReceiveLeadUpdate", "for alice")
	e.s.GroupsWhere(nil, hub.DefaultGroup).Send("ReceiveLeadUpdate", "for everyone")

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
				if m.typ() != 1 || len(m.Arguments) != 1 || json.Unmarshal(m.Arguments[0], &got) != nil || got != want {
					t.Fatalf("got %s, want %q", m.raw, want)
				}
			}
		})
	}
	if len(asked) != 2 {
		t.Errorf("keep was asked %d times, want once per connection: %v", len(asked), asked)
	}
}
