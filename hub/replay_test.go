package hub

import (
	"fmt"
	"testing"
)

// The replay buffer keeps frames in order across chunks, drops the oldest
// on an Ack, gives every chunk back once empty, and counts bytes exactly.
func TestReplayBuffer(t *testing.T) {
	var r replay
	r.first = 1
	want := [][]byte{}
	add := func(n int) {
		for range n {
			f := []byte(fmt.Sprint(len(want) + int(r.first)))
			r.add(f)
			want = append(want, f)
		}
	}
	check := func() {
		t.Helper()
		got := r.appendTo(nil)
		bytes := 0
		for _, f := range want {
			bytes += len(f)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || r.n != len(want) || r.bytes != bytes {
			t.Fatalf("holds %q (n %d, %d bytes), want %q (%d bytes)", got, r.n, r.bytes, want, bytes)
		}
	}
	add(70)
	check()
	r.ack(0) // before the first: nothing
	check()
	r.ack(5)
	want = want[5:]
	check()
	r.ack(40) // across a chunk
	want = want[35:]
	check()
	add(100)
	check()
	r.ack(1 << 40) // beyond what was sent: everything
	want = want[:0]
	check()
	if r.chunks != nil || r.first != 171 {
		t.Fatalf("empty buffer holds %d chunks, next id %d", len(r.chunks), r.first)
	}
	add(3)
	r.ack(171)
	want = want[1:]
	check()
}
