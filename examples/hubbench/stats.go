package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// runResult is every figure of one run of one implementation.
type runResult struct {
	Impl       string  `json:"impl"`
	Run        int     `json:"run"`
	N          int     `json:"n"`
	M          int     `json:"m"`
	IntervalMs float64 `json:"intervalMs"` // 0: burst

	Connected     int     `json:"connected"`
	ConnectFailed int     `json:"connectFailed"`
	ConnectSec    float64 `json:"connectSec"`
	ServerConns   int     `json:"serverConns"` // live at the idle measurement

	HeapStackPerConn  float64 `json:"heapStackPerConn"` // bytes
	HeapPerConn       float64 `json:"heapPerConn"`      // of which HeapInuse
	StackPerConn      float64 `json:"stackPerConn"`     // of which StackInuse
	RSSPerConn        float64 `json:"rssPerConn"`       // bytes
	GoroutinesPerConn float64 `json:"goroutinesPerConn"`
	IdleServerCPUPct  float64 `json:"idleServerCpuPct"` // of one CPU

	Expected         int64   `json:"expected"`
	Unique           int64   `json:"unique"`
	Lost             int64   `json:"lost"`
	Dup              int64   `json:"dup"`
	OOO              int64   `json:"ooo"`
	OOOConns         int     `json:"oooConns"`
	Bad              int64   `json:"bad"`
	ShortConns       int     `json:"shortConns"`
	ClosesReceived   int     `json:"closesReceived"`
	ConnsEnded       int     `json:"connsEnded"`
	ClientErr        string  `json:"clientErr,omitempty"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	RecordsPerMsg    float64 `json:"recordsPerMessage"`       // hub messages per WebSocket message
	WritesPerDl      float64 `json:"serverWritesPerDelivery"` // write(2) calls of the server
	ReadsPerDl       float64 `json:"clientReadsPerDelivery"`  // read(2) calls of the client
	P50Ms            float64 `json:"p50ms"`
	P99Ms            float64 `json:"p99ms"`
	MaxMs            float64 `json:"maxms"`
	ServerCPUus      float64 `json:"serverCpuUsPerDelivery"`
	ClientCPUus      float64 `json:"clientCpuUsPerDelivery"`
	SendLoopSec      float64 `json:"sendLoopSec"`
	PeakGoroutines   int     `json:"peakGoroutines"`
	PeakHeapStackMB  float64 `json:"peakHeapStackMB"`
	VmHWMMB          float64 `json:"vmHWMMB"`
	WindowSec        float64 `json:"windowSec"`
	ForeignCPUPct    float64 `json:"foreignCpuPct"` // of the whole machine during the window
	ServerConnsAfter int     `json:"serverConnsAfter"`

	Counters map[string]float64 `json:"counters,omitempty"` // ours: the hub's Prometheus counters
}

func (r *runResult) fill(c burstClientReport, s burstReport, wall time.Duration) {
	r.Expected, r.Unique, r.Dup, r.OOO, r.OOOConns, r.Bad = c.Expected, c.Unique, c.Dup, c.OOO, c.OOOConns, c.Bad
	r.Lost = c.Expected - c.Unique
	r.ShortConns, r.ClosesReceived, r.ConnsEnded, r.ClientErr = c.ShortConns, c.Closes, c.Ended, c.FirstErr
	if span := c.LastRecv - c.SentAt0; span > 0 && c.SentAt0 > 0 {
		r.DeliveriesPerSec = float64(c.Unique) / (float64(span) / 1e9)
	}
	r.P50Ms, r.P99Ms, r.MaxMs = c.P50Ms, c.P99Ms, c.MaxMs
	if c.Messages > 0 {
		r.RecordsPerMsg = float64(c.Unique) / float64(c.Messages)
	}
	if c.Expected > 0 {
		r.WritesPerDl = float64(s.Writes) / float64(c.Expected)
		r.ReadsPerDl = float64(c.Reads) / float64(c.Expected)
		r.ServerCPUus = float64(s.CPUNs) / 1e3 / float64(c.Expected)
		r.ClientCPUus = float64(c.CPUNs) / 1e3 / float64(c.Expected)
	}
	r.SendLoopSec = float64(s.SendLoopNs) / 1e9
	r.PeakGoroutines = s.PeakGoroutines
	r.PeakHeapStackMB = float64(s.PeakHeapStack) / (1 << 20)
	r.VmHWMMB = float64(s.HWM) / (1 << 20)
	r.WindowSec = wall.Seconds()
	r.ServerConnsAfter = s.Conns
	r.Counters = s.Counters
}

func (r runResult) brief() string {
	return fmt.Sprintf("%d conns, %.0f B/conn heap+stack, %.0f deliveries/s, lost %d, out-of-order %d, server %.2f µs/delivery, foreign CPU %.0f%%",
		r.Connected, r.HeapStackPerConn, r.DeliveriesPerSec, r.Lost, r.OOO, r.ServerCPUus, r.ForeignCPUPct)
}

// metric is one column of the summary: how to read it from a run and print it.
type metric struct {
	name   string
	get    func(runResult) float64
	format string
	better int // +1 higher is better, -1 lower is better, 0 neither
}

var figures = []metric{
	{"heap+stack B/conn (idle)", func(r runResult) float64 { return r.HeapStackPerConn }, "%.0f", -1},
	{"  of which heap B/conn", func(r runResult) float64 { return r.HeapPerConn }, "%.0f", -1},
	{"  of which stack B/conn", func(r runResult) float64 { return r.StackPerConn }, "%.0f", -1},
	{"RSS B/conn (idle)", func(r runResult) float64 { return r.RSSPerConn }, "%.0f", -1},
	{"goroutines/conn (idle)", func(r runResult) float64 { return r.GoroutinesPerConn }, "%.2f", -1},
	{"idle server CPU %", func(r runResult) float64 { return r.IdleServerCPUPct }, "%.2f", -1},
	{"deliveries/s", func(r runResult) float64 { return r.DeliveriesPerSec }, "%.0f", +1},
	{"hub msgs per WebSocket msg", func(r runResult) float64 { return r.RecordsPerMsg }, "%.2f", 0},
	{"server write(2) per delivery", func(r runResult) float64 { return r.WritesPerDl }, "%.3f", -1},
	{"client read(2) per delivery", func(r runResult) float64 { return r.ReadsPerDl }, "%.3f", -1},
	{"p50 latency ms", func(r runResult) float64 { return r.P50Ms }, "%.1f", -1},
	{"p99 latency ms", func(r runResult) float64 { return r.P99Ms }, "%.1f", -1},
	{"out-of-order msgs", func(r runResult) float64 { return float64(r.OOO) }, "%.0f", -1},
	{"conns with out-of-order", func(r runResult) float64 { return float64(r.OOOConns) }, "%.0f", -1},
	{"lost", func(r runResult) float64 { return float64(r.Lost) }, "%.0f", -1},
	{"duplicates", func(r runResult) float64 { return float64(r.Dup) }, "%.0f", -1},
	{"server CPU µs/delivery", func(r runResult) float64 { return r.ServerCPUus }, "%.2f", -1},
	{"client CPU µs/delivery", func(r runResult) float64 { return r.ClientCPUus }, "%.2f", -1},
	{"send loop s", func(r runResult) float64 { return r.SendLoopSec }, "%.2f", 0},
	{"peak goroutines", func(r runResult) float64 { return float64(r.PeakGoroutines) }, "%.0f", -1},
	{"peak heap+stack MB", func(r runResult) float64 { return r.PeakHeapStackMB }, "%.0f", -1},
	{"server VmHWM MB", func(r runResult) float64 { return r.VmHWMMB }, "%.0f", -1},
	{"connect s", func(r runResult) float64 { return r.ConnectSec }, "%.2f", -1},
	{"foreign CPU % (window)", func(r runResult) float64 { return r.ForeignCPUPct }, "%.0f", 0},
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printResults(w io.Writer, cfg runConfig, results []runResult) {
	byImpl := map[string][]runResult{}
	for _, r := range results {
		byImpl[r.Impl] = append(byImpl[r.Impl], r)
	}

	fmt.Fprintln(w, "\nPer run:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "impl\trun\tconns\theap+stack B/conn\tRSS B/conn\tgoroutines/conn\tdeliveries/s\tp50 ms\tp99 ms\tout-of-order [conns]\tlost\tdup\tserver µs/dl\tclient µs/dl\tsend loop s\tpeak goroutines\tpeak heap MB\tforeign CPU %\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.2f\t%.0f\t%.1f\t%.1f\t%d [%d]\t%d\t%d\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.0f\t\n",
			r.Impl, r.Run, r.Connected, r.HeapStackPerConn, r.RSSPerConn, r.GoroutinesPerConn, r.DeliveriesPerSec,
			r.P50Ms, r.P99Ms, r.OOO, r.OOOConns, r.Lost, r.Dup, r.ServerCPUus, r.ClientCPUus, r.SendLoopSec,
			r.PeakGoroutines, r.PeakHeapStackMB, r.ForeignCPUPct)
	}
	tw.Flush()

	// The summary may leave out runs during which other processes used a
	// large share of the machine, as long as each implementation keeps one.
	all := byImpl
	title := "over all runs"
	if cfg.maxForeign > 0 {
		quiet := map[string][]runResult{}
		for impl, rs := range byImpl {
			for _, r := range rs {
				if r.ForeignCPUPct < cfg.maxForeign {
					quiet[impl] = append(quiet[impl], r)
				}
			}
		}
		title = fmt.Sprintf("over runs with foreign CPU < %.0f%%", cfg.maxForeign)
		for _, impl := range cfg.impls {
			title += fmt.Sprintf(", %s %d of %d", impl, len(quiet[impl]), len(byImpl[impl]))
			if len(quiet[impl]) == 0 {
				quiet[impl] = byImpl[impl]
				title += " (none quiet: all used)"
			}
		}
		byImpl = quiet
	}
	fmt.Fprintf(w, "\nSummary, median (min–max) %s:\n", title)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "figure"
	for _, impl := range cfg.impls {
		header += "\t" + impl
	}
	ratio := len(byImpl[implOurs]) > 0 && len(byImpl[implDefault]) > 0
	if ratio {
		header += "\tratio " + implOurs + "/default"
	}
	fmt.Fprintln(tw, header+"\t")
	med := map[string]map[string]float64{}
	for _, impl := range cfg.impls {
		med[impl] = map[string]float64{}
	}
	for _, m := range figures {
		line := m.name
		for _, impl := range cfg.impls {
			var v []float64
			for _, r := range byImpl[impl] {
				v = append(v, m.get(r))
			}
			md := median(v)
			med[impl][m.name] = md
			cell := fmt.Sprintf(m.format, md)
			if len(v) > 1 {
				cell += " (" + fmt.Sprintf(m.format, slices.Min(v)) + "–" + fmt.Sprintf(m.format, slices.Max(v)) + ")"
			}
			line += "\t" + cell
		}
		if ratio {
			a, b := med[implOurs][m.name], med[implDefault][m.name]
			switch {
			case m.better == 0:
				line += "\t"
			case b != 0:
				line += fmt.Sprintf("\t%.2f", a/b)
			default:
				line += "\t-"
			}
		}
		fmt.Fprintln(tw, line+"\t")
	}
	tw.Flush()

	for _, r := range all[implOurs] {
		if len(r.Counters) == 0 {
			continue
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Counters)) {
			if strings.Contains(k, "dropped") || strings.Contains(k, "slow") || strings.Contains(k, "closed") {
				parts = append(parts, fmt.Sprintf("%s=%.0f", k, r.Counters[k]))
			}
		}
		if len(parts) > 0 || r.ConnsEnded > 0 || r.ClosesReceived > 0 {
			fmt.Fprintf(w, "\n%s run %d: hub counters %s; client saw %d Close messages, %d connections ended%s\n",
				r.Impl, r.Run, strings.Join(parts, " "), r.ClosesReceived, r.ConnsEnded, errNote(r.ClientErr))
		}
	}
	for _, r := range all[implDefault] {
		if r.ConnsEnded > 0 || r.ClosesReceived > 0 {
			fmt.Fprintf(w, "\n%s run %d: client saw %d Close messages, %d connections ended%s\n",
				r.Impl, r.Run, r.ClosesReceived, r.ConnsEnded, errNote(r.ClientErr))
		}
	}

	if len(byImpl[implOurs]) == 0 {
		return
	}
	o := med[implOurs]
	fmt.Fprintln(w, "\nGoals (summary medians; order and loss over all runs):")
	check := func(ok bool, what string) {
		mark := "MET  "
		if !ok {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, what)
	}
	check(o["heap+stack B/conn (idle)"] <= 48*1024, fmt.Sprintf("≤ 48 KB heap+stack per idle connection: %.0f B", o["heap+stack B/conn (idle)"]))
	var ooo, lost int64
	for _, r := range all[implOurs] {
		ooo += r.OOO
		lost += r.Lost
	}
	check(ooo == 0, fmt.Sprintf("zero out-of-order in every run: %d", ooo))
	check(lost == 0, fmt.Sprintf("zero lost in every run: %d", lost))
	if ratio {
		d := med[implDefault]
		if cfg.paced == 0 {
			check(o["deliveries/s"] >= 2*d["deliveries/s"], fmt.Sprintf("≥ 2× the default's deliveries/s: %.2f×", o["deliveries/s"]/d["deliveries/s"]))
		} else {
			fmt.Fprintf(w, "  n/a    ≥ 2× the default's deliveries/s: paced, both are held to the offered rate (%.2f×)\n", o["deliveries/s"]/d["deliveries/s"])
		}
		check(o["server CPU µs/delivery"] <= d["server CPU µs/delivery"]/2, fmt.Sprintf("≤ ½ the default's server CPU per delivery: %.2f×", o["server CPU µs/delivery"]/d["server CPU µs/delivery"]))
	}
}

func errNote(err string) string {
	if err == "" {
		return ""
	}
	return " (first: " + err + ")"
}
