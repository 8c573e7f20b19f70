package hub

import "sync/atomic"

// frameCache keeps the frames of the entries catch-ups replayed last, by
// position and protocol, so that connections catching up over the same
// entries (many clients resuming after a restart) encode each entry once
// per protocol, as a live send does, instead of once per connection. An
// entry at a position never changes, so a frame found is the frame.
type frameCache struct {
	slots [2][frameCacheSize]atomic.Pointer[cachedFrame] // by protocol: JSON, MessagePack
}

// frameCacheSize is how many positions the cache holds per protocol: about
// 1 MB of frames of lead-update size.
const frameCacheSize = 4096

type cachedFrame struct {
	pos   uint64
	frame []byte
}

func (fc *frameCache) slot(binary bool, pos uint64) *atomic.Pointer[cachedFrame] {
	p := 0
	if binary {
		p = 1
	}
	return &fc.slots[p][pos%frameCacheSize]
}

// get returns the frame of the entry at pos, or nil.
func (fc *frameCache) get(binary bool, pos uint64) []byte {
	if f := fc.slot(binary, pos).Load(); f != nil && f.pos == pos {
		return f.frame
	}
	return nil
}

// put keeps the frame of the entry at pos, in place of an older one.
func (fc *frameCache) put(binary bool, pos uint64, frame []byte) {
	fc.slot(binary, pos).Store(&cachedFrame{pos: pos, frame: frame})
}
