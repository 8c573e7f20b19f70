package ratelog_test

import (
	"os"
	"time"

	"github.com/go-kit/log"
	"github.com/leadupdates/leadupdates/internal/ratelog"
)

// Of a burst of warnings within one interval, only the first is logged.
func Example() {
	warn := ratelog.New(log.NewLogfmtLogger(os.Stdout), time.Hour)
	for range 1000 {
		warn.Log("msg", "queue full; event dropped")
	}
	// Output: msg="queue full; event dropped"
}
