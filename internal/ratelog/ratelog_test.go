package ratelog

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
)

func TestLogOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	l := New(log.NewLogfmtLogger(&buf), time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	l.Log("msg", "a")
	l.Log("msg", "b")
	l.Log("msg", "c")
	now = now.Add(999 * time.Millisecond)
	l.Log("msg", "d")
	now = now.Add(time.Millisecond)
	l.Log("msg", "e")
	now = now.Add(time.Second)
	l.Log("msg", "f")

	want := "msg=a\nmsg=e suppressed=3\nmsg=f\n"
	if got := buf.String(); got != want {
		t.Errorf("logged\n%s\nwant\n%s", got, want)
	}
}

func TestLogKeepsCallersSlice(t *testing.T) {
	var buf bytes.Buffer
	l := New(log.NewLogfmtLogger(&buf), time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	l.Log("msg", "a")
	l.Log("msg", "a")
	now = now.Add(time.Second)
	kv := make([]any, 2, 10)
	kv[0], kv[1] = "msg", "b"
	l.Log(kv...)
	if kv[:cap(kv)][2] != nil {
		t.Errorf("Log wrote into the caller's backing array: %v", kv[:cap(kv)])
	}
}

func TestEveryZeroLogsEverything(t *testing.T) {
	var buf bytes.Buffer
	l := New(log.NewLogfmtLogger(&buf), 0)
	for range 3 {
		l.Log("msg", "x")
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Errorf("logged %d lines, want 3", n)
	}
}

func TestNilLogger(t *testing.T) {
	if err := New(nil, time.Second).Log("msg", "x"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	var (
		mu    sync.Mutex
		lines int
	)
	l := New(log.LoggerFunc(func(...any) error {
		mu.Lock()
		lines++
		mu.Unlock()
		return nil
	}), time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				l.Log("msg", "x")
			}
		})
	}
	wg.Wait()
	if lines != 1 {
		t.Errorf("logged %d lines in one interval, want 1", lines)
	}
}
