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
		sent := r.sent
		r.sent = 0
		got := r.takeUnsent(nil) // everything held
		r.sent = sent
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

// The writer takes each frame from the replay buffer once, in order, across
// chunks and acknowledgements; a re-attach takes everything held again.
func TestReplayTakeUnsent(t *testing.T) {
	r := replay{first: 1}
	next := 1
	add := func(n int) {
		for range n {
			r.add([]byte(fmt.Sprint(next)))
			next++
		}
	}
	take := func(want string) {
		t.Helper()
		got := fmt.Sprintf("%s", r.takeUnsent(nil))
		if got != want || r.sent != r.n || r.unsent() {
			t.Fatalf("took %s (sent %d of %d), want %s", got, r.sent, r.n, want)
		}
	}
	add(3)
	take("[1 2 3]")
	take("[]")
	add(40) // across a chunk
	want := []string{}
	for i := 4; i <= 43; i++ {
		want = append(want, fmt.Sprint(i))
	}
	take(fmt.Sprint(want))
	r.ack(20)
	if r.sent != 23 || r.n != 23 {
		t.Fatalf("after Ack 20: sent %d of %d, want 23 of 23", r.sent, r.n)
	}
	take("[]")
	add(2)
	take("[44 45]")
	add(2)
	r.ack(45)
	if r.sent != 0 || r.n != 2 {
		t.Fatalf("after Ack 45: sent %d of %d, want 0 of 2", r.sent, r.n)
	}
	take("[46 47]")
	r.ack(1 << 40) // beyond what was sent
	add(1)
	take("[48]")
	r.sent = 0 // a re-attach
	take("[48]")
}
