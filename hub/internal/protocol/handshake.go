package protocol

import (
	"encoding/json"
	"fmt"
)

// A Handshake is a client's handshake request.
type Handshake struct {
	// Protocol is the protocol the request names, nil if none is
	// supported. It is set even when ParseHandshake fails for another
	// reason, so that a transport knows how to frame what follows.
	Protocol Protocol
	// Version is 1, or 2 for a client that can use stateful reconnect
	// (the server decides whether it does).
	Version int
}

// A HandshakeError is a handshake request the server refuses; its text is
// what the client is told.
type HandshakeError string

func (e HandshakeError) Error() string { return string(e) }

// ParseHandshake parses a handshake request, a record without its
// separator. Its errors are HandshakeErrors.
func ParseHandshake(record []byte) (Handshake, error) {
	var req struct {
		Protocol string `json:"protocol"`
		Version  *int   `json:"version"`
	}
	err := json.Unmarshal(record, &req)
	hs := Handshake{Protocol: ByName(req.Protocol)}
	switch {
	case err != nil:
		return hs, HandshakeError("Handshake request is not valid JSON.")
	case hs.Protocol == nil:
		return hs, HandshakeError(fmt.Sprintf("The protocol '%s' is not supported.", req.Protocol))
	case req.Version == nil:
		return hs, HandshakeError("Handshake request has no protocol version.")
	case *req.Version != 1 && *req.Version != 2:
		return hs, HandshakeError(fmt.Sprintf("The server does not support version %d of the '%s' protocol.", *req.Version, req.Protocol))
	}
	hs.Version = *req.Version
	return hs, nil
}

// HandshakeResponse is the answer to a handshake request: "{}" when
// errText is empty, the error otherwise.
func HandshakeResponse(errText string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error,omitempty"`
	}{errText})
	return append(b, RecordSeparator)
}

// TooLarge is the error text of a message over limit bytes.
func TooLarge(limit int) string {
	return fmt.Sprintf("The maximum message size of %dB was exceeded.", limit)
}
