package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the tool's server and client child
// processes, which runBench starts with os.Executable.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("hubbench child: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestEndToEnd runs both implementations at a tiny scale, through the same
// orchestration as a real run. It checks correctness and that the figures
// are sane, never timing.
func TestEndToEnd(t *testing.T) {
	cfg, err := parseRun([]string{"-n", "20", "-m", "10", "-idle", "200ms", "-drain", "5s"})
	if err != nil {
		t.Fatal(err)
	}
	var out, logs bytes.Buffer
	results, err := runBench(cfg, &out, &logs)
	t.Logf("output:\n%s\nlogs:\n%s", out.String(), logs.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("got %d results, want 2", len(results))
	}
	for _, r := range results {
		if r.Connected != 20 || r.ConnectFailed != 0 || r.ServerConns != 20 {
			t.Errorf("%s: connected %d, failed %d, server saw %d; want 20, 0, 20", r.Impl, r.Connected, r.ConnectFailed, r.ServerConns)
		}
		if r.Expected != 200 || r.Unique+r.Lost != r.Expected {
			t.Errorf("%s: expected %d, unique %d, lost %d", r.Impl, r.Expected, r.Unique, r.Lost)
		}
		if r.Bad != 0 || r.Dup != 0 {
			t.Errorf("%s: %d unreadable, %d duplicate messages", r.Impl, r.Bad, r.Dup)
		}
		if r.Unique > 0 && (r.DeliveriesPerSec <= 0 || r.P50Ms < 0 || r.P99Ms < r.P50Ms || r.MaxMs < r.P99Ms) {
			t.Errorf("%s: insane rate or latency: %.0f/s, p50 %.2f, p99 %.2f, max %.2f", r.Impl, r.DeliveriesPerSec, r.P50Ms, r.P99Ms, r.MaxMs)
		}
		if r.HeapStackPerConn <= 0 || r.GoroutinesPerConn <= 0 || r.ServerCPUus < 0 || r.ClientCPUus < 0 {
			t.Errorf("%s: insane per-connection figures: %.0f B, %.2f goroutines, %.2f/%.2f µs", r.Impl, r.HeapStackPerConn, r.GoroutinesPerConn, r.ServerCPUus, r.ClientCPUus)
		}
		if r.Impl == implOurs {
			if r.Lost != 0 || r.OOO != 0 || r.ConnsEnded != 0 || r.ClosesReceived != 0 {
				t.Errorf("%s: lost %d, out of order %d, %d connections ended, %d Close messages; want none",
					r.Impl, r.Lost, r.OOO, r.ConnsEnded, r.ClosesReceived)
			}
		}
	}
	for _, want := range []string{implOurs, implDefault, "ratio", "deliveries/s", "Goals"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRecordParsing: a record is counted from its seq and sentAt, found by
// byte search; pings are skipped, duplicates and reordering counted. (How a
// stream is cut into records is signalrtest's, and tested there.)
func TestRecordParsing(t *testing.T) {
	c := &benchClient{}
	cc := &clientConn{}
	c.conns = []*clientConn{cc}
	c.expect(3)
	rec := func(seq int) []byte {
		return []byte(`{"type":1,"target":"ReceiveLeadUpdate","arguments":[{"type":"STATUS_UPDATE","seq":` +
			strconv.Itoa(seq) + `,"sentAt":1000,"lead":{"id":1}}]}`)
	}
	// A ping, a record out of order and a duplicate.
	for i, r := range [][]byte{rec(0), []byte(`{"type":6}`), rec(2), rec(1), rec(1)} {
		cc.record(c, r, int64(5000+1000*(i/3)))
	}
	if cc.got != 3 || cc.ooo != 1 || cc.dup != 1 || cc.bad != 0 || c.total.Load() != 3 {
		t.Fatalf("got %d, ooo %d, dup %d, bad %d, total %d", cc.got, cc.ooo, cc.dup, cc.bad, c.total.Load())
	}
	if cc.sentAt0 != 1000 || cc.lastRecv != 6000 || cc.lat[0] != 4 {
		t.Fatalf("sentAt0 %d, lastRecv %d, lat %v", cc.sentAt0, cc.lastRecv, cc.lat)
	}
}

// TestEventLogEndToEnd runs "hubbench eventlog" at a tiny scale against the
// real example server on PostgreSQL: every event reaches every connection,
// and the catch-ups return every event. No timing is asserted.
func TestEventLogEndToEnd(t *testing.T) {
	cfg, err := parseEventLog([]string{"-conns", "5", "-rate", "50", "-duration", "1s", "-catchup", "1500", "-resumers", "10", "-resume-events", "300"})
	if err != nil {
		t.Fatal(err)
	}
	if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
		cfg.db = dsn
	}
	var out, logs bytes.Buffer
	res, err := runEventLog(cfg, &out, &logs)
	t.Logf("output:\n%s\nlogs:\n%s", out.String(), logs.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Deliveries != res.Events*5 || res.Events != 51 {
		t.Errorf("latency phase: %d events, %d deliveries, %d lost; want 51 events to each of 5 connections", res.Events, res.Deliveries, res.Lost)
	}
	if res.CatchUp != 1500 || res.ResumeMissing != 0 {
		t.Errorf("catch-up: one client %d of 1500 events, %d missing among the resumers", res.CatchUp, res.ResumeMissing)
	}
}
