// Package jwtauth authenticates hub connections with JSON Web Tokens. Its
// [Authenticator] is a [hub.Authenticator]: it verifies the signature and
// the exp, nbf, iat, iss and aud claims of a request's bearer token and
// turns the token's claims into a [hub.Principal].
//
// The token comes from the Authorization header or, where browsers cannot
// set headers (WebSocket, Server-Sent Events), from the access_token query
// parameter; see [hub.BearerToken]. The hub authenticates every transport
// request, so keep tokens short-lived: one that expires ends a connection's
// ability to send.
//
// # First program
//
//	auth, err := jwtauth.New([]byte(os.Getenv("JWT_SECRET")), // 32 bytes or more
//		jwtauth.WithIssuer("https://login.example.com"),
//		jwtauth.WithAudience("leadupdates"),
//	)
//	if err != nil {
//		log.Fatal(err)
//	}
//	srv, err := hub.New(hub.WithAuthenticator(auth))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer srv.Close()
//	mux := http.NewServeMux()
//	srv.Mount(mux)
//	log.Fatal(http.ListenAndServe(":8080", mux))
//
// # Keys and algorithms
//
// One Authenticator holds one key, and the key's type decides which
// algorithms it accepts (see [New]): an HMAC secret accepts only HS*, an RSA
// public key only RS* and PS*, and so on. A token whose alg header names any
// other algorithm, "none" included, is refused before its signature is
// checked, which is what defeats algorithm-confusion attacks. Keys that are
// too weak to trust fail at New, not at the first request.
//
// # Issuing tokens
//
// A [Signer] issues tokens for tests, examples and services that mint their
// own. Build it with the private half of the key and the same [Option]s as
// the Authenticator, and its tokens carry exactly what the Authenticator
// requires.
//
// # Concurrency
//
// Authenticators and Signers are immutable after construction and safe for
// concurrent use.
package jwtauth
