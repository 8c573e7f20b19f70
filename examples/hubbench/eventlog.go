package main

// "hubbench eventlog" measures the example server (examples/server) with its
// durable event log on PostgreSQL: commit → client latency at a given event
// rate to many connections, and catch-up throughput to one resuming client
// and to many resuming at once. See README.md.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for CREATE DATABASE
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/leadupdates/leadupdates/hub/jwtauth"
	"github.com/leadupdates/leadupdates/internal/signalrtest"
	"github.com/leadupdates/leadupdates/notify"
	"github.com/leadupdates/leadupdates/notify/eventlog"
)

type elConfig struct {
	db           string // PostgreSQL URL; a fresh database is created on that server and dropped after
	server       string // the example server's binary; empty: built from the module
	conns        int
	rate         float64 // events per second in the latency phase
	duration     time.Duration
	catchup      int // events one resuming client catches up on
	resumers     int // clients resuming at once
	resumeEvents int // events each of them catches up on
	drain        time.Duration
}

func parseEventLog(args []string) (elConfig, error) {
	fs := flag.NewFlagSet("eventlog", flag.ContinueOnError)
	var c elConfig
	fs.StringVar(&c.db, "db", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL; the run creates a database of its own on that server and drops it afterwards")
	fs.StringVar(&c.server, "server", "", "the example server's binary (empty: go build ./examples/server)")
	fs.IntVar(&c.conns, "conns", 500, "connections in the latency phase")
	fs.Float64Var(&c.rate, "rate", 200, "events per second in the latency phase, each committed in its own transaction")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "length of the latency phase")
	fs.IntVar(&c.catchup, "catchup", 50000, "events one resuming client catches up on")
	fs.IntVar(&c.resumers, "resumers", 1000, "clients resuming at once")
	fs.IntVar(&c.resumeEvents, "resume-events", 1000, "events each of the clients resuming at once catches up on")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "stop waiting for deliveries after this long without progress; what is missing then is lost")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.conns < 1 || c.rate <= 0 || c.duration <= 0 || c.catchup < 1 || c.resumers < 1 || c.resumeEvents < 1 {
		return c, errors.New("eventlog: -conns, -rate, -duration, -catchup, -resumers and -resume-events must be positive")
	}
	return c, nil
}

// elResult is what a run measured.
type elResult struct {
	Conns         int
	Rate          float64 // achieved, events/s
	Events        int
	Deliveries    int
	Lost          int
	P50, P99, Max time.Duration
	CatchUp       int
	CatchUpTime   time.Duration
	Resumers      int
	ResumeEach    int
	ResumeWall    time.Duration
	ResumeP50     time.Duration
	ResumeP99     time.Duration
	ResumeMissing int
}

func runEventLog(c elConfig, out, logs io.Writer) (elResult, error) {
	var res elResult
	raiseFDLimit() // the server child inherits it
	ctx := context.Background()
	dbURL, drop, err := freshDatabase(ctx, c.db)
	if err != nil {
		return res, err
	}
	defer drop()
	bin := c.server
	if bin == "" {
		dir, err := os.MkdirTemp("", "hubbench-eventlog")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "server")
		build := exec.Command("go", "build", "-o", bin, "github.com/leadupdates/leadupdates/examples/server")
		build.Stdout, build.Stderr = logs, logs
		if err := build.Run(); err != nil {
			return res, fmt.Errorf("build the example server: %w", err)
		}
	}
	b := make([]byte, 24)
	rand.Read(b)
	secret := hex.EncodeToString(b)
	srv, hubURL, err := startExample(bin, dbURL, secret, logs)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	signer, err := jwtauth.NewSigner([]byte(secret))
	if err != nil {
		return res, err
	}
	tok, err := signer.Issue("hubbench", []string{"admin"}, 2*time.Hour)
	if err != nil {
		return res, err
	}
	db, err := gorm.Open(postgres.Open(dbURL), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return res, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return res, err
	}
	defer sqlDB.Close()
	// Keep the writers' connections: database/sql keeps 2 idle by default,
	// and a new PostgreSQL connection per transaction would cost the
	// machine more than the transaction.
	sqlDB.SetMaxIdleConns(elWriters + 4)
	l, err := eventlog.Open(ctx, db)
	if err != nil {
		return res, err
	}
	defer l.Close()
	hc := &signalrtest.Client{URL: hubURL, AccessToken: tok}

	// Phase 1: commit → client latency.
	fmt.Fprintf(out, "latency: %d connections, %.0f events/s for %v\n", c.conns, c.rate, c.duration)
	conns, err := dialAll(hc, c.conns)
	if err != nil {
		return res, err
	}
	var nextLead atomic.Int64
	base := int64(1_000_000)
	want := int(c.rate*c.duration.Seconds()) + 1
	nextLead.Store(base + int64(want))
	committed := make([]atomic.Int64, want)
	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Go(func() { cn.read(nil) })
	}
	// Each event is due at start + i/rate; writers take them as they fall
	// due, so that a slow commit delays no other one.
	slots := make(chan int)
	var werr atomic.Pointer[error]
	var writers sync.WaitGroup
	for range elWriters {
		writers.Go(func() {
			for i := range slots {
				id := base + int64(i)
				if err := l.Append(ctx, nil, event(id)); err != nil {
					werr.CompareAndSwap(nil, &err)
					continue
				}
				committed[i].Store(time.Now().UnixNano())
			}
		})
	}
	pid := srv.cmd.Process.Pid
	u0 := sample(pid)
	start := time.Now()
	for i := range want {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / c.rate * float64(time.Second)))))
		slots <- i
	}
	close(slots)
	writers.Wait()
	n := want
	if e := werr.Load(); e != nil {
		return res, *e
	}
	res.Conns, res.Events = c.conns, n
	res.Rate = float64(n) / time.Since(start).Seconds()
	waitDeliveries(conns, n, c.drain)
	var lat []time.Duration
	for _, cn := range conns {
		cn.Close()
	}
	wg.Wait()
	for _, cn := range conns {
		seen := map[int64]bool{}
		for _, r := range cn.recv {
			if i := r.lead - base; i >= 0 && i < int64(n) && !seen[r.lead] {
				seen[r.lead] = true
				lat = append(lat, time.Duration(r.at-committed[i].Load()))
			}
		}
		res.Lost += n - len(seen)
	}
	res.Deliveries = len(lat)
	slices.Sort(lat)
	res.P50, res.P99, res.Max = pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1)
	fmt.Fprintf(out, "  %d events at %.1f/s, %d deliveries, %d lost; commit → client p50 %v, p99 %v, max %v\n  %s\n",
		res.Events, res.Rate, res.Deliveries, res.Lost, res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond), res.Max.Round(time.Microsecond),
		u0.since(pid))

	// Phase 2: one client catches up on c.catchup events.
	head, err := fill(ctx, l, &nextLead, c.catchup)
	if err != nil {
		return res, err
	}
	one, err := dialAll(hc, 1)
	if err != nil {
		return res, err
	}
	u0 = sample(pid)
	t, got, err := one[0].catchUp(head-uint64(c.catchup), catchUpLimit)
	cpu := u0.since(pid)
	one[0].Close()
	if err != nil {
		return res, err
	}
	if got != c.catchup {
		return res, fmt.Errorf("one client caught up on %d events, want %d", got, c.catchup)
	}
	res.CatchUp, res.CatchUpTime = got, t
	fmt.Fprintf(out, "catch-up, one client: %d events in %v = %.0f events/s\n  %s\n", got, t.Round(time.Millisecond), float64(got)/t.Seconds(), cpu)

	// Phase 3: c.resumers clients catch up on c.resumeEvents each, at once.
	rs, err := dialAll(hc, c.resumers)
	if err != nil {
		return res, err
	}
	after := head - uint64(c.resumeEvents)
	times := make([]time.Duration, len(rs))
	missing := make([]int, len(rs))
	errs := make([]error, len(rs))
	gate := make(chan struct{})
	var rwg sync.WaitGroup
	for i, r := range rs {
		rwg.Go(func() {
			<-gate
			var got int
			times[i], got, errs[i] = r.catchUp(after, catchUpLimit)
			missing[i] = c.resumeEvents - got
		})
	}
	u0 = sample(pid)
	wall := time.Now()
	close(gate)
	rwg.Wait()
	res.ResumeWall = time.Since(wall)
	cpu = u0.since(pid)
	for _, r := range rs {
		r.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	for _, m := range missing {
		res.ResumeMissing += m
	}
	slices.Sort(times)
	res.Resumers, res.ResumeEach = c.resumers, c.resumeEvents
	res.ResumeP50, res.ResumeP99 = pct(times, 0.5), pct(times, 0.99)
	total := c.resumers * c.resumeEvents
	fmt.Fprintf(out, "catch-up, %d clients at once: %d events each, %d in all in %v = %.0f events/s; per client p50 %v, p99 %v; missing %d\n  %s\n",
		c.resumers, c.resumeEvents, total, res.ResumeWall.Round(time.Millisecond), float64(total)/res.ResumeWall.Seconds(),
		res.ResumeP50.Round(time.Millisecond), res.ResumeP99.Round(time.Millisecond), res.ResumeMissing, cpu)
	return res, nil
}

// elWriters is how many transactions the latency phase may commit at once.
const elWriters = 8

// catchUpLimit bounds one CatchUp call of the run.
const catchUpLimit = 5 * time.Minute

// event is a STATUS_UPDATE of lead id as the server's notifier logs it.
func event(id int64) eventlog.Event {
	m := notify.LeadUpdateMessage{Type: notify.TypeStatusUpdate, LeadID: id, PreviousStatus: "New", NewStatus: "Enriching",
		Timestamp: notify.Timestamp{Time: time.Now().UTC()}}
	p, _ := json.Marshal(m)
	return eventlog.Event{LeadID: id, Type: m.Type, Payload: p}
}

// fill appends n events in transactions of 1000 and waits until they are
// positioned; it returns the head.
func fill(ctx context.Context, l *eventlog.Log, next *atomic.Int64, n int) (uint64, error) {
	h0, err := l.Head(ctx)
	if err != nil {
		return 0, err
	}
	for done := 0; done < n; {
		k := min(1000, n-done)
		evs := make([]eventlog.Event, k)
		for i := range evs {
			evs[i] = event(next.Add(1))
		}
		if err := l.Append(ctx, nil, evs...); err != nil {
			return 0, err
		}
		done += k
	}
	for {
		h, err := l.Head(ctx)
		if err != nil {
			return 0, err
		}
		if h >= h0+uint64(n) {
			return h, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pct(v []time.Duration, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(p*float64(len(v))))]
}

// elConn is one client connection of the run.
type elConn struct {
	*signalrtest.Conn
	recv []delivery // lead updates, as read
	// catch-up state: the reader counts updates and signals the completion.
	updates atomic.Int64
}

type delivery struct {
	lead int64
	at   int64 // Unix ns when the read returned
}

var leadIDKey = []byte(`"leadId":`)

// read reads records until the connection ends. Lead updates are kept
// with their receipt time; a completion closes completed once.
func (c *elConn) read(completed chan struct{}) {
	ctx := context.Background()
	for {
		rec, err := c.ReadRecord(ctx)
		if err != nil {
			return
		}
		at := time.Now().UnixNano()
		d := rec.Data
		switch {
		case bytes.Contains(d, []byte(`"target":"ReceiveLeadUpdate"`)):
			c.updates.Add(1)
			if completed != nil {
				continue // catch-up: counted only
			}
			if i := bytes.Index(d, leadIDKey); i >= 0 {
				j := i + len(leadIDKey)
				k := j
				for k < len(d) && d[k] >= '0' && d[k] <= '9' {
					k++
				}
				id, _ := strconv.ParseInt(string(d[j:k]), 10, 64)
				c.recv = append(c.recv, delivery{lead: id, at: at})
			}
		case completed != nil && bytes.Contains(d, []byte(`"type":3`)):
			close(completed)
			completed = nil
			return
		}
	}
}

// catchUp invokes CatchUp(after) and reads until its completion: the time
// from the invocation to the completion and the updates received. It
// gives up after limit.
func (c *elConn) catchUp(after uint64, limit time.Duration) (time.Duration, int, error) {
	completed := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.read(completed)
	}()
	t0 := time.Now()
	if err := c.Write(context.Background(), websocket.MessageText, signalrtest.JSONInvocation("c", "CatchUp", after)); err != nil {
		return 0, 0, err
	}
	select {
	case <-completed:
	case <-time.After(limit):
		c.Close()
		<-done
		return 0, int(c.updates.Load()), fmt.Errorf("CatchUp(%d): no completion (%d updates read)", after, c.updates.Load())
	}
	t := time.Since(t0)
	<-done
	return t, int(c.updates.Load()), nil
}

// dialAll connects n clients, 32 at a time.
func dialAll(hc *signalrtest.Client, n int) ([]*elConn, error) {
	conns := make([]*elConn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var c *signalrtest.Conn
				c, err = hc.Connect(ctx, signalrtest.JSON)
				cancel()
				if err == nil {
					conns[i] = &elConn{Conn: c}
					go keepAlive(c)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return conns, errors.Join(errs...)
}

// keepAlive pings every 10 s, as a client does, until the connection ends.
func keepAlive(c *signalrtest.Conn) {
	for {
		time.Sleep(10 * time.Second)
		if c.Ping(context.Background()) != nil {
			return
		}
	}
}

// waitDeliveries waits until every connection has n updates, or drain
// passes without progress.
func waitDeliveries(conns []*elConn, n int, drain time.Duration) {
	last, lastChange := -1, time.Now()
	for {
		total := 0
		for _, c := range conns {
			total += int(c.updates.Load())
		}
		if total >= n*len(conns) {
			return
		}
		if total != last {
			last, lastChange = total, time.Now()
		} else if time.Since(lastChange) > drain {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freshDatabase creates a database of the run's own on admin's server and
// returns its URL and a function that drops it.
func freshDatabase(ctx context.Context, admin string) (string, func(), error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("-db: %w", err)
	}
	a, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "hubbench_" + hex.EncodeToString(b)
	if _, err := a.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		a.Close()
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), func() {
		a.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		a.Close()
	}, nil
}

// example is the running example server.
type example struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startExample(bin, dbURL, secret string, logs io.Writer) (*example, string, error) {
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-db", dbURL, "-simulate=false", "-jwt-secret", secret,
		"-log-level", "warn", "-event-log=true")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = &prefixWriter{w: logs, prefix: "example server: "}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	e := &example{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(e.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "hub: ") {
				select {
				case found <- strings.TrimPrefix(l, "hub: "):
				default:
				}
			}
		}
		cmd.Wait()
	}()
	select {
	case u := <-found:
		return e, u, nil
	case <-e.done:
		return nil, "", errors.New("the example server exited at start")
	case <-time.After(60 * time.Second):
		e.stop()
		return nil, "", errors.New("the example server did not start within 60 s")
	}
}

func (e *example) stop() {
	e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
}

// prefixWriter writes each line with a prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Fprintln(p.w, p.prefix+l)
	}
	return len(b), nil
}

// usage is a phase's CPU: the machine's busy time (all processes, our
// PostgreSQL's backends and other tenants included), the example server's
// and this tool's.
type usage struct {
	busy, total, server, tool int64 // ns
	at                        time.Time
}

func sample(pid int) usage {
	u := usage{at: time.Now(), tool: cpuNanos(), server: procCPU(pid)}
	u.busy, u.total, _ = machineCPU()
	return u
}

// since describes the CPU used from u0 to now.
func (u0 usage) since(pid int) string {
	u := sample(pid)
	wall := u.at.Sub(u0.at).Seconds()
	ncpu := float64(u.total-u0.total) / 1e9 / wall
	return fmt.Sprintf("machine %.0f%% busy of %.0f CPUs; example server %.2f CPU-s, this tool %.2f CPU-s over %.1f s",
		100*float64(u.busy-u0.busy)/float64(u.total-u0.total), ncpu,
		float64(u.server-u0.server)/1e9, float64(u.tool-u0.tool)/1e9, wall)
}

// procCPU is a process's user+system time from /proc/<pid>/stat, in ns.
func procCPU(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after ")".
	_, rest, ok := bytes.Cut(b, []byte(") "))
	if !ok {
		return 0
	}
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + st) * (int64(1e9) / clockTicks)
}
