package hub

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if any goroutine outlives the tests: every
// Server the tests start is closed, every client they dial is closed, so
// whatever is still running at the end leaked from the hub (or the engine
// underneath it).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
