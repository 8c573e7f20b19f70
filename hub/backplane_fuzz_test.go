package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
)

// tap is a backplane that records what an instance publishes and lets a
// test hand the instance messages directly, as if they came from others.
type tap struct {
	mu        sync.Mutex
	published [][]byte
	deliver   func([]byte)
}

func (p *tap) Publish(_ context.Context, msg []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, msg)
	return nil
}

func (p *tap) Subscribe(ctx context.Context, deliver func([]byte)) error {
	p.mu.Lock()
	p.deliver = deliver
	p.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (p *tap) subscribed() func([]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deliver
}

func (p *tap) messages() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published
}

// FuzzBackplaneReceive hands an instance arbitrary backplane messages: it
// must never panic, whatever another instance (or anything else on the
// channel) publishes. The seeds are real messages.
func FuzzBackplaneReceive(f *testing.F) {
	sender := &tap{}
	s, err := hub.New(hub.WithBackplane(sender))
	if err != nil {
		f.Fatal(err)
	}
	s.All().Send("ReceiveLeadUpdate", map[string]any{"leadId": 1, "type": "NEW_LEAD"})
	s.Groups(hub.DefaultGroup, hub.LeadGroup(7)).Send("ReceiveLeadUpdate", 2)
	s.GroupsFiltered("owner", "alice", hub.DefaultGroup).Send("ReceiveLeadUpdate", 3)
	s.User("bob").Send("ReceiveLeadUpdate", 4)
	s.Client("elsewhere").Send("ReceiveLeadUpdate", 5)
	s.Close() // publishes what is queued
	for _, m := range sender.messages() {
		f.Add(m)
	}

	receiver := &tap{}
	e := hub.WithFilter("owner", func(arg string, p *hub.Principal) bool { return arg == p.ID })
	r, err := hub.New(hub.WithBackplane(receiver), e)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	for receiver.subscribed() == nil { // Subscribe starts at once, in the receiver's goroutine
		time.Sleep(time.Millisecond)
	}
	deliver := receiver.subscribed()
	f.Fuzz(func(t *testing.T, msg []byte) {
		deliver(msg)
	})
}
