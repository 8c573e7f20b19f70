package notify_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: a Notifier's
// Close must stop and wait for its delivery goroutine.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
