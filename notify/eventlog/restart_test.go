package eventlog_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"gorm.io/driver/postgres"
)

// privatePG is a PostgreSQL server of the test's own, so that the test may
// crash it.
type privatePG struct {
	bin, dir, port string
	asUser         []string // runuser prefix when the test runs as root
}

// startPrivatePG initialises and starts a server in a temporary directory
// on a free port, or skips the test when PostgreSQL's binaries are absent.
func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/pg_ctl): cannot start a private server to restart")
	}
	p := &privatePG{bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "eventlog-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p.dir = filepath.Join(dir, "data")
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user: cannot run initdb")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	p.run(t, "initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "-N")
	p.ctl(t, "start")
	t.Cleanup(func() { p.run(t, "pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop") })
	return p
}

func (p *privatePG) run(t *testing.T, name string, args ...string) {
	t.Helper()
	argv := append(append(append([]string{}, p.asUser...), filepath.Join(p.bin, name)), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// ctl runs pg_ctl start or restart; restart is "-m immediate": a crash,
// with recovery at start.
func (p *privatePG) ctl(t *testing.T, action string) {
	p.run(t, "pg_ctl", "-D", p.dir, "-w", "-m", "immediate", "-l", filepath.Join(filepath.Dir(p.dir), "log"),
		"-o", "-p "+p.port+" -k "+filepath.Dir(p.dir)+" -c listen_addresses=127.0.0.1 -c synchronous_commit=on", action)
}

func (p *privatePG) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", p.port)
}

// TestPostgresRestart crashes and restarts PostgreSQL while writers append:
// every acknowledged event is read after the restart, every event in the
// table is read exactly once, at contiguous positions, by a tail that
// lived through the restart.
func TestPostgresRestart(t *testing.T) {
	pg := startPrivatePG(t)
	db := openGorm(t, postgres.Open(pg.dsn()))
	l := openLog(t, db, "lead_events")
	tl := startTail(t, l, 0)

	const writers, perWriter = 4, 400
	var (
		mu    sync.Mutex
		acked = map[payload]bool{}
		tried = map[payload]int{} // attempts, >1 when one failed (its commit may still have happened)
		wg    sync.WaitGroup
	)
	restartAt := make(chan struct{})
	var once sync.Once
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if w == 0 && i == perWriter/3 {
					once.Do(func() { close(restartAt) })
				}
				p := payload{W: w, I: i}
				for {
					mu.Lock()
					tried[p]++
					mu.Unlock()
					if err := l.Append(t.Context(), nil, ev(int64(w+1), "STATUS_UPDATE", p)); err == nil {
						break
					}
					if t.Context().Err() != nil {
						return
					}
				}
				mu.Lock()
				acked[p] = true
				mu.Unlock()
			}
		})
	}
	<-restartAt
	pg.ctl(t, "restart")
	wg.Wait()

	var total int
	if err := db.Raw(`SELECT coalesce(sum(count), 0) FROM lead_events`).Scan(&total).Error; err != nil {
		t.Fatal(err)
	}
	seen := map[payload]int{}
	for i := range total {
		e := tl.next(t)
		if e.Position != uint64(i+1) {
			t.Fatalf("event %d at position %d", i, e.Position)
		}
		seen[decode(t, e)]++
	}
	for p := range acked {
		if seen[p] == 0 {
			t.Errorf("acknowledged event %+v lost", p)
		}
	}
	retried := 0
	for p, n := range seen {
		if n > 1 && tried[p] < n {
			t.Errorf("event %+v read %d times, appended %d", p, n, tried[p])
		}
		if tried[p] > 1 {
			retried++
		}
	}
	if err := tl.stop(); err != nil && err != t.Context().Err() && !isCanceled(err) {
		t.Errorf("tail: %v", err)
	}
	t.Logf("%d events in the table, %d acknowledged, %d appends retried across the restart", total, len(acked), retried)
	h, err := l.Head(t.Context())
	if err != nil || h != uint64(total) {
		t.Errorf("Head = %d, %v; want %d", h, err, total)
	}
}
