package eventlog_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/testdb"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"
)

// TestMain needs PostgreSQL (TEST_DATABASE_URL, by default the local test
// database) and fails the run if a test leaves a goroutine behind: a Log's
// Close must stop and wait for all of its own.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	leakOpts := goleak.IgnoreCurrent()
	admin, err := sql.Open("pgx", pgDSN())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = admin.PingContext(ctx)
		cancel()
		admin.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "eventlog tests need PostgreSQL at %s: %v\n"+
			"Start it with `make testenv` or set TEST_DATABASE_URL.\n", pgDSN(), err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(leakOpts,
			// GORM's PrepareStmt cache starts an expiry goroutine it never stops.
			goleak.IgnoreTopFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return code
}

func pgDSN() string {
	return testdb.DSN()
}
