package signalrtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
)

// A Client connects to one hub. Set its fields before first use and do not
// change them after; it holds no other state.
type Client struct {
	// URL is the hub's URL, such as "http://127.0.0.1:8080/leadupdates":
	// negotiate is at URL/negotiate and the transports at URL.
	URL string
	// HTTPClient makes every request, WebSocket upgrades included. Nil
	// means http.DefaultClient.
	HTTPClient *http.Client
	// AccessToken, if not empty, is sent as a bearer token: in the
	// Authorization header on negotiate and, as browsers must, in the
	// access_token query parameter on WebSocket and event stream requests.
	AccessToken string
	// StatefulReconnect asks negotiate for stateful reconnect
	// (useStatefulReconnect=true), as withStatefulReconnect() does; if the
	// hub offers it, Connect handshakes with version 2 and the Conn
	// numbers messages (see [Conn.Resume]).
	StatefulReconnect bool
}

// Negotiation is the hub's answer to negotiate.
type Negotiation struct {
	ConnectionID        string               `json:"connectionId"`
	ConnectionToken     string               `json:"connectionToken"` // empty with negotiateVersion 0
	NegotiateVersion    int                  `json:"negotiateVersion"`
	AvailableTransports []AvailableTransport `json:"availableTransports"`
	// UseStatefulReconnect: the hub offers stateful reconnect.
	UseStatefulReconnect bool `json:"useStatefulReconnect"`
}

// AvailableTransport is one transport a hub offers in its negotiate answer.
type AvailableTransport struct {
	Transport       string   `json:"transport"`
	TransferFormats []string `json:"transferFormats"`
}

// token returns what the connection's transport requests carry as ?id=:
// the connectionToken, or with negotiateVersion 0 the connectionId.
func (n *Negotiation) token() string {
	if n.ConnectionToken != "" {
		return n.ConnectionToken
	}
	return n.ConnectionID
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// transportURL returns the hub's URL with the query, the access token
// added, and the scheme replaced by scheme ("ws" for WebSockets, "http"
// otherwise; https becomes wss or stays https).
func (c *Client) transportURL(scheme, query string) string {
	u := c.URL
	if scheme == "ws" {
		u = "ws" + strings.TrimPrefix(u, "http")
	}
	if c.AccessToken != "" {
		if query != "" {
			query += "&"
		}
		query += "access_token=" + url.QueryEscape(c.AccessToken)
	}
	if query != "" {
		u += "?" + query
	}
	return u
}

// Negotiate POSTs URL/negotiate?negotiateVersion=1, as @microsoft/signalr
// does, and returns the answer. Any status but 200 is an error.
func (c *Client) Negotiate(ctx context.Context) (*Negotiation, error) {
	u := c.URL + "/negotiate?negotiateVersion=1"
	if c.StatefulReconnect {
		u += "&useStatefulReconnect=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, fmt.Errorf("signalrtest: negotiate: %w", err)
	}
	if c.AccessToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.AccessToken)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("signalrtest: negotiate: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("signalrtest: negotiate: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("signalrtest: negotiate: %s: %q", resp.Status, body)
	}
	var n Negotiation
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("signalrtest: negotiate: %w in %q", err, body)
	}
	return &n, nil
}

// Dial opens a WebSocket to URL?query, for instance "id=" + a connection
// token, or "" to skip negotiation. It sends nothing: the handshake is the
// caller's, with [Conn.Handshake] or by hand. The response is returned
// whenever the server sent one, so that a test can check the status of a
// refused upgrade.
func (c *Client) Dial(ctx context.Context, query string, p Protocol) (*Conn, *http.Response, error) {
	ws, resp, err := websocket.Dial(ctx, c.transportURL("ws", query), &websocket.DialOptions{
		HTTPClient:      c.httpClient(),
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, resp, fmt.Errorf("signalrtest: dial: %w", err)
	}
	ws.SetReadLimit(-1) // the hub's limits are under test, not the client's
	return &Conn{ws: ws, proto: p}, resp, nil
}

// Connect does what a SignalR client does to connect over WebSockets:
// negotiate, open the WebSocket with the connection token, and complete the
// handshake for p.
func (c *Client) Connect(ctx context.Context, p Protocol) (*Conn, error) {
	n, err := c.Negotiate(ctx)
	if err != nil {
		return nil, err
	}
	conn, _, err := c.Dial(ctx, "id="+url.QueryEscape(n.token()), p)
	if err != nil {
		return nil, err
	}
	conn.id = n.ConnectionID
	conn.neg = n
	if n.UseStatefulReconnect {
		conn.version = 2
	}
	if err := conn.Handshake(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Resume opens a new WebSocket for the stateful connection of conn, whose
// WebSocket is lost or not, as @microsoft/signalr does after a drop: same
// connection token, no handshake. The hub answers with a Sequence message
// and resends what conn has not acknowledged; the caller sends its own
// Sequence and resends. The returned Conn reads the connection's protocol
// from its first byte.
func (c *Client) Resume(ctx context.Context, conn *Conn) (*Conn, *http.Response, error) {
	if conn.neg == nil {
		return nil, nil, fmt.Errorf("signalrtest: resume: the connection was not negotiated")
	}
	next, resp, err := c.Dial(ctx, "id="+url.QueryEscape(conn.neg.token()), conn.proto)
	if err != nil {
		return nil, resp, err
	}
	next.id, next.neg, next.version, next.handshook = conn.id, conn.neg, conn.version, true
	return next, resp, nil
}
