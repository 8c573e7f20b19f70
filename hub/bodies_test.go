package hub_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadupdates/leadupdates/hub"
)

// TestSlowBodiesAreCut: 200 connections that send a request head and then
// drip the body, a byte every 2 s, on every body-reading path (negotiate,
// a refused POST, a GET with a body, a Long Polling connection's own POST),
// are all closed within 30 s, while normal requests are answered meanwhile.
func TestSlowBodiesAreCut(t *testing.T) {
	// Every client here is on one address: no per-address cap.
	h, err := hub.New(hub.WithMaxPendingConnections(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ts := securityHub(t, h)
	addr := strings.TrimPrefix(ts.URL, "http://")

	// Long Polling connections to drip their handshake POST to.
	lpToken := func() string {
		resp, err := http.Post(ts.URL+"/leadupdates/negotiate?negotiateVersion=1", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var n struct{ ConnectionToken string }
		if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
			t.Fatal(err)
		}
		poll, err := http.Get(ts.URL + "/leadupdates?id=" + n.ConnectionToken) // attaches
		if err != nil {
			t.Fatal(err)
		}
		poll.Body.Close()
		return n.ConnectionToken
	}

	const n = 200
	heads := make([]string, n)
	for i := range n {
		switch i % 4 {
		case 0:
			heads[i] = "POST /leadupdates/negotiate?negotiateVersion=1 HTTP/1.1"
		case 1:
			heads[i] = "POST /leadupdates?id=nosuchconnection HTTP/1.1"
		case 2:
			heads[i] = "GET /leadupdates?id=nosuchconnection HTTP/1.1"
		case 3:
			if i < 40 {
				heads[i] = "POST /leadupdates?id=" + lpToken() + " HTTP/1.1"
			} else {
				heads[i] = "POST /leadupdates/negotiate HTTP/1.1"
			}
		}
	}
	start := time.Now()
	closedAfter := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := `{"protocol":"json","version":1}` + "\x1e"
		fmt.Fprintf(conn, "%s\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", heads[i], addr, len(body))
		wg.Go(func() { // drip
			for k := 0; k < len(body); k++ {
				if _, err := conn.Write([]byte{body[k]}); err != nil {
					return
				}
				time.Sleep(2 * time.Second)
			}
		})
		wg.Go(func() { // wait for the server to close
			_ = conn.SetReadDeadline(start.Add(40 * time.Second))
			_, _ = io.Copy(io.Discard, conn)
			closedAfter[i] = time.Since(start)
		})
	}
	// Normal requests are answered meanwhile.
	client := &http.Client{Timeout: 3 * time.Second}
	for time.Since(start) < 8*time.Second {
		resp, err := client.Post(ts.URL+"/leadupdates/negotiate?negotiateVersion=1", "", nil)
		if err != nil {
			t.Errorf("a normal negotiate during the drip: %v", err)
			break
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("a normal negotiate during the drip: %d", resp.StatusCode)
		}
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	var worst time.Duration
	for i, d := range closedAfter {
		worst = max(worst, d)
		if d > 30*time.Second {
			t.Errorf("dripping connection %d (%s) still open after %v", i, heads[i], d.Round(time.Second))
		}
	}
	t.Logf("the last dripping connection was closed after %v", worst.Round(100*time.Millisecond))
}
