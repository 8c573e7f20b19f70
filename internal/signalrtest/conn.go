package signalrtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/coder/websocket"
)

// A Conn is one WebSocket connection to a hub. Write, Ping and Close may be
// called from any goroutine, concurrently with the reader; ReadRecord and
// Handshake read, and only one goroutine may read at a time.
type Conn struct {
	ws    *websocket.Conn
	proto Protocol
	id    string // the public connection id, if negotiated
	neg   *Negotiation
	// version is the handshake's protocol version: 2 when the hub offered
	// stateful reconnect.
	version int

	// The reader's state.
	msg       io.Reader             // the WebSocket message being read; nil between messages
	msgType   websocket.MessageType // of the message being read, or the last one
	msgs      int64                 // WebSocket messages begun
	buf       []byte                // buf[off:] is read but not yet returned
	off       int
	handshook bool // the handshake answer is read: MessagePack framing follows
}

// A Record is one hub message as the server sent it, without its framing.
type Record struct {
	// Data is valid until the next call to ReadRecord.
	Data []byte
	// Type is the type of the WebSocket message the record ended in.
	Type websocket.MessageType
	// Msg numbers, from 1, the WebSocket message the record ended in:
	// records with the same Msg arrived together.
	Msg int64
}

// ConnectionID returns the public connection id from negotiate, or "" if
// the connection was dialled without it.
func (c *Conn) ConnectionID() string { return c.id }

// Negotiation returns the hub's answer to negotiate, or nil if the
// connection was dialled without it.
func (c *Conn) Negotiation() *Negotiation { return c.neg }

// Stateful reports whether the connection uses stateful reconnect: the hub
// offered it and the handshake asked for version 2.
func (c *Conn) Stateful() bool { return c.version == 2 }

// Protocol returns the connection's protocol.
func (c *Conn) Protocol() Protocol { return c.proto }

// Write sends b as one WebSocket message of type typ, as it is: framed
// records, several at once, a part of one, or bytes no hub accepts.
func (c *Conn) Write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	if err := c.ws.Write(ctx, typ, b); err != nil {
		return fmt.Errorf("signalrtest: write: %w", err)
	}
	return nil
}

// Ping sends a Ping message in the connection's protocol. A client that
// stays silent for the hub's client timeout is disconnected.
func (c *Conn) Ping(ctx context.Context) error {
	return c.Write(ctx, c.proto.messageType(), c.proto.ping())
}

// Handshake sends the handshake request for the connection's protocol and
// reads the answer, which must be "{}"; any other answer, such as the
// hub's error, is returned as an error. Records that came with the answer
// are kept for ReadRecord.
func (c *Conn) Handshake(ctx context.Context) error {
	hs := c.proto.Handshake()
	if c.version == 2 {
		hs = c.proto.handshake(2)
	}
	if err := c.Write(ctx, c.proto.messageType(), hs); err != nil {
		return err
	}
	rec, err := c.ReadRecord(ctx)
	if err != nil {
		return fmt.Errorf("signalrtest: handshake: %w", err)
	}
	if string(rec.Data) != "{}" {
		return fmt.Errorf("signalrtest: handshake answer %q, want {}", rec.Data)
	}
	return nil
}

// ReadRecord returns the next record the hub sent, whatever the WebSocket
// message boundaries: a record is returned as soon as it is whole, before
// the rest of its message is read. The first record is the handshake
// answer, framed as JSON in either protocol. The error is the WebSocket's
// once the connection has ended (see websocket.CloseStatus), or wraps
// [ErrMalformed] if the stream does not frame as records. Cancelling ctx
// closes the connection, as in coder/websocket.
func (c *Conn) ReadRecord(ctx context.Context) (Record, error) {
	if ctx.Done() != nil {
		// Messages are read on across calls, so the message reader cannot
		// take this call's ctx: the ctx acts on the connection instead.
		stop := context.AfterFunc(ctx, func() { _ = c.ws.CloseNow() })
		defer stop()
	}
	for {
		p := c.proto
		if !c.handshook {
			p = JSON
		}
		rec, n, err := cut(c.buf[c.off:], p)
		if err != nil {
			return Record{}, err
		}
		if n > 0 {
			c.off += n
			c.handshook = true
			return Record{Data: rec, Type: c.msgType, Msg: c.msgs}, nil
		}
		if err := c.fill(); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return Record{}, fmt.Errorf("signalrtest: read: %w", err)
		}
	}
}

// fill reads what comes next, from the message being read or the next one,
// onto the end of buf.
func (c *Conn) fill() error {
	if c.msg == nil {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return err
		}
		c.msg, c.msgType = r, typ
		c.msgs++
	}
	if c.off > 0 {
		c.buf = c.buf[:copy(c.buf, c.buf[c.off:])]
		c.off = 0
	}
	if len(c.buf) == cap(c.buf) {
		c.buf = slices.Grow(c.buf, max(cap(c.buf), 8<<10))
	}
	n, err := c.msg.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	if errors.Is(err, io.EOF) {
		c.msg = nil
		return nil
	}
	return err
}

// Close closes the connection at once, without a close handshake, and
// unblocks a ReadRecord waiting on it. It may be called more than once.
func (c *Conn) Close() error {
	return c.ws.CloseNow()
}

// CloseNormally closes the connection with a close frame (status 1000), as
// a client that ends the connection does, and waits up to 5 s for the
// hub's.
func (c *Conn) CloseNormally() error {
	return c.ws.Close(websocket.StatusNormalClosure, "")
}
