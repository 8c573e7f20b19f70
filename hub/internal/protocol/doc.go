// Package protocol is the ASP.NET Core SignalR hub protocol as the hub's
// clients speak it: the handshake, JSON and MessagePack framing with a size
// limit per message, decoding and validating what clients send (no
// MessagePack length may exceed its message) and encoding what they
// receive. It keeps no state; a connection holds the Protocol its handshake
// chose.
package protocol
