package minrate_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/internal/minrate"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// slowReader reads the body 100 bytes at a time, pausing between reads
// for longer than the grace period: time the handler spends elsewhere does
// not count against the client.
func slowReader(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 100)
	n := 0
	for {
		k, err := r.Body.Read(buf)
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(150 * time.Millisecond)
	}
	fmt.Fprint(w, n)
}

func TestRate(t *testing.T) {
	ts := httptest.NewServer(minrate.Handler(http.HandlerFunc(slowReader), 1000, 100*time.Millisecond))
	defer ts.Close()

	resp, err := http.Post(ts.URL, "text/plain", strings.NewReader(strings.Repeat("x", 500)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "500" {
		t.Errorf("a prompt body read slowly by the handler: %d %q, want 200 \"500\"", resp.StatusCode, b)
	}

	// A client that drips its body is cut off after the grace period.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, conn)
	}()
	for i := 0; i < 100; i++ {
		select {
		case <-done:
			i = 100
			continue
		case <-time.After(200 * time.Millisecond):
		}
		_, _ = conn.Write([]byte("x"))
	}
	<-done
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a dripping body held the connection for %v", d)
	}
}
