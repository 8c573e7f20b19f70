package hub

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// A SessionStore keeps what another instance needs to take over a stateful
// connection whose client re-attaches there (behind a load balancer without
// sticky sessions): see [WithSessionStore]. Every instance of a hub shares
// one; hub/pgsession implements it over PostgreSQL.
//
// A session is owned by one instance at a time (Owner, with an Epoch that
// grows each time another instance takes it over); an instance writes and
// deletes only what it still owns, so an instance that lost a connection
// to another can never overwrite or end it.
type SessionStore interface {
	// Save inserts or updates sessions, in one statement. A stored session
	// whose Owner or Epoch differs from the one saved was taken over by
	// another instance meanwhile: it is left as it is, without an error.
	Save(ctx context.Context, ss []Session) error
	// Claim makes owner the owner of the unexpired session of tokenHash,
	// atomically, if it belongs to userID, and extends it until until. The
	// Epoch grows by one when the owner changes. It returns the session as
	// claimed, an error wrapping ErrNoSession when there is none (or it
	// expired), or one wrapping ErrSessionUser, claiming nothing, when it
	// belongs to another user.
	Claim(ctx context.Context, tokenHash TokenHash, userID, owner string, until time.Time) (Session, error)
	// Delete removes the session of tokenHash if owner still owns it at
	// epoch, and reports whether it did.
	Delete(ctx context.Context, tokenHash TokenHash, owner string, epoch int64) (bool, error)
}

// ErrNoSession is what a [SessionStore]'s Claim wraps when it holds no
// unexpired session for the token.
var ErrNoSession = errors.New("hub: no such session")

// ErrSessionUser is what a [SessionStore]'s Claim wraps when the session
// belongs to another user than the one re-attaching.
var ErrSessionUser = errors.New("hub: session belongs to another user")

// TokenHash is the SHA-256 of a connection token: a store keeps it, never
// the token, which is what lets a client re-attach.
type TokenHash [sha256.Size]byte

// HashToken returns the TokenHash of a connection token.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }

// A Session is what an instance needs to resume a stateful connection it
// does not hold.
type Session struct {
	TokenHash    TokenHash
	ConnectionID string
	UserID       string   // Principal.ID
	Protocol     string   // "json" or "messagepack"
	Groups       []string // every group the connection is in
	// Acked is the id of the last message to the client that the client
	// acknowledged (and the owner saved): the next instance says Sequence
	// Acked+1.
	Acked int64
	// Unacked bounds how many counted messages the owner may have sent
	// beyond Acked: the next instance sends that many harmless messages
	// first, which the client drops in place of those it already has.
	Unacked int64
	// Position is where a replay from the [Log] starts: every positioned
	// entry at or below it that the connection may see was acknowledged.
	Position uint64
	// Received counts the client's messages the owner received: the client
	// resends those it was not acknowledged, and the next instance ignores
	// the ones up to Received.
	Received int64
	Owner    string // the instance that holds the connection
	Epoch    int64  // grows each time another instance claims it
	Expires  time.Time
}

// WithSessionStore lets a stateful connection (withStatefulReconnect) move
// between instances behind a load balancer without sticky sessions: each
// instance saves its stateful connections' sessions to st (on connect, on a
// group change, on each Ack from the client and once a window while
// attached; batched, one Save per 100 ms at most, never on a send), and a
// WebSocket re-attaching to a connection this instance does not hold claims
// it from st and resumes it here, with the same connection id, protocol and
// groups, for the same user only (another gets 403). It replays from the
// [Log] what the connection may have missed (see [WithLog]; without one,
// what was sent during the cut is lost): every logged entry then reaches
// the client, in order, at least once; clients drop duplicates by
// position, as after CatchUp. OnConnected does not run again (it is the same
// logical connection); OnDisconnected runs once, on the instance where the
// connection ends. A client message the old instance handled after its last
// save runs again. An instance applies an Ack to its replay buffer only once
// saved, so a store that is down holds the buffer until it overflows
// (the client then reconnects as a new connection). [Server.Close] leaves
// the sessions for clients to resume on other instances; Shutdown ends
// them. Give every instance the same st, Log and options. Defaults to
// none: such a re-attach gets 404 and the client starts a new connection.
func WithSessionStore(st SessionStore) Option { return func(c *config) { c.sessions = st } }
