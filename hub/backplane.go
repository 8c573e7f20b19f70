package hub

import (
	"context"
	"errors"
	"fmt"
)

// A Backplane carries sends between the instances of one hub, so that a
// client connected to any instance receives what is sent on any instance.
// github.com/leadupdates/leadupdates/hub/redisbackplane implements it with
// Redis pub/sub.
//
// The Server delivers to its own connections at once and publishes, for
// the others, every send that may concern them: All, Group, Groups,
// GroupsFiltered, User, and Client when the connection is not its own. Each
// instance ignores its own messages when they come back, so a client gets a
// message once, and per sender, order holds across instances. Group
// membership stays with the instance that holds the connection.
type Backplane interface {
	// Publish sends msg to every subscribed instance, this one included.
	// The Server calls it from one goroutine; messages must reach each
	// subscriber in the order they were published. An error loses msg
	// (the Server counts it); Publish need not retry.
	Publish(ctx context.Context, msg []byte) error
	// Subscribe calls deliver with every message published by any instance,
	// one at a time, until ctx is done, and then returns ctx.Err(). It
	// reconnects by itself after a failure; messages published meanwhile are
	// lost, and the Server counts them from the gap in each instance's
	// sequence numbers. deliver owns msg.
	Subscribe(ctx context.Context, deliver func(msg []byte)) error
}

// A Readier is a [Backplane] that can tell whether it is connected; if the
// Backplane given to [WithBackplane] is one, [Server.Ready] asks it.
// redisbackplane.Backplane is one.
type Readier interface {
	// Ready returns nil while the Backplane hears the other instances, an
	// error saying why not otherwise.
	Ready(ctx context.Context) error
}

// ErrShuttingDown is what Ready returns once Shutdown or Close has started.
var ErrShuttingDown = errors.New("hub: shutting down")

// Ready reports whether the Server can take new clients as one instance of
// the hub: nil, unless it is shutting down or its backplane reports that it
// is not connected (an instance that cannot hear the others would serve
// partial updates). It suits a readiness probe such as /readyz.
func (s *Server) Ready(ctx context.Context) error {
	if s.reg.shuttingDown() {
		return ErrShuttingDown
	}
	if s.relay != nil {
		if r, ok := s.relay.bp.(Readier); ok {
			if err := r.Ready(ctx); err != nil {
				return fmt.Errorf("hub: backplane: %w", err)
			}
		}
	}
	return nil
}
