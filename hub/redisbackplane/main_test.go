package redisbackplane_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if any goroutine outlives the tests: every
// subscription, hub and Redis client the tests start is stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
