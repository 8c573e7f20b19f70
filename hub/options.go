package hub

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Transport is a SignalR transport.
type Transport string

// The transports, in the order negotiate offers them by default; clients try
// them in that order.
const (
	WebSockets       Transport = "WebSockets"
	ServerSentEvents Transport = "ServerSentEvents"
	LongPolling      Transport = "LongPolling"
)

// ConnInfo describes a connection to the hooks.
type ConnInfo struct {
	ConnectionID string
	Transport    Transport
	Protocol     string // "json" or "messagepack"
	Principal    *Principal
}

// An Option configures a Server. A nil hook, logger, registerer or
// backplane means the default; a number or duration out of range makes New
// fail.
type Option func(*config)

type config struct {
	path              string
	auth              Authenticator
	groupAuth         GroupAuthorizer
	logger            log.Logger
	registerer        prometheus.Registerer
	origins           []string
	maxMessageSize    int
	sendQueue         int
	transports        []Transport
	keepAlive         time.Duration
	clientTimeout     time.Duration
	handshakeTimeout  time.Duration
	negotiateTTL      time.Duration
	pollTimeout       time.Duration
	writeTimeout      time.Duration
	maxLeadGroups     int
	maxPending        int
	maxPendingPerUser int
	callRate          float64
	callBurst         int
	refusalTTL        time.Duration
	onConnected       func(context.Context, ConnInfo)
	onDisconnected    func(context.Context, ConnInfo)
	backplane         Backplane
	backplaneQueue    int
	filters           map[string]Filter
	reattachWindow    time.Duration // 0: stateful reconnect off
	closeOnExpiry     bool
	revalidate        time.Duration // 0: never
	replayBuffer      int
	log               Log          // CatchUp's; nil: off
	sessions          SessionStore // hand-off's; nil: off
	logReads          int
}

func defaults() config {
	return config{
		path:              "/leadupdates",
		logger:            log.NewNopLogger(),
		maxMessageSize:    32 << 10,
		sendQueue:         1024,
		transports:        []Transport{WebSockets, ServerSentEvents, LongPolling},
		keepAlive:         15 * time.Second,
		clientTimeout:     30 * time.Second,
		handshakeTimeout:  15 * time.Second,
		negotiateTTL:      15 * time.Second,
		pollTimeout:       90 * time.Second,
		writeTimeout:      10 * time.Second,
		maxLeadGroups:     100,
		maxPending:        10000,
		maxPendingPerUser: 100,
		callRate:          20,
		callBurst:         200,
		refusalTTL:        10 * time.Second,
		backplaneQueue:    8192,
		reattachWindow:    15 * time.Second,
		replayBuffer:      100_000,
		logReads:          4,
		closeOnExpiry:     true,
	}
}

func (c *config) validate() error {
	switch {
	case !strings.HasPrefix(c.path, "/") || strings.HasSuffix(c.path, "/"):
		return fmt.Errorf("hub: path %q must start with / and not end with /", c.path)
	case c.maxMessageSize < 1024:
		return fmt.Errorf("hub: maximum message size %d is below 1024 bytes", c.maxMessageSize)
	case c.sendQueue < 1:
		return fmt.Errorf("hub: send queue %d must be at least 1", c.sendQueue)
	case len(c.transports) == 0:
		return fmt.Errorf("hub: no transport enabled")
	case c.keepAlive <= 0 || c.clientTimeout <= c.keepAlive:
		return fmt.Errorf("hub: client timeout %v must exceed the keep-alive interval %v", c.clientTimeout, c.keepAlive)
	case c.handshakeTimeout <= 0 || c.negotiateTTL <= 0 || c.pollTimeout <= 0 || c.writeTimeout <= 0:
		return fmt.Errorf("hub: timeouts must be positive")
	case c.maxLeadGroups < 0:
		return fmt.Errorf("hub: lead group cap %d is negative", c.maxLeadGroups)
	case c.maxPending < 0 || c.maxPendingPerUser < 0:
		return fmt.Errorf("hub: pending connection caps %d and %d per user must not be negative", c.maxPending, c.maxPendingPerUser)
	case c.callRate < 0 || (c.callRate > 0 && c.callBurst < 1):
		return fmt.Errorf("hub: invocation rate %v/s must not be negative, and its burst %d must be at least 1", c.callRate, c.callBurst)
	case c.refusalTTL < 0:
		return fmt.Errorf("hub: refusal cache time %v is negative", c.refusalTTL)
	case c.revalidate < 0:
		return fmt.Errorf("hub: revalidation interval %v is negative", c.revalidate)
	case c.revalidate > 0 && !isRevalidator(c.auth):
		return fmt.Errorf("hub: WithRevalidation needs an Authenticator that implements hub.Revalidator")
	case c.backplaneQueue < 1:
		return fmt.Errorf("hub: backplane queue %d must be at least 1", c.backplaneQueue)
	case c.logReads < 1:
		return fmt.Errorf("hub: catch-up reads %d must be at least 1", c.logReads)
	case c.reattachWindow < 0 || (c.reattachWindow > 0 && c.replayBuffer < 1):
		return fmt.Errorf("hub: stateful reconnect window %v must not be negative, and its buffer %d must be at least 1 byte", c.reattachWindow, c.replayBuffer)
	}
	for name, f := range c.filters {
		if name == "" || f == nil {
			return fmt.Errorf("hub: filter %q needs a name and a function", name)
		}
	}
	for _, t := range c.transports {
		if t != WebSockets && t != ServerSentEvents && t != LongPolling {
			return fmt.Errorf("hub: unknown transport %q", t)
		}
	}
	return nil
}

// WithPath sets the path the hub answers on; negotiate is path+"/negotiate".
// Defaults to "/leadupdates".
func WithPath(path string) Option { return func(c *config) { c.path = path } }

// WithAuthenticator requires every request to authenticate with a.
// Defaults to none: every connection is anonymous (a Principal with an empty
// ID).
func WithAuthenticator(a Authenticator) Option { return func(c *config) { c.auth = a } }

// WithGroupAuthorizer decides who may join which Lead_{id} group. Defaults to
// allowing every connection.
func WithGroupAuthorizer(a GroupAuthorizer) Option { return func(c *config) { c.groupAuth = a } }

// WithLogger logs connection events and errors with the connection id (never
// the token). Defaults to no logging.
func WithLogger(l log.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = log.NewNopLogger()
		}
		c.logger = l
	}
}

// WithRegisterer registers the hub's Prometheus collectors
// (leadupdates_hub_*) with r; a second Server on the same r makes New fail,
// so give each its own (prometheus.WrapRegistererWith). Defaults to none:
// the collectors count but are not registered.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithAllowedOrigins allows cross-origin browser clients from these origins,
// with credentials, for negotiate, Server-Sent Events, Long Polling and the
// WebSocket origin check alike. An entry is an origin ("https://app.example.com")
// and may hold one "*" wildcard ("https://*.example.com"); "*" alone allows
// every origin, answering each request with its own origin, since browsers
// refuse "*" for the client's credentialed requests: use it only for a hub
// whose clients authenticate with bearer tokens, never cookies. Same-origin
// requests are always allowed. Defaults to none.
func WithAllowedOrigins(origins ...string) Option {
	return func(c *config) { c.origins = append([]string(nil), origins...) }
}

// WithMaxMessageSize sets the largest hub message a client may send, in
// bytes; a larger one closes that connection with an error. It applies per
// hub message, not per transport frame: clients batch several messages into
// one frame. Defaults to 32 KB, as ASP.NET Core.
func WithMaxMessageSize(n int) Option { return func(c *config) { c.maxMessageSize = n } }

// WithSendQueue sets how many messages may wait for one connection. A client
// that falls further behind is closed with allowReconnect, so it never slows
// the sender or other clients. A Long Polling client takes what waits a poll
// at a time, so a burst that the other transports write out as it comes
// piles up between its polls: its bound is n times 4 KB of messages instead
// (4 MB by default), and each poll takes everything waiting. Defaults to
// 1024.
func WithSendQueue(n int) Option { return func(c *config) { c.sendQueue = n } }

// WithTransports sets the transports negotiate offers, in order. Defaults to
// WebSockets, ServerSentEvents, LongPolling.
func WithTransports(t ...Transport) Option {
	return func(c *config) { c.transports = append([]Transport(nil), t...) }
}

// WithKeepAlive sets how long a connection may go without the server writing
// before it sends a ping. Defaults to 15 s, as ASP.NET Core; the client gives
// up after 30 s of silence.
func WithKeepAlive(d time.Duration) Option { return func(c *config) { c.keepAlive = d } }

// WithClientTimeout sets how long a client may stay silent before it is
// considered gone. Defaults to 30 s, as ASP.NET Core (clients ping every 15 s).
func WithClientTimeout(d time.Duration) Option { return func(c *config) { c.clientTimeout = d } }

// WithHandshakeTimeout sets how long a new connection has to complete the
// SignalR handshake. Defaults to 15 s.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) { c.handshakeTimeout = d }
}

// WithLongPollTimeout sets how long a poll waits for data before it returns
// empty. Defaults to 90 s, as ASP.NET Core (the client waits 100 s).
func WithLongPollTimeout(d time.Duration) Option { return func(c *config) { c.pollTimeout = d } }

// WithWriteTimeout bounds one write to a client; a client that cannot take a
// write in time is disconnected. Defaults to 10 s.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithMaxLeadGroups caps how many Lead_{id} groups one connection may be in.
// Defaults to 100; 0 means no cap.
func WithMaxLeadGroups(n int) Option { return func(c *config) { c.maxLeadGroups = n } }

// WithMaxPendingConnections caps the connections negotiated but not yet
// attached to a transport: perUser those of one user (one Principal.ID),
// or of one client address for anonymous connections, total all of them,
// a last resort. Beyond either, negotiate (and a WebSocket connect that
// skips it) answers 429 with Retry-After, which the client's reconnect
// policy retries; a user who floods negotiate without connecting is
// refused alone. Attached connections do not count, so a reconnect storm is
// not throttled by connections that already made it. A pending slot is
// held at most 15 s. Defaults to 100 per user and 10,000 in all; 0 means no
// cap. Behind a proxy, anonymous clients share the proxy's address:
// authenticate them, or raise perUser.
func WithMaxPendingConnections(perUser, total int) Option {
	return func(c *config) { c.maxPendingPerUser, c.maxPending = perUser, total }
}

// WithInvocationRate limits the hub method calls (JoinLeadGroup,
// LeaveLeadGroup, CatchUp) of each connection to perSecond on average, in bursts of
// up to burst. A call over the limit gets an error completion ("Too many
// calls") and the connection stays; a send() over it is dropped; both are
// counted (leadupdates_hub_rate_limited_total{kind="invocation"}).
// Defaults to 20 per second in bursts of 200 (a page leaving and joining
// WithMaxLeadGroups' 100 leads at once); a perSecond of 0 means no limit.
func WithInvocationRate(perSecond float64, burst int) Option {
	return func(c *config) { c.callRate, c.callBurst = perSecond, burst }
}

// WithGroupRefusalCache sets how long a JoinLeadGroup the GroupAuthorizer
// refused is refused again for the same user and lead without asking it,
// so that a client repeating a refused join costs no lookups; a user
// granted access meanwhile waits at most ttl. A grant is never cached, nor
// an error. Defaults to 10 s; 0 turns the cache off.
func WithGroupRefusalCache(ttl time.Duration) Option { return func(c *config) { c.refusalTTL = ttl } }

// WithOnConnected calls f when a connection has completed its handshake and
// joined the LeadUpdates group. A panic in f is logged and ends only that
// connection. Defaults to none.
func WithOnConnected(f func(context.Context, ConnInfo)) Option {
	return func(c *config) { c.onConnected = f }
}

// WithOnDisconnected calls f when a connection has ended. A panic in f is
// logged and harms nothing else. Defaults to none.
func WithOnDisconnected(f func(context.Context, ConnInfo)) Option {
	return func(c *config) { c.onDisconnected = f }
}

// WithBackplane makes the Server one instance of a hub served by several:
// what is sent on any instance reaches the matching connections of every
// instance, through bp (for example a redisbackplane.Backplane). The Server
// delivers to its own connections at once and publishes for the others from
// a bounded queue, so Send still never waits (see [WithBackplaneQueue]);
// group membership stays with the instance that holds the connection.
// [Server.Ready] reports whether bp is connected. Defaults to none: one
// instance.
func WithBackplane(bp Backplane) Option { return func(c *config) { c.backplane = bp } }

// WithBackplaneQueue sets how many sends may wait to be published to the
// backplane. Beyond it a send still reaches this instance's connections but
// not the others', and is counted
// (leadupdates_hub_backplane_dropped_total{reason="overflow"}). Defaults to
// 8192.
func WithBackplaneQueue(n int) Option { return func(c *config) { c.backplaneQueue = n } }

// A Filter decides, for one connection of a [Server.GroupsFiltered]
// audience, whether the principal behind it receives the message, given the
// arg the sender attached. It runs under the Server's read lock, once per
// connection per message, so it must be fast, must not call the Server and
// must not modify p.
type Filter func(arg string, p *Principal) bool

// WithFilter registers keep under a name, for [Server.GroupsFiltered]; an
// empty name or a nil keep makes New fail. With a [Backplane], register the
// same filters on every instance: the sender's instance sends the name and
// arg, and each instance runs its own keep. Defaults to none.
func WithFilter(name string, keep Filter) Option {
	return func(c *config) {
		if c.filters == nil {
			c.filters = map[string]Filter{}
		}
		c.filters[name] = keep
	}
}

// WithStatefulReconnect sets how stateful reconnect, which clients ask for
// with withStatefulReconnect() (WebSockets only), behaves: window is how
// long a connection whose WebSocket dropped waits for its client to
// re-attach, keeping its id, principal and groups and buffering what is
// sent to it; bufferBytes bounds what the client has not acknowledged, in
// bytes of encoded messages, and a connection beyond it is closed with
// allowReconnect (leadupdates_hub_unacked_closes_total). A window of 0
// turns the feature off: negotiate never offers it. Defaults to a window of
// 15 s, ASP.NET Core's DisconnectTimeout (the client re-attaches at once
// and gives up after its 30 s server timeout), and 100,000 bytes, ASP.NET
// Core's StatefulReconnectBufferSize.
func WithStatefulReconnect(window time.Duration, bufferBytes int) Option {
	return func(c *config) { c.reattachWindow, c.replayBuffer = window, bufferBytes }
}

// WithCloseOnExpiry sets whether a connection ends when its credential does:
// at [Principal.Expires] the hub closes it with allowReconnect on every
// transport, the client's accessTokenFactory gives a fresh token and the
// client reconnects (with withAutomaticReconnect), as ASP.NET Core's
// CloseOnAuthenticationExpiration. A stateful-reconnect connection ends
// too: it cannot be re-attached. Defaults to on; principals without an
// expiry are never closed for it.
func WithCloseOnExpiry(on bool) Option { return func(c *config) { c.closeOnExpiry = on } }

// WithRevalidation asks the Authenticator, which must implement
// [Revalidator], every interval whether each open connection's principal
// still holds; one it refuses is closed with allowReconnect, so that a
// revoked user is cut off within the interval. Defaults to 0: never.
func WithRevalidation(interval time.Duration) Option {
	return func(c *config) { c.revalidate = interval }
}

func isRevalidator(a Authenticator) bool {
	_, ok := a.(Revalidator)
	return ok
}
