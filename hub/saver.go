package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub/internal/protocol"
	"github.com/leadupdates/leadupdates/internal/ratelog"
)

// saver writes this instance's sessions to the SessionStore, off every
// send path: connections are marked dirty (on connect, a group change, an
// Ack, a refresh), and one goroutine saves what is dirty at most every
// saveEvery, in one Save, then applies the Acks it saved; it also deletes
// the sessions of connections that ended here, then runs their
// OnDisconnected.
type saver struct {
	s    *Server
	warn *ratelog.Logger
	// minJSON and minMsgpack are minFrame of each protocol.
	minJSON, minMsgpack int

	mu    sync.Mutex
	dirty map[*conn]struct{}
	gone  []*conn
	wake  chan struct{}

	stop chan struct{}
	done sync.WaitGroup
}

// saveEvery is how long the saver collects changes before one Save.
const saveEvery = 100 * time.Millisecond

// storeTimeout bounds one Save or Delete.
const storeTimeout = 5 * time.Second

func newInstanceID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newSaver(s *Server) *saver {
	sv := &saver{
		s:          s,
		warn:       ratelog.New(level.Warn(s.cfg.logger), time.Second),
		minJSON:    minFrame(protocol.JSON),
		minMsgpack: minFrame(protocol.MessagePack),
		dirty:      map[*conn]struct{}{},
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
	}
	sv.done.Add(1)
	go sv.loop()
	return sv
}

// mark has c's session saved soon.
func (sv *saver) mark(c *conn) {
	sv.mu.Lock()
	sv.dirty[c] = struct{}{}
	sv.mu.Unlock()
	sv.kick()
}

// remove deletes c's session soon, c having ended here.
func (sv *saver) remove(c *conn) {
	sv.mu.Lock()
	delete(sv.dirty, c)
	sv.gone = append(sv.gone, c)
	sv.mu.Unlock()
	sv.kick()
}

func (sv *saver) kick() {
	select {
	case sv.wake <- struct{}{}:
	default:
	}
}

// close saves and deletes what is pending, then stops.
func (sv *saver) close() {
	close(sv.stop)
	sv.done.Wait()
}

func (sv *saver) loop() {
	defer sv.done.Done()
	t := time.NewTimer(saveEvery)
	t.Stop()
	for {
		select {
		case <-sv.wake:
		case <-sv.stop:
			sv.flush()
			return
		}
		t.Reset(saveEvery)
		select {
		case <-t.C:
		case <-sv.stop:
			t.Stop()
			sv.flush()
			return
		}
		sv.flush()
	}
}

// flush saves every dirty session in one Save, applies the Acks saved,
// then deletes the sessions of connections that ended.
func (sv *saver) flush() {
	s := sv.s
	sv.mu.Lock()
	dirty := make([]*conn, 0, len(sv.dirty))
	for c := range sv.dirty {
		dirty = append(dirty, c)
	}
	clear(sv.dirty)
	gone := sv.gone
	sv.gone = nil
	sv.mu.Unlock()

	if len(dirty) > 0 {
		now := time.Now()
		ss := make([]Session, 0, len(dirty))
		cs := make([]*conn, 0, len(dirty))
		s.reg.mu.RLock()
		for _, c := range dirty {
			if x, ok := c.session(now); ok {
				ss = append(ss, x)
				cs = append(cs, c)
			}
		}
		s.reg.mu.RUnlock()
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := s.cfg.sessions.Save(ctx, ss)
		cancel()
		if err != nil {
			// Retried with the next change or refresh; meanwhile Acks wait,
			// and a connection whose client acknowledges nothing more
			// eventually overflows its replay buffer.
			s.tel.sessionSaves.WithLabelValues("error").Inc()
			sv.warn.Log("msg", "cannot save sessions", "sessions", len(ss), "err", err)
			sv.mu.Lock()
			for _, c := range cs {
				sv.dirty[c] = struct{}{}
			}
			sv.mu.Unlock()
		} else {
			s.tel.sessionSaves.WithLabelValues("ok").Inc()
			for i, c := range cs {
				c.mu.Lock()
				c.applyAck(&ss[i])
				c.mu.Unlock()
			}
		}
	}

	for _, c := range gone {
		c.mu.Lock()
		epoch, away := c.ho.epoch, c.ho.away
		c.mu.Unlock()
		mine := !away
		if !away {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			deleted, err := s.cfg.sessions.Delete(ctx, HashToken(c.token), s.instance, epoch)
			cancel()
			// A session this instance never saved, or that it cannot tell,
			// is still its own; one another instance claimed is not.
			c.mu.Lock()
			saved := c.ho.saved
			c.mu.Unlock()
			mine = deleted || err != nil || !saved
			if err != nil {
				sv.warn.Log("msg", "cannot delete a session; it expires", "connection_id", c.id, "err", err)
			}
		}
		if mine {
			s.disconnected(c)
		} else {
			s.tel.handoffs.WithLabelValues("taken").Inc()
		}
	}
}
