package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leadupdates/leadupdates/internal/signalrtest"
)

const (
	pingInterval = 10 * time.Second // what the client sends; the hub times out after 30 s of silence
	dialParallel = 32
)

// benchClient holds N SignalR connections in one process.
type benchClient struct {
	hub   *signalrtest.Client
	conns []*clientConn
	total atomic.Int64 // unique deliveries of the current burst
	msgs  atomic.Int64 // WebSocket messages received since the burst began
	cpu0  int64
	syscr int64
	m     int
}

// clientConn is one connection; its reader goroutine reads the records, and
// the burst counters are shared with the reporting code under mu.
type clientConn struct {
	conn *signalrtest.Conn
	done chan struct{} // closed when the reader stops

	mu       sync.Mutex
	m        int      // messages expected in the burst
	seen     []uint64 // bitmap of the burst's seqs received
	maxSeq   int
	got      int
	ooo      int
	dup      int
	bad      int // invocations without a readable seq or sentAt
	lat      []int32
	sentAt0  int64 // sentAt of seq 0
	lastRecv int64
	closes   int   // Close messages received
	err      error // why the reader stopped
}

func clientMain(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	u := fs.String("url", "", "hub URL; negotiate is at URL/negotiate")
	n := fs.Int("n", 5000, "connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFDLimit()
	hc := &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: dialParallel,
		},
		Timeout: 20 * time.Second,
	}
	c := &benchClient{hub: &signalrtest.Client{URL: *u, HTTPClient: hc}}
	return serveCommands(stdin, stdout, nil, func(cmd string, args []string) (any, error) {
		switch cmd {
		case "CONNECT":
			return c.connect(*n), nil
		case "EXPECT":
			m, err := strconv.Atoi(args[0])
			if err != nil {
				return nil, err
			}
			c.expect(m)
			return struct{}{}, nil
		case "WAIT":
			ms, err := strconv.Atoi(args[0])
			if err != nil {
				return nil, err
			}
			return c.wait(time.Duration(ms) * time.Millisecond), nil
		}
		return nil, fmt.Errorf("unknown command %q", cmd)
	})
}

type connectReport struct {
	Connected int     `json:"connected"`
	Failed    int     `json:"failed"`
	FirstErr  string  `json:"firstErr,omitempty"`
	Seconds   float64 `json:"seconds"`
}

func (c *benchClient) connect(n int) connectReport {
	t0 := time.Now()
	var (
		mu  sync.Mutex
		rep connectReport
		wg  sync.WaitGroup
	)
	next := atomic.Int64{}
	for range dialParallel {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				cc, err := c.dial()
				mu.Lock()
				if err != nil {
					rep.Failed++
					if rep.FirstErr == "" {
						rep.FirstErr = err.Error()
					}
				} else {
					c.conns = append(c.conns, cc)
					rep.Connected++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(t0).Seconds()
	for _, cc := range c.conns {
		go cc.read(c)
	}
	return rep
}

// dial negotiates, connects and completes the JSON handshake, retrying a
// few times.
func (c *benchClient) dial() (*clientConn, error) {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		var conn *signalrtest.Conn
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		conn, err = c.hub.Connect(ctx, signalrtest.JSON)
		cancel()
		if err == nil {
			cc := &clientConn{conn: conn, done: make(chan struct{})}
			go cc.pinger()
			return cc, nil
		}
	}
	return nil, err
}

// pinger sends a ping every pingInterval from the moment the connection is
// up, as a real client does.
func (cc *clientConn) pinger() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-cc.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := cc.conn.Ping(ctx)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// read consumes the connection and counts invocations. The receipt time is
// taken once per WebSocket message.
func (cc *clientConn) read(c *benchClient) {
	var (
		err error
		rec signalrtest.Record
		msg int64
		now int64
		ctx = context.Background()
	)
	for {
		if rec, err = cc.conn.ReadRecord(ctx); err != nil {
			break
		}
		if rec.Msg != msg {
			msg, now = rec.Msg, time.Now().UnixNano()
			c.msgs.Add(1)
		}
		cc.mu.Lock()
		cc.record(c, rec.Data, now)
		cc.mu.Unlock()
	}
	cc.mu.Lock()
	cc.err = err
	cc.mu.Unlock()
	close(cc.done)
}

var (
	keyType   = []byte(`"type":`)
	keySeq    = []byte(`"seq":`)
	keySentAt = []byte(`"sentAt":`)
)

// record handles one hub message by byte search: the envelope's "type" comes
// first in both servers' encodings; "seq" and "sentAt" occur only in the
// payload. cc.mu is held.
func (cc *clientConn) record(c *benchClient, rec []byte, now int64) {
	i := bytes.Index(rec, keyType)
	if i < 0 {
		return
	}
	typ, _ := number(rec[i+len(keyType):])
	switch typ {
	case 1:
	case 7:
		cc.closes++
		return
	default:
		return
	}
	seq, ok1 := field(rec, keySeq)
	sentAt, ok2 := field(rec, keySentAt)
	if !ok1 || !ok2 || seq < 0 || int(seq) >= cc.m || cc.seen == nil {
		cc.bad++
		return
	}
	s := int(seq)
	if cc.seen[s/64]&(1<<(s%64)) != 0 {
		cc.dup++
		return
	}
	cc.seen[s/64] |= 1 << (s % 64)
	if s < cc.maxSeq {
		cc.ooo++
	}
	cc.maxSeq = max(cc.maxSeq, s)
	cc.got++
	cc.lat = append(cc.lat, int32((now-sentAt)/1000))
	if s == 0 {
		cc.sentAt0 = sentAt
	}
	cc.lastRecv = now
	c.total.Add(1)
}

func field(rec, key []byte) (int64, bool) {
	i := bytes.Index(rec, key)
	if i < 0 {
		return 0, false
	}
	return number(rec[i+len(key):])
}

// number parses the non-negative integer b starts with.
func number(b []byte) (int64, bool) {
	var v int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n > 0
}

// expect starts a burst of m messages per connection.
func (c *benchClient) expect(m int) {
	c.m = m
	c.total.Store(0)
	c.msgs.Store(0)
	for _, cc := range c.conns {
		cc.mu.Lock()
		cc.m = m
		cc.seen = make([]uint64, (m+63)/64)
		cc.maxSeq, cc.got, cc.ooo, cc.dup, cc.bad = -1, 0, 0, 0, 0
		cc.lat = make([]int32, 0, m)
		cc.sentAt0, cc.lastRecv, cc.closes = 0, 0, 0
		cc.mu.Unlock()
	}
	c.cpu0 = cpuNanos()
	c.syscr, _ = syscallCounts()
}

type burstClientReport struct {
	Expected   int64   `json:"expected"`
	Unique     int64   `json:"unique"`
	Dup        int64   `json:"dup"`
	OOO        int64   `json:"ooo"`
	OOOConns   int     `json:"oooConns"`
	Bad        int64   `json:"bad"`
	Messages   int64   `json:"messages"`   // WebSocket messages, pings included
	Reads      int64   `json:"reads"`      // read(2) calls
	ShortConns int     `json:"shortConns"` // connections missing messages
	Closes     int     `json:"closes"`     // Close messages received
	Ended      int     `json:"ended"`      // connections whose reader stopped
	FirstErr   string  `json:"firstErr,omitempty"`
	SentAt0    int64   `json:"sentAt0"`
	LastRecv   int64   `json:"lastRecv"`
	P50Ms      float64 `json:"p50ms"`
	P99Ms      float64 `json:"p99ms"`
	MaxMs      float64 `json:"maxms"`
	CPUNs      int64   `json:"cpuNs"`
	WaitSec    float64 `json:"waitSec"`
	TimedOut   bool    `json:"timedOut"`
}

// wait returns once every connection has all m messages, or once nothing
// has arrived for drain.
func (c *benchClient) wait(drain time.Duration) burstClientReport {
	expected := int64(len(c.conns)) * int64(c.m)
	t0 := time.Now()
	last, lastChange := int64(-1), time.Now()
	timedOut := false
	for {
		got := c.total.Load()
		if got >= expected {
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > drain {
			timedOut = true
			break
		}
		if time.Since(t0) > 10*time.Minute {
			timedOut = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := burstClientReport{Expected: expected, CPUNs: cpuNanos() - c.cpu0, WaitSec: time.Since(t0).Seconds(), TimedOut: timedOut}
	r.Messages = c.msgs.Load()
	rd, _ := syscallCounts()
	r.Reads = rd - c.syscr
	lat := make([]int32, 0, expected)
	for _, cc := range c.conns {
		cc.mu.Lock()
		r.Unique += int64(cc.got)
		r.Dup += int64(cc.dup)
		r.OOO += int64(cc.ooo)
		r.Bad += int64(cc.bad)
		r.Closes += cc.closes
		if cc.ooo > 0 {
			r.OOOConns++
		}
		if cc.got < cc.m {
			r.ShortConns++
		}
		if cc.err != nil {
			r.Ended++
			if r.FirstErr == "" {
				r.FirstErr = cc.err.Error()
			}
		}
		if cc.sentAt0 != 0 && (r.SentAt0 == 0 || cc.sentAt0 < r.SentAt0) {
			r.SentAt0 = cc.sentAt0
		}
		r.LastRecv = max(r.LastRecv, cc.lastRecv)
		lat = append(lat, cc.lat...)
		cc.mu.Unlock()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1000 }
		r.P50Ms, r.P99Ms, r.MaxMs = pct(0.50), pct(0.99), pct(1)
	}
	return r
}
