package hub

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Principal is the authenticated identity behind a connection. Hub methods,
// hooks and [Server.User] see it; it never contains the raw token.
type Principal struct {
	// ID identifies the user; every connection of one user shares it
	// (ASP.NET Core's Clients.User). Empty for anonymous connections.
	ID string
	// Roles are the user's roles, as the Authenticator read them.
	Roles []string
	// Claims holds every other claim the Authenticator chose to keep.
	Claims map[string]any
	// Expires is when the credential stops being accepted (for a JWT, exp
	// plus the Authenticator's leeway); zero means never. A connection still
	// open then is closed with allowReconnect, so that its client fetches a
	// fresh token and reconnects ([WithCloseOnExpiry]).
	Expires time.Time
}

// HasRole reports whether p has the named role.
func (p *Principal) HasRole(role string) bool {
	if p == nil {
		return false
	}
	for _, r := range p.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// An Authenticator turns a request into a principal. It is called for the
// negotiate request and again for every transport request (WebSocket upgrade,
// Server-Sent Events stream, each POST, poll and DELETE), so a token that
// expires ends a connection's ability to send; the principal's Expires ends
// the connection itself ([WithCloseOnExpiry]). An error means HTTP 401; its
// text is logged, never sent to the client.
type Authenticator interface {
	Authenticate(r *http.Request) (*Principal, error)
}

// A Revalidator is an Authenticator that can tell whether a principal it
// returned earlier still holds, for instance that the user was not disabled
// or their roles revoked meanwhile, from the principal alone: the hub keeps
// no token once a request is authenticated. With [WithRevalidation] the hub
// asks it at an interval for each open connection's principal; an error
// closes that connection with allowReconnect, and the reconnect
// authenticates again. It may run concurrently with Authenticate.
type Revalidator interface {
	Revalidate(ctx context.Context, p *Principal) error
}

// AuthenticatorFunc adapts a function to an Authenticator.
type AuthenticatorFunc func(r *http.Request) (*Principal, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (*Principal, error) { return f(r) }

// ErrNoToken is what an Authenticator returns when the request carries no token.
var ErrNoToken = errors.New("hub: no bearer token")

// BearerToken returns the token of r: the Authorization header's Bearer
// credentials, or else the access_token query parameter, which is where
// @microsoft/signalr puts it for WebSocket and Server-Sent Events requests in
// browsers (they cannot set headers there).
func BearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// A GroupAuthorizer decides whether a principal may join the group of one lead
// (Lead_{id}). Returning false denies the join with a clear message to the
// client; returning an error denies it too, logs the error and tells the
// client to try again, so a failing lookup never grants access.
type GroupAuthorizer interface {
	AuthorizeLeadGroup(ctx context.Context, p *Principal, leadID int64) (bool, error)
}

// GroupAuthorizerFunc adapts a function to a GroupAuthorizer.
type GroupAuthorizerFunc func(ctx context.Context, p *Principal, leadID int64) (bool, error)

// AuthorizeLeadGroup calls f(ctx, p, leadID).
func (f GroupAuthorizerFunc) AuthorizeLeadGroup(ctx context.Context, p *Principal, leadID int64) (bool, error) {
	return f(ctx, p, leadID)
}

type principalKey struct{}

// principalFrom returns the principal stored in ctx: the context of a hub
// method (Hub.Context()) and of the hooks carries it.
func principalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
