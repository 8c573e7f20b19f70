// Command hubbench measures our hub (package hub) against
// philippseith/signalr's own server on the same broadcast scenario: idle
// memory per WebSocket connection, then a burst (or a paced series) of
// broadcasts to every connection, checking order and loss.
//
//	go run ./examples/hubbench run -n 5000 -m 200 -runs 2
//
// "run" starts the server and the client as separate child processes of the
// same binary ("hubbench server", "hubbench client"), so that the server's
// memory, goroutines and CPU never include the clients, and drives them over
// their stdin and stdout. See README.md.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// childEnv marks a child process; the test binary uses it to act as the tool.
const childEnv = "HUBBENCH_CHILD"

func main() {
	if err := dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hubbench:", err)
		os.Exit(1)
	}
}

func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: hubbench run|report|eventlog|server|client [flags]")
	}
	switch args[0] {
	case "run":
		cfg, err := parseRun(args[1:])
		if err != nil {
			return err
		}
		_, err = runBench(cfg, stdout, stderr)
		return err
	case "report":
		return report(args[1:], stdout)
	case "server":
		return serverMain(args[1:], stdin, stdout)
	case "client":
		return clientMain(args[1:], stdin, stdout)
	case "eventlog":
		cfg, err := parseEventLog(args[1:])
		if err != nil {
			return err
		}
		_, err = runEventLog(cfg, stdout, stderr)
		return err
	}
	return fmt.Errorf("unknown command %q; want run, report, server, client or eventlog", args[0])
}

// report prints the tables again from the files that run -json wrote,
// merging them; all must be of the same scenario.
func report(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	var cfg runConfig
	fs.Float64Var(&cfg.maxForeign, "maxforeign", 0, "if > 0, the summary uses only runs during which other processes used less than this % of the machine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var results []runResult
	for _, name := range fs.Args() {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		var rs []runResult
		if err := json.Unmarshal(b, &rs); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, rs...)
	}
	if len(results) == 0 {
		return errors.New("hubbench report needs at least one results file (usage: hubbench report [-maxforeign pct] FILE [FILE ...])")
	}
	first := results[0]
	cfg.n, cfg.m, cfg.paced = first.N, first.M, time.Duration(first.IntervalMs*1e6)
	seen := map[string]bool{}
	for _, r := range results {
		if r.N != first.N || r.M != first.M || r.IntervalMs != first.IntervalMs {
			return fmt.Errorf("run %d %s is another scenario (N=%d M=%d interval %v ms)", r.Run, r.Impl, r.N, r.M, r.IntervalMs)
		}
		if !seen[r.Impl] {
			seen[r.Impl] = true
			cfg.impls = append(cfg.impls, r.Impl)
		}
	}
	fmt.Fprintf(out, "hubbench: N=%d M=%d, %d runs from %s\n", cfg.n, cfg.m, len(results), strings.Join(fs.Args(), ", "))
	printResults(out, cfg, results)
	return nil
}

type runConfig struct {
	n, m, runs int
	impls      []string
	paced      time.Duration // 0: burst
	idle       time.Duration // how long connections sit before the idle measurement
	drain      time.Duration // give up on a burst after this long without progress
	sendQueue  int
	maxForeign float64 // summarize only runs below this foreign CPU share, if > 0
	profDir    string
	jsonOut    string
}

func parseRun(args []string) (runConfig, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var cfg runConfig
	var impl string
	fs.IntVar(&cfg.n, "n", 5000, "WebSocket connections")
	fs.IntVar(&cfg.m, "m", 200, "broadcasts (40 by default with -paced)")
	fs.IntVar(&cfg.runs, "runs", 1, "rounds; each round runs every implementation once, interleaved")
	fs.StringVar(&impl, "impl", "both", "both, "+implOurs+" or "+implDefault)
	fs.DurationVar(&cfg.paced, "paced", 0, "send one broadcast per interval instead of a burst (e.g. 250ms)")
	fs.DurationVar(&cfg.idle, "idle", 3*time.Second, "idle time after connecting, before measuring memory")
	fs.DurationVar(&cfg.drain, "drain", 10*time.Second, "stop waiting for a burst after this long without progress; the rest is lost")
	fs.Float64Var(&cfg.maxForeign, "maxforeign", 0, "if > 0, the summary uses only runs during which other processes used less than this % of the machine")
	fs.IntVar(&cfg.sendQueue, "sendqueue", 0, implOurs+": per-connection send queue (0: the hub's default)")
	fs.StringVar(&cfg.profDir, "profile", "", "directory for server profiles: CPU during the burst, heap when idle and at the end of the send loop, idle goroutines")
	fs.StringVar(&cfg.jsonOut, "json", "", "also write every run's figures to this file as JSON")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	mSet := false
	fs.Visit(func(f *flag.Flag) { mSet = mSet || f.Name == "m" })
	if cfg.paced > 0 && !mSet {
		cfg.m = 40
	}
	switch impl {
	case "both":
		cfg.impls = []string{implOurs, implDefault}
	case implOurs, implDefault:
		cfg.impls = []string{impl}
	default:
		return cfg, fmt.Errorf("unknown -impl %q", impl)
	}
	if cfg.n < 1 || cfg.m < 1 || cfg.runs < 1 {
		return cfg, errors.New("-n, -m and -runs must be positive")
	}
	if cfg.profDir != "" {
		if err := os.MkdirAll(cfg.profDir, 0o755); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// runBench runs every round and prints the tables to out.
func runBench(cfg runConfig, out, logw io.Writer) ([]runResult, error) {
	mode := "burst"
	if cfg.paced > 0 {
		mode = "paced " + cfg.paced.String()
	}
	fmt.Fprintf(out, "hubbench: N=%d M=%d %s, %d round(s) of %s\n", cfg.n, cfg.m, mode, cfg.runs, strings.Join(cfg.impls, ", "))
	var results []runResult
	for run := 1; run <= cfg.runs; run++ {
		for _, impl := range cfg.impls {
			fmt.Fprintf(logw, "hubbench: run %d %s ...\n", run, impl)
			r, err := runOne(cfg, impl, run, logw)
			if err != nil {
				return results, fmt.Errorf("run %d %s: %w", run, impl, err)
			}
			fmt.Fprintf(logw, "hubbench: run %d %s: %s\n", run, impl, r.brief())
			results = append(results, r)
		}
	}
	printResults(out, cfg, results)
	if cfg.jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(cfg.jsonOut, b, 0o644); err != nil {
			return results, err
		}
	}
	return results, nil
}

// runOne measures one implementation with fresh server and client processes.
func runOne(cfg runConfig, impl string, run int, logw io.Writer) (runResult, error) {
	r := runResult{Impl: impl, Run: run, N: cfg.n, M: cfg.m, IntervalMs: float64(cfg.paced) / 1e6}
	sargs := []string{"server", "-impl", impl}
	if cfg.sendQueue > 0 {
		sargs = append(sargs, "-sendqueue", strconv.Itoa(cfg.sendQueue))
	}
	if cfg.profDir != "" {
		sargs = append(sargs, "-profdir", cfg.profDir, "-proftag", fmt.Sprintf("%s-run%d", impl, run))
	}
	srv, err := startChild("server "+impl, sargs, logw)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	var ready struct {
		URL string `json:"url"`
	}
	if err := srv.read(&ready); err != nil {
		return r, err
	}
	var base, idle memReport
	if err := srv.call("MEM", &base); err != nil {
		return r, err
	}

	cli, err := startChild("client", []string{"client", "-url", ready.URL, "-n", strconv.Itoa(cfg.n)}, logw)
	if err != nil {
		return r, err
	}
	defer cli.stop()
	var cr connectReport
	if err := cli.call("CONNECT", &cr); err != nil {
		return r, err
	}
	r.Connected, r.ConnectFailed, r.ConnectSec = cr.Connected, cr.Failed, cr.Seconds
	if cr.Failed > 0 {
		fmt.Fprintf(logw, "hubbench: %d connections failed: %s\n", cr.Failed, cr.FirstErr)
	}
	if cr.Connected == 0 {
		return r, errors.New("no connection succeeded: " + cr.FirstErr)
	}
	// The server counts a connection once its handshake is through.
	var cs struct {
		Conns int   `json:"conns"`
		CPUNs int64 `json:"cpuNs"`
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := srv.call("CONNS", &cs); err != nil {
			return r, err
		}
		if cs.Conns >= cr.Connected || time.Now().After(deadline) {
			break
		}
	}
	idleStart := time.Now()
	time.Sleep(cfg.idle)
	if err := srv.call("MEM idle", &idle); err != nil {
		return r, err
	}
	r.IdleServerCPUPct = 100 * float64(idle.CPUNs-cs.CPUNs) / float64(time.Since(idleStart))
	r.ServerConns = idle.Conns
	if idle.Conns > 0 {
		n := float64(idle.Conns)
		r.HeapPerConn = (float64(idle.HeapInuse) - float64(base.HeapInuse)) / n
		r.StackPerConn = (float64(idle.StackInuse) - float64(base.StackInuse)) / n
		r.HeapStackPerConn = r.HeapPerConn + r.StackPerConn
		r.RSSPerConn = float64(idle.RSS-base.RSS) / n
		r.GoroutinesPerConn = float64(idle.Goroutines-base.Goroutines) / n
	}

	if err := cli.call("EXPECT "+strconv.Itoa(cfg.m), nil); err != nil {
		return r, err
	}
	busy0, total0, _ := machineCPU()
	w0 := time.Now()
	if err := srv.call(fmt.Sprintf("BCAST %d %d", cfg.m, int64(cfg.paced)), nil); err != nil {
		return r, err
	}
	var bc burstClientReport
	if err := cli.call("WAIT "+strconv.FormatInt(cfg.drain.Milliseconds(), 10), &bc); err != nil {
		return r, err
	}
	var bs burstReport
	if err := srv.call("CPU", &bs); err != nil {
		return r, err
	}
	wall := time.Since(w0)
	busy1, total1, err := machineCPU()
	if err == nil && total1 > total0 {
		// Share of the whole machine over the window that neither process used.
		foreign := float64(busy1-busy0-bs.CPUNs-bc.CPUNs) / float64(total1-total0)
		r.ForeignCPUPct = 100 * max(foreign, 0)
	}
	r.fill(bc, bs, wall)
	return r, nil
}

// child is a server or client process, driven one line at a time.
type child struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	logw *io.PipeWriter // the child's stderr
	errs sync.WaitGroup
}

func startChild(name string, args []string, logw io.Writer) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<16), logw: pw}
	c.errs.Go(func() {
		forwardLog(name, pr, logw)
		_, _ = io.Copy(io.Discard, pr)
	})
	return c, nil
}

// forwardLog copies a child's stderr, prefixed, up to a limit: a library
// that logs every connection should not flood the terminal.
func forwardLog(name string, r io.Reader, w io.Writer) {
	const limit = 20
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		if n < limit {
			fmt.Fprintf(w, "[%s] %s\n", name, sc.Text())
		}
		n++
	}
	if n > limit {
		fmt.Fprintf(w, "[%s] ... %d more log lines\n", name, n-limit)
	}
}

// call sends one command and decodes the one-line answer into v.
func (c *child) call(cmd string, v any) error {
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		return fmt.Errorf("%s: %s: %w", c.name, cmd, err)
	}
	if err := c.read(v); err != nil {
		return fmt.Errorf("%s: %s: %w", c.name, cmd, err)
	}
	return nil
}

func (c *child) read(v any) error {
	line, err := c.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s exited: %w", c.name, err)
	}
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		return errors.New(strings.TrimSpace(msg))
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal([]byte(line), v)
}

// stop asks the child to quit and kills it if it does not within 15 s.
func (c *child) stop() {
	_, _ = io.WriteString(c.in, "QUIT\n")
	_ = c.in.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c.out)
		_ = c.cmd.Wait()
		_ = c.logw.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		fmt.Fprintf(os.Stderr, "hubbench: %s did not quit in 15 s; killing it\n", c.name)
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.errs.Wait()
}
