package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// privatePG is a PostgreSQL server of the test's own, in a temporary
// directory on a free port, that the test may stop and start (never the
// shared one the other tests use).
type privatePG struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cred *syscall.Credential // the postgres user's, when the test runs as root
}

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		if p, err := exec.LookPath("pg_ctl"); err == nil {
			bins = []string{p}
		} else {
			t.Skip("no pg_ctl: PostgreSQL's server binaries are not installed")
		}
	}
	pg := &privatePG{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	base, err := os.MkdirTemp("", "leadupdates-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	pg.dir = filepath.Join(base, "data")
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pg.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pg.run("initdb", "-D", pg.dir, "-U", "postgres", "--auth=trust", "--no-sync")
	pg.start()
	t.Cleanup(func() { pg.ctl("stop", "-m", "immediate") })
	return pg
}

func (pg *privatePG) run(name string, args ...string) {
	pg.t.Helper()
	cmd := exec.Command(filepath.Join(pg.bin, name), args...)
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	cmd.Dir = filepath.Dir(pg.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		pg.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (pg *privatePG) ctl(args ...string) {
	pg.t.Helper()
	pg.run("pg_ctl", append([]string{"-D", pg.dir, "-w", "-t", "60"}, args...)...)
}

func (pg *privatePG) start() {
	pg.ctl("start", "-l", filepath.Join(filepath.Dir(pg.dir), "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", pg.port, filepath.Dir(pg.dir)))
}

func (pg *privatePG) stop() { pg.ctl("stop", "-m", "fast") }

func (pg *privatePG) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// metricSum sums the samples of the named metric in a /metrics text.
func metricSum(text, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// TestNothingLostToDatabaseOutage: the simulated scrapers and the workflow
// run on a PostgreSQL that is stopped for 12 s. Meanwhile the REST API
// answers 503 with Retry-After; the scrapers keep what they harvest and
// store it once the database is back; workflows refused or cut short by
// the outage run again. Afterwards every harvested lead is stored and
// every lead from before the end of the outage has finished its workflow.
func TestNothingLostToDatabaseOutage(t *testing.T) {
	pg := startPrivatePG(t)
	s := startServer(t, "127.0.0.1:0", "-db", pg.url(), "-simulate=true", "-scrape-rate", "60", "-step-delay", "100ms")
	admin := issue(t, "ann", "admin")
	time.Sleep(4 * time.Second) // leads and workflows under way

	pg.stop()
	outageStart := time.Now()
	time.Sleep(2 * time.Second)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url("/api/leads"), nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET /api/leads with the database down: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	time.Sleep(12*time.Second - time.Since(outageStart))
	pg.start()
	end := time.Now()
	t.Logf("database down for %v", end.Sub(outageStart).Round(100*time.Millisecond))

	db, err := gorm.Open(postgres.Open(pg.url()), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	var m string
	deadline := time.Now().Add(90 * time.Second)
	for {
		m = s.metrics(t)
		var unfinished, stored int64
		db.Raw(`SELECT count(*) FROM leads WHERE deleted_at IS NULL AND created_at < ? AND status NOT IN ('SyncedToCrm', 'Disqualified')`, end).Scan(&unfinished)
		db.Raw(`SELECT count(*) FROM leads`).Scan(&stored)
		harvested := metricSum(m, "leadupdates_scraper_harvested_total")
		// What was harvested a moment ago must be stored now (a harvest
		// between its count and its insert makes one round fail: retried).
		if unfinished == 0 && harvested > 0 && float64(stored) >= harvested && metricSum(m, "leadupdates_workflow_retry_pending") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("90 s after the outage: %d leads from before it unfinished, %d stored of %g harvested, %g workflows waiting", unfinished, stored, harvested, metricSum(m, "leadupdates_workflow_retry_pending"))
		}
		time.Sleep(time.Second)
	}
	if metricSum(m, "leadupdates_scraper_retries_total") == 0 {
		t.Errorf("no insert retried during a 12 s outage: the test did not test it")
	}
	t.Logf("harvested %g, insert retries %g, workflow retries %g", metricSum(m, "leadupdates_scraper_harvested_total"),
		metricSum(m, "leadupdates_scraper_retries_total"), metricSum(m, "leadupdates_workflow_retries_total"))
	// Stopped now, the server keeps nothing in memory that is not stored.
	s.stop()
	var stored int64
	db.Raw(`SELECT count(*) FROM leads`).Scan(&stored)
	if h := metricSum(m, "leadupdates_scraper_harvested_total"); float64(stored) < h {
		t.Errorf("%d leads stored, %g harvested", stored, h)
	}
}
