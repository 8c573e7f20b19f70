package hub

import (
	"testing"
	"unicode/utf8"
)

// TestUTF8AcrossReads: text validation holds whatever the read boundaries.
func TestUTF8AcrossReads(t *testing.T) {
	for _, msg := range []string{"", "plain", "é", "a€b", "𝄞𝄞x", "\xff", "a\xe2\x82", "\xe2\x82\xe2\x82\xac", "\xed\xa0\x80", "\xf4\x90\x80\x80"} {
		want := utf8.ValidString(msg)
		for size := 1; size <= 4; size++ {
			var s wsStream
			ok := true
			b := []byte(msg)
			for ok {
				n := min(size, len(b))
				ok = s.valid(b[:n], n == len(b))
				b = b[n:]
				if len(b) == 0 {
					break
				}
			}
			if ok != want {
				t.Errorf("%q in reads of %d: valid %v, want %v", msg, size, ok, want)
			}
		}
	}
}
