package protocol

import (
	"encoding/binary"
	"errors"
)

// maxMsgpackDepth bounds how deeply client MessagePack may nest.
const maxMsgpackDepth = 32

var errBadMsgpack = errors.New("invalid MessagePack")

// CheckMsgpack verifies that b holds exactly one well-formed MessagePack
// value whose every length fits in b. The decoder trusts declared lengths and
// allocates them up front, so a 9-byte message claiming a 4-billion-element
// array would exhaust memory; after this check no declared length can exceed
// the message.
func CheckMsgpack(b []byte) error {
	rest, err := skipMsgpack(b, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errBadMsgpack
	}
	return nil
}

// skipMsgpack returns what follows the first value of b.
func skipMsgpack(b []byte, depth int) ([]byte, error) {
	if len(b) == 0 || depth > maxMsgpackDepth {
		return nil, errBadMsgpack
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		return b, nil
	case c >= 0x80 && c <= 0x8f: // fixmap
		return skipN(b, 2*int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f: // fixarray
		return skipN(b, int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf: // fixstr
		return take(b, int(c&0x1f))
	}
	switch c {
	case 0xcc, 0xd0: // uint8, int8
		return take(b, 1)
	case 0xcd, 0xd1: // uint16, int16
		return take(b, 2)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return take(b, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return take(b, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 (+ type byte)
		return take(b, 1+1<<(c-0xd4))
	case 0xc4, 0xd9: // bin8, str8
		n, b, err := length(b, 1)
		if err != nil {
			return nil, err
		}
		return take(b, n)
	case 0xc5, 0xda: // bin16, str16
		n, b, err := length(b, 2)
		if err != nil {
			return nil, err
		}
		return take(b, n)
	case 0xc6, 0xdb: // bin32, str32
		n, b, err := length(b, 4)
		if err != nil {
			return nil, err
		}
		return take(b, n)
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32 (+ type byte)
		n, b, err := length(b, 1<<(c-0xc7))
		if err != nil {
			return nil, err
		}
		return take(b, n+1)
	case 0xdc, 0xdd: // array16, array32
		n, b, err := length(b, 2<<(c-0xdc))
		if err != nil {
			return nil, err
		}
		return skipN(b, n, depth)
	case 0xde, 0xdf: // map16, map32
		n, b, err := length(b, 2<<(c-0xde))
		if err != nil {
			return nil, err
		}
		return skipN(b, 2*n, depth)
	}
	return nil, errBadMsgpack // 0xc1 is never used
}

// skipN skips n values, each at least one byte.
func skipN(b []byte, n, depth int) ([]byte, error) {
	if n > len(b) {
		return nil, errBadMsgpack
	}
	var err error
	for range n {
		if b, err = skipMsgpack(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func take(b []byte, n int) ([]byte, error) {
	if n < 0 || n > len(b) {
		return nil, errBadMsgpack
	}
	return b[n:], nil
}

// length reads a big-endian length of size bytes.
func length(b []byte, size int) (int, []byte, error) {
	if len(b) < size {
		return 0, nil, errBadMsgpack
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(b[0])
	case 2:
		n = uint64(binary.BigEndian.Uint16(b))
	case 4:
		n = uint64(binary.BigEndian.Uint32(b))
	}
	if n > uint64(len(b)) {
		return 0, nil, errBadMsgpack
	}
	return int(n), b[size:], nil
}
