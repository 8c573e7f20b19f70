package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// runClient runs testdata/client/<script> — the real @microsoft/signalr
// client under Node.js — with env added to its environment, within timeout.
// The script prints one JSON line {"name","ok","detail"} per case; each
// becomes a subtest of t. t fails when the script fails or fewer than want
// cases report.
func runClient(t *testing.T, script string, timeout time.Duration, want int, env ...string) {
	t.Helper()
	dir, err := filepath.Abs("testdata/client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@microsoft", "signalr")); err != nil {
		t.Fatalf("the client is not installed: run `npm ci --prefix hub/testdata/client` (or `make deps`): %v", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: the client tests need Node.js 20 or later")
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	}
	var results []result
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Logf("client: %s", sc.Text())
			continue
		}
		results = append(results, r)
	}
	runErr := cmd.Wait()
	for _, r := range results {
		t.Run(r.Name, func(t *testing.T) {
			if !r.OK {
				t.Error(r.Detail)
			}
		})
	}
	if runErr != nil {
		t.Fatalf("%s: %v", script, runErr)
	}
	if len(results) < want {
		t.Fatalf("%s: %d cases reported, want %d", script, len(results), want)
	}
}
