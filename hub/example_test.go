package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/leadupdates/leadupdates/hub"
)

// A service mounts the hub on its mux and sends to groups from anywhere.
func Example() {
	srv, err := hub.New(
		hub.WithGroupAuthorizer(hub.GroupAuthorizerFunc(func(ctx context.Context, p *hub.Principal, leadID int64) (bool, error) {
			return p.HasRole("admin"), nil
		})),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Mount(mux)
	// http.ListenAndServe(":8080", mux) in a real service.

	srv.Groups(hub.DefaultGroup, hub.LeadGroup(42)).Send("ReceiveLeadUpdate", map[string]any{
		"type": "STATUS_UPDATE", "leadId": 42, "previousStatus": "New", "newStatus": "Enriching",
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	fmt.Println(srv.Path(), srv.ConnectionCount())
	// Output: /leadupdates 0
}

func ExampleLeadGroup() {
	fmt.Println(hub.DefaultGroup, hub.LeadGroup(42))
	// Output: LeadUpdates Lead_42
}

func ExampleBearerToken() {
	r, _ := http.NewRequest(http.MethodGet, "/leadupdates?id=abc&access_token=t0k3n", nil)
	fmt.Println(hub.BearerToken(r))
	r.Header.Set("Authorization", "Bearer h3ad3r")
	fmt.Println(hub.BearerToken(r))
	// Output:
	// t0k3n
	// h3ad3r
}
