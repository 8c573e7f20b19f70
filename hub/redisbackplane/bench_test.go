package redisbackplane_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/leadupdates/leadupdates/hub/internal/redistest"
	"github.com/leadupdates/leadupdates/hub/redisbackplane"
)

// BenchmarkScaleOut measures end-to-end delivery, from Send to a WebSocket
// client's read, with 5,000 JSON clients: on one instance without a
// backplane, and on two instances of 2,500 joined by Redis with every send
// made on the first (so half of each send crosses Redis). Both setups run in
// the same process and the same run, and it prints both and their ratios:
//
//	go test -run '^$' -bench ScaleOut -benchtime 1x ./hub/redisbackplane/
//
// SCALEOUT_CONNS=200 runs it with 200 clients instead, where the machine is
// far from saturated and latency shows the cost of the Redis hop itself.
//
// After a warm-up round, each setup runs three times, in the order A B B A
// A B, and each figure is the median of its three rounds. The machine is
// usually shared, so besides wall-clock figures it reports this process's
// CPU time per delivery (clients included, the Redis server not), which
// foreign load disturbs much less. Throughput: a burst of 200 sends as fast as Send takes
// them, deliveries per second until the last client has the last one.
// Latency: 40 sends paced at 4 per second (20,000 deliveries per second
// offered), p50 and p99 from Send to the client's read.
func BenchmarkScaleOut(b *testing.B) {
	rdb := redistest.Shared(b)
	conns := 5000
	if n, err := strconv.Atoi(os.Getenv("SCALEOUT_CONNS")); err == nil && n > 1 {
		conns = n - n%2 // a smaller run isolates the cost of the Redis hop
	}
	single := func(int) []hub.Option { return nil }
	ch := redisbackplane.WithChannel(redistest.Channel(b))
	joined := func(int) []hub.Option {
		bp, err := redisbackplane.New(rdb, ch)
		if err != nil {
			b.Fatal(err)
		}
		return []hub.Option{hub.WithBackplane(bp)}
	}
	for range b.N {
		// A warm-up round, not counted: the first 5,000 connections of a
		// process pay for growing its heap and stacks.
		measure(b, "warm-up", conns, single, 1)
		// A, B, B, A, A, B: a machine whose load drifts during the run
		// favours neither.
		var one, two []figures
		for _, second := range []bool{false, true, true, false, false, true} {
			if second {
				two = append(two, measure(b, "round", conns, joined, 2))
			} else {
				one = append(one, measure(b, "round", conns, single, 1))
			}
		}
		o, t := median(one), median(two)
		b.Logf("1 instance  x %d connections: %8.0f deliveries/s, %5.1f µs CPU per delivery, latency p50 %6.1f ms, p99 %6.1f ms", conns, o.rate, o.cpu, ms(o.p50), ms(o.p99))
		b.Logf("2 instances x %d connections: %8.0f deliveries/s, %5.1f µs CPU per delivery, latency p50 %6.1f ms, p99 %6.1f ms", conns/2, t.rate, t.cpu, ms(t.p50), ms(t.p99))
		b.Logf("2 instances / 1 instance: throughput %.2fx, CPU per delivery %.2fx, p50 latency %.2fx, p99 latency %.2fx",
			t.rate/o.rate, t.cpu/o.cpu, float64(t.p50)/float64(o.p50), float64(t.p99)/float64(o.p99))
		b.ReportMetric(o.rate, "deliveries/s-1-instance")
		b.ReportMetric(t.rate, "deliveries/s-2-instances")
		b.ReportMetric(ms(o.p99), "p99-ms-1-instance")
		b.ReportMetric(ms(t.p99), "p99-ms-2-instances")
		b.ReportMetric(o.cpu, "cpu-µs/delivery-1-instance")
		b.ReportMetric(t.cpu, "cpu-µs/delivery-2-instances")
	}
}

// median takes each figure's median over rounds.
func median(fs []figures) figures {
	pick := func(get func(figures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return figures{
		rate: pick(func(f figures) float64 { return f.rate }),
		cpu:  pick(func(f figures) float64 { return f.cpu }),
		p50:  time.Duration(pick(func(f figures) float64 { return float64(f.p50) })),
		p99:  time.Duration(pick(func(f figures) float64 { return float64(f.p99) })),
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type figures struct {
	rate     float64 // deliveries per second
	cpu      float64 // µs of this process's CPU per delivery, in the burst
	p50, p99 time.Duration
}

const (
	burstSends  = 200
	pacedSends  = 40
	pacedPeriod = 250 * time.Millisecond
	// pad makes a message about the size of a LeadUpdateMessage.
	padSize = 300
)

type benchMsg struct {
	T   int64  `json:"t"` // UnixNano at Send
	Pad string `json:"pad"`
}

// measure starts instances Servers with opts(i), spreads conns clients over
// them, and runs the burst and the paced phase, sending on the first.
func measure(b *testing.B, label string, conns int, opts func(i int) []hub.Option, instances int) figures {
	b.Helper()
	var servers []*hub.Server
	var urls []string
	var stops []func()
	defer func() {
		for _, stop := range slices.Backward(stops) {
			stop()
		}
	}()
	for i := range instances {
		// The clients never ping: the client timeout must outlast the run.
		s, err := hub.New(append(opts(i), hub.WithSendQueue(4096), hub.WithClientTimeout(time.Hour))...)
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		s.Mount(mux)
		ts := httptest.NewServer(mux)
		stops = append(stops, func() { _ = s.Close() }, ts.Close)
		servers = append(servers, s)
		urls = append(urls, "ws"+strings.TrimPrefix(ts.URL, "http")+"/leadupdates")
	}
	for i, s := range servers {
		deadline := time.Now().Add(10 * time.Second)
		for s.Ready(context.Background()) != nil {
			if time.Now().After(deadline) {
				b.Fatalf("instance %d never became ready", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var pool clientPool
	ctx, cancel := context.WithCancel(context.Background())
	stops = append(stops, func() { cancel(); pool.wg.Wait() })
	dialStart := time.Now()
	var dial sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range conns {
		sem <- struct{}{}
		dial.Go(func() {
			defer func() { <-sem }()
			if err := pool.dial(ctx, urls[i%len(urls)]); err != nil {
				b.Error(err)
			}
		})
	}
	dial.Wait()
	if b.Failed() {
		b.FailNow()
	}
	for i, s := range servers {
		want := conns / instances
		deadline := time.Now().Add(30 * time.Second)
		for s.ConnectionCount() < want {
			if time.Now().After(deadline) {
				b.Fatalf("instance %d has %d connections, want %d", i, s.ConnectionCount(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	connected := time.Since(dialStart).Round(time.Millisecond)
	send := func() {
		servers[0].All().Send("ReceiveLeadUpdate", benchMsg{T: time.Now().UnixNano(), Pad: strings.Repeat("x", padSize)})
	}

	// Burst.
	pool.expect(conns * burstSends)
	start, cpu0 := time.Now(), cpuTime()
	for range burstSends {
		send()
	}
	pool.await(b)
	rate := float64(conns*burstSends) / time.Since(start).Seconds()
	cpu := float64(cpuTime()-cpu0) / float64(time.Microsecond) / float64(conns*burstSends)

	// Paced.
	pool.expect(conns * pacedSends)
	pool.record.Store(true)
	t := time.NewTicker(pacedPeriod)
	for range pacedSends {
		<-t.C
		send()
	}
	t.Stop()
	pool.await(b)
	lat := pool.latencies()
	slices.Sort(lat)
	f := figures{rate: rate, cpu: cpu, p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
	b.Logf("%s: %d instance(s), %d clients connected in %v: burst %.0f deliveries/s, %.1f µs CPU each; paced p50 %.1f ms, p99 %.1f ms",
		label, instances, conns, connected, f.rate, f.cpu, ms(f.p50), ms(f.p99))
	return f
}

// clientPool is many lean JSON WebSocket clients that count what they
// receive and, when recording, the latency of each message.
type clientPool struct {
	wg      sync.WaitGroup
	got     atomic.Int64
	want    atomic.Int64
	done    chan struct{}
	record  atomic.Bool
	mu      sync.Mutex
	samples []*clientSamples
}

func (p *clientPool) expect(n int) {
	p.done = make(chan struct{}) // before want: readers read done after want
	p.got.Store(0)
	p.want.Store(int64(n))
}

func (p *clientPool) await(b *testing.B) {
	b.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("got %d of %d deliveries", p.got.Load(), p.want.Load())
	}
}

func (p *clientPool) latencies() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var all []time.Duration
	for _, s := range p.samples {
		all = append(all, s.d...)
	}
	return all
}

type clientSamples struct{ d []time.Duration }

func (p *clientPool) dial(ctx context.Context, url string) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	c.SetReadLimit(-1)
	if err := c.Write(dctx, websocket.MessageText, []byte("{\"protocol\":\"json\",\"version\":1}\x1e")); err != nil {
		c.CloseNow()
		return fmt.Errorf("handshake: %w", err)
	}
	samples := &clientSamples{d: make([]time.Duration, 0, pacedSends)}
	p.mu.Lock()
	p.samples = append(p.samples, samples)
	p.mu.Unlock()
	p.wg.Go(func() {
		defer c.CloseNow()
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			for rec := range bytes.SplitSeq(data, []byte{0x1e}) {
				i := bytes.Index(rec, []byte(`"t":`))
				if i < 0 {
					continue // the handshake answer, pings
				}
				rest := rec[i+4:]
				j := bytes.IndexByte(rest, ',')
				sent, err := strconv.ParseInt(string(rest[:j]), 10, 64)
				if err != nil {
					continue
				}
				if p.record.Load() {
					// Before the count: await's return orders it before
					// latencies.
					samples.d = append(samples.d, time.Duration(now-sent))
				}
				if p.got.Add(1) == p.want.Load() {
					close(p.done)
				}
			}
		}
	})
	return nil
}
