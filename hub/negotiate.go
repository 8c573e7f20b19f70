package hub

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
)

type negotiateTransport struct {
	Transport       Transport `json:"transport"`
	TransferFormats []string  `json:"transferFormats"`
}

type negotiateResponse struct {
	ConnectionToken      string               `json:"connectionToken,omitempty"`
	ConnectionID         string               `json:"connectionId"`
	NegotiateVersion     int                  `json:"negotiateVersion,omitempty"`
	UseStatefulReconnect bool                 `json:"useStatefulReconnect,omitempty"`
	AvailableTransports  []negotiateTransport `json:"availableTransports"`
}

// register creates a connection that a transport request can attach to by
// its token. During shutdown it answers 503, and with too many connections
// negotiated but not yet attached, 429; then it returns nil.
func (s *Server) register(w http.ResponseWriter, r *http.Request, id, token string, p *Principal, stateful bool) *conn {
	c := newConn(s, id, token, p)
	c.stateful = stateful
	c.pendingKey = pendingKey(r, p)
	switch s.reg.add(c, s.cfg.maxPending, s.cfg.maxPendingPerUser) {
	case errShuttingDown:
		http.Error(w, "Server is shutting down.", http.StatusServiceUnavailable)
		return nil
	case errTooManyPendingKey:
		s.tel.limited.WithLabelValues("negotiate").Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Too many connections negotiated by this user and not yet connected; try again.", http.StatusTooManyRequests)
		return nil
	case errTooManyPending:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Too many connections are being negotiated; try again.", http.StatusTooManyRequests)
		return nil
	}
	return c
}

// negotiate answers POST {path}/negotiate: it authenticates the caller and
// creates a connection with a public connectionId and, from version 1 on, a
// separate secret connectionToken that only transport requests carry.
func (s *Server) negotiate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Method not allowed; negotiate is a POST.", http.StatusMethodNotAllowed)
		return
	}
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	version := 0
	if v := r.URL.Query().Get("negotiateVersion"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "Invalid negotiateVersion.", http.StatusBadRequest)
			return
		}
		version = min(n, 1)
	}
	id := newID()
	token := id // version 0 clients send the connectionId as ?id=
	if version > 0 {
		token = newID()
	}
	// As ASP.NET Core: offered when the client asks (bool.TryParse) and the
	// server allows it.
	stateful := s.cfg.reattachWindow > 0 &&
		strings.EqualFold(strings.TrimSpace(r.URL.Query().Get("useStatefulReconnect")), "true")
	if s.register(w, r, id, token, p, stateful) == nil {
		return
	}

	resp := negotiateResponse{ConnectionID: id, NegotiateVersion: version, UseStatefulReconnect: stateful}
	if version > 0 {
		resp.ConnectionToken = token
	}
	for _, t := range s.cfg.transports {
		formats := []string{"Text", "Binary"}
		if t == ServerSentEvents {
			formats = []string{"Text"}
		}
		resp.AvailableTransports = append(resp.AvailableTransports, negotiateTransport{t, formats})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// pendingKey is what the per-user cap on pending connections counts by:
// the user, or for anonymous connections the client's address (the
// proxy's, behind one).
func pendingKey(r *http.Request, p *Principal) string {
	if p.ID != "" {
		return "user:" + p.ID
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}
