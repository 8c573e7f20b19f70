package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/leadupdates/leadupdates/hub"
	"github.com/philippseith/signalr"
	"github.com/prometheus/client_golang/prometheus"
)

// The implementations under test.
const (
	implOurs    = "leadupdates"
	implDefault = "signalr-default"
)

// clientMethod is the client-side method every broadcast invokes.
const clientMethod = "ReceiveLeadUpdate"

// leadUpdate is the broadcast payload, about 308 bytes of JSON as in the
// baseline.
type leadUpdate struct {
	Type           string `json:"type"`
	LeadID         int64  `json:"leadId"`
	PreviousStatus string `json:"previousStatus"`
	NewStatus      string `json:"newStatus"`
	Timestamp      string `json:"timestamp"`
	Seq            int    `json:"seq"`
	SentAt         int64  `json:"sentAt"` // server wall clock, Unix ns, right before Send
	Lead           lead   `json:"lead"`
}

type lead struct {
	ID        int64  `json:"id"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
	Company   string `json:"company"`
	Score     int    `json:"score"`
}

func newUpdate(seq int) *leadUpdate {
	id := int64(100000 + seq)
	return &leadUpdate{
		Type:           "STATUS_UPDATE",
		LeadID:         id,
		PreviousStatus: "NEW",
		NewStatus:      "CONTACTED",
		Timestamp:      time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Seq:            seq,
		Lead: lead{
			ID:        id,
			FirstName: "Alexa",
			LastName:  "Montgomery",
			Email:     "a.montgomery@example-corp.com",
			Company:   "Example Corp",
			Score:     87,
		},
	}
}

// benchServer is one implementation under test, driven by the orchestrator
// over stdin and stdout.
type benchServer struct {
	impl    string
	url     string // negotiate at url+"/negotiate"
	send    func(*leadUpdate)
	conns   func() int
	reg     *prometheus.Registry // ours only
	profDir string
	profTag string

	cpuAtBcast   int64
	syscwAtBcast int64
	sendDone     chan sendResult
	stopSampler  func() sampleResult
	cpuProf      *os.File
}

type sendResult struct {
	Duration time.Duration
}

// defaultConns counts the connections of the signalr-default server; the
// engine makes a new hub value per call, so the count cannot live in it.
var defaultConns atomic.Int64

// benchHub is the hub of the signalr-default server.
type benchHub struct{ signalr.Hub }

func (h *benchHub) OnConnected(string)    { defaultConns.Add(1) }
func (h *benchHub) OnDisconnected(string) { defaultConns.Add(-1) }

// Echo gives the hub a client-callable method, as in the baseline.
func (h *benchHub) Echo(s string) string { return s }

func serverMain(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	impl := fs.String("impl", implOurs, "implementation: leadupdates or signalr-default")
	queue := fs.Int("sendqueue", 0, "leadupdates: per-connection send queue (0: the hub's default)")
	profDir := fs.String("profdir", "", "write CPU (burst), heap (idle, end of send loop) and goroutine (idle) profiles here")
	profTag := fs.String("proftag", "server", "file name prefix of the profiles")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raiseFDLimit()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	s := &benchServer{impl: *impl, profDir: *profDir, profTag: *profTag}
	base := "http://" + ln.Addr().String()
	switch *impl {
	case implOurs:
		s.reg = prometheus.NewRegistry()
		opts := []hub.Option{
			hub.WithTransports(hub.WebSockets),
			hub.WithRegisterer(s.reg),
			hub.WithLogger(level.NewFilter(log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr)), level.AllowWarn())),
		}
		if *queue > 0 {
			opts = append(opts, hub.WithSendQueue(*queue))
		}
		srv, err := hub.New(opts...)
		if err != nil {
			return err
		}
		defer srv.Close()
		srv.Mount(mux)
		s.url = base + srv.Path()
		all := srv.All()
		s.send = func(u *leadUpdate) { all.Send(clientMethod, u) }
		s.conns = srv.ConnectionCount
	case implDefault:
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, err := signalr.NewServer(ctx,
			signalr.SimpleHubFactory(&benchHub{}),
			signalr.HTTPTransports(signalr.TransportWebSockets),
			signalr.MaxNegotiationConnections(0),
			// The library's own default: logfmt to stderr, info level.
			signalr.Logger(log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr)), false),
		)
		if err != nil {
			return err
		}
		srv.MapHTTP(signalr.WithHTTPServeMux(mux), "/hub")
		s.url = base + "/hub"
		all := srv.HubClients().All()
		s.send = func(u *leadUpdate) { all.Send(clientMethod, u) }
		s.conns = func() int { return int(defaultConns.Load()) }
	default:
		return fmt.Errorf("unknown -impl %q", *impl)
	}
	hs := &http.Server{Handler: mux, ErrorLog: nil}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	return serveCommands(stdin, stdout, map[string]string{"url": s.url}, func(cmd string, args []string) (any, error) {
		switch cmd {
		case "MEM":
			return s.mem(len(args) > 0 && args[0] == "idle")
		case "CONNS":
			return map[string]int64{"conns": int64(s.conns()), "cpuNs": cpuNanos()}, nil
		case "BCAST":
			return s.bcast(args)
		case "CPU":
			return s.burstDone()
		}
		return nil, fmt.Errorf("unknown command %q", cmd)
	})
}

type memReport struct {
	HeapInuse  uint64 `json:"heapInuse"`
	StackInuse uint64 `json:"stackInuse"`
	Goroutines int    `json:"goroutines"`
	RSS        int64  `json:"rss"`
	Conns      int    `json:"conns"`
	CPUNs      int64  `json:"cpuNs"` // before the GC this report runs
}

func (s *benchServer) mem(idle bool) (memReport, error) {
	r := memReport{CPUNs: cpuNanos(), Conns: s.conns()}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapInuse, r.StackInuse = ms.HeapInuse, ms.StackInuse
	r.Goroutines = runtime.NumGoroutine()
	r.RSS, _ = procStatus()
	if idle && s.profDir != "" {
		if err := s.writeProfile("heap", "idle-heap.pprof", 0); err != nil {
			return r, err
		}
		if err := s.writeProfile("goroutine", "idle-goroutines.txt", 1); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (s *benchServer) writeProfile(name, file string, debug int) error {
	f, err := os.Create(filepath.Join(s.profDir, s.profTag+"-"+file))
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup(name).WriteTo(f, debug)
}

// bcast starts M broadcasts, back to back or one per interval, and returns
// at once.
func (s *benchServer) bcast(args []string) (any, error) {
	if len(args) != 2 {
		return nil, errors.New("usage: BCAST m interval_ns")
	}
	m, err1 := strconv.Atoi(args[0])
	iv, err2 := strconv.ParseInt(args[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if s.sendDone != nil {
		return nil, errors.New("a broadcast is already running")
	}
	if s.profDir != "" {
		f, err := os.Create(filepath.Join(s.profDir, s.profTag+"-burst-cpu.pprof"))
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		s.cpuProf = f
	}
	s.cpuAtBcast = cpuNanos()
	_, s.syscwAtBcast = syscallCounts()
	s.stopSampler = startSampler(50 * time.Millisecond)
	s.sendDone = make(chan sendResult, 1)
	interval := time.Duration(iv)
	go func() {
		t0 := time.Now()
		for i := range m {
			if interval > 0 {
				time.Sleep(time.Until(t0.Add(time.Duration(i) * interval)))
			}
			u := newUpdate(i)
			u.SentAt = time.Now().UnixNano()
			s.send(u)
		}
		d := time.Since(t0)
		if s.profDir != "" {
			// What is live when the last Send returns; the GC it takes
			// counts in this (profiling) run's CPU.
			runtime.GC()
			_ = s.writeProfile("heap", "burst-end-heap.pprof", 0)
		}
		s.sendDone <- sendResult{Duration: d}
	}()
	return struct{}{}, nil
}

type burstReport struct {
	CPUNs          int64              `json:"cpuNs"`
	Writes         int64              `json:"writes"` // write(2) calls
	SendLoopNs     int64              `json:"sendLoopNs"`
	PeakGoroutines int                `json:"peakGoroutines"`
	PeakHeapStack  uint64             `json:"peakHeapStack"`
	HWM            int64              `json:"hwm"`
	Conns          int                `json:"conns"`
	Counters       map[string]float64 `json:"counters,omitempty"`
}

// burstDone ends the measurement of a broadcast once the clients have
// everything (or gave up waiting).
func (s *benchServer) burstDone() (burstReport, error) {
	if s.sendDone == nil {
		return burstReport{}, errors.New("no broadcast running")
	}
	var sr sendResult
	select {
	case sr = <-s.sendDone:
	case <-time.After(5 * time.Minute):
		return burstReport{}, errors.New("send loop did not finish")
	}
	r := burstReport{CPUNs: cpuNanos() - s.cpuAtBcast, SendLoopNs: int64(sr.Duration)}
	_, w := syscallCounts()
	r.Writes = w - s.syscwAtBcast
	if s.cpuProf != nil {
		pprof.StopCPUProfile()
		s.cpuProf.Close()
		s.cpuProf = nil
	}
	peak := s.stopSampler()
	r.PeakGoroutines, r.PeakHeapStack = peak.goroutines, peak.heapStack
	_, r.HWM = procStatus()
	r.Conns = s.conns()
	r.Counters = s.counters()
	s.sendDone = nil
	return r, nil
}

// counters returns our hub's delivery counters: dropped messages by reason,
// slow-consumer closes and closed connections by reason.
func (s *benchServer) counters() map[string]float64 {
	if s.reg == nil {
		return nil
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		name := strings.TrimPrefix(mf.GetName(), "leadupdates_hub_")
		for _, m := range mf.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			}
		}
	}
	return out
}

type sampleResult struct {
	goroutines int
	heapStack  uint64
}

// startSampler records the peak goroutine count and heap+stack in use until
// the returned function is called.
func startSampler(every time.Duration) func() sampleResult {
	samples := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	var (
		mu   sync.Mutex
		peak sampleResult
	)
	take := func() {
		metrics.Read(samples)
		g := int(samples[0].Value.Uint64())
		hs := samples[1].Value.Uint64() + samples[2].Value.Uint64() + samples[3].Value.Uint64()
		mu.Lock()
		peak.goroutines = max(peak.goroutines, g)
		peak.heapStack = max(peak.heapStack, hs)
		mu.Unlock()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			take()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() sampleResult {
		close(stop)
		<-done
		take()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}
