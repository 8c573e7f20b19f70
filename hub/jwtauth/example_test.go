package jwtauth_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/jwtauth"
)

// A Signer and an Authenticator built with the two halves of a key pair and
// the same options agree on what a valid token is.
func Example() {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	opts := []jwtauth.Option{
		jwtauth.WithIssuer("https://login.example.com"),
		jwtauth.WithAudience("leadupdates"),
	}
	signer, err := jwtauth.NewSigner(priv, opts...)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := jwtauth.New(pub, opts...)
	if err != nil {
		log.Fatal(err)
	}

	tok, err := signer.Issue("alice", []string{"agent"}, 15*time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/leadupdates/negotiate", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	p, err := auth.Authenticate(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.ID, p.Roles, p.HasRole("agent"), p.Claims["iss"])
	// Output: alice [agent] true https://login.example.com
}

// A request without a token is told apart from one with a bad token, for
// instance to let anonymous users in while refusing forged tokens.
func ExampleAuthenticator_Authenticate_anonymous() {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	auth, err := jwtauth.New(pub)
	if err != nil {
		log.Fatal(err)
	}
	anonymous := hub.AuthenticatorFunc(func(r *http.Request) (*hub.Principal, error) {
		p, err := auth.Authenticate(r)
		if errors.Is(err, hub.ErrNoToken) {
			return &hub.Principal{}, nil
		}
		return p, err
	})

	for _, target := range []string{"/leadupdates/negotiate", "/leadupdates/negotiate?access_token=forged"} {
		p, err := anonymous.Authenticate(httptest.NewRequest("POST", target, nil))
		fmt.Printf("%s: %+v, %v\n", target, p, err)
	}
	// Output:
	// /leadupdates/negotiate: &{ID: Roles:[] Claims:map[] Expires:0001-01-01 00:00:00 +0000 UTC}, <nil>
	// /leadupdates/negotiate?access_token=forged: <nil>, jwtauth: token is malformed: token contains an invalid number of segments
}
