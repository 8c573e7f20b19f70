package metrics_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: a Publisher's
// Close must stop and wait for its goroutine.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
