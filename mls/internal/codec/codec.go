// Package codec holds the TLS presentation-language helpers that every MLS
// structure is encoded with (RFC 9420, Section 2.1.2): variable-length
// integers, opaque vectors and optional values, on top of
// golang.org/x/crypto/cryptobyte.
//
// Decoding is strict: variable-length integers must use the minimum encoding,
// vector lengths are bounded by [MaxVectorLen], and [Unmarshal] rejects
// trailing bytes. A peer therefore cannot make a decoder allocate more than the
// message it sent.
package codec

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// MaxVectorLen bounds the length of any single vector, in bytes. RFC 9420
// allows up to 2^30-1; no Parley message comes close, and the bound keeps a
// hostile length prefix from driving allocation.
const MaxVectorLen = 1<<30 - 1

// maxVarint is the largest value a variable-length integer can carry.
const maxVarint = 1<<30 - 1

// ErrDecode is wrapped by every decoding failure.
var ErrDecode = errors.New("mls: malformed encoding")

// ErrTrailingData is returned when bytes remain after a top-level structure.
var ErrTrailingData = fmt.Errorf("%w: trailing data", ErrDecode)

// AddVarint appends v as an MLS variable-length integer. Values of 2^30 or
// more are an encoding error reported by the builder.
func AddVarint(b *cryptobyte.Builder, v uint64) {
	switch {
	case v < 1<<6:
		b.AddUint8(uint8(v))
	case v < 1<<14:
		b.AddUint16(uint16(v) | 0x4000)
	case v <= maxVarint:
		b.AddUint32(uint32(v) | 0x80000000)
	default:
		b.SetError(fmt.Errorf("mls: varint %d too large", v))
	}
}

// ReadVarint reads a minimally encoded variable-length integer.
func ReadVarint(s *cryptobyte.String, v *uint64) bool {
	if len(*s) == 0 {
		return false
	}
	prefix := (*s)[0] >> 6
	switch prefix {
	case 0:
		var x uint8
		if !s.ReadUint8(&x) {
			return false
		}
		*v = uint64(x)
	case 1:
		var x uint16
		if !s.ReadUint16(&x) {
			return false
		}
		*v = uint64(x & 0x3fff)
		if *v < 1<<6 {
			return false
		}
	case 2:
		var x uint32
		if !s.ReadUint32(&x) {
			return false
		}
		*v = uint64(x & 0x3fffffff)
		if *v < 1<<14 {
			return false
		}
	default:
		return false
	}
	return true
}

// AddOpaque appends data as an opaque<V> vector.
func AddOpaque(b *cryptobyte.Builder, data []byte) {
	AddVarint(b, uint64(len(data)))
	b.AddBytes(data)
}

// ReadOpaque reads an opaque<V> vector into out. The result is a copy, so it
// stays valid when the input buffer is reused.
func ReadOpaque(s *cryptobyte.String, out *[]byte) bool {
	var body cryptobyte.String
	if !ReadVector(s, &body) {
		return false
	}
	*out = append([]byte(nil), body...)
	return true
}

// AddVector appends a vector whose contents are written by f, prefixed with
// their length as a variable-length integer.
func AddVector(b *cryptobyte.Builder, f cryptobyte.BuilderContinuation) {
	var child cryptobyte.Builder
	f(&child)
	body, err := child.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	AddOpaque(b, body)
}

// ReadVector reads a vector's contents into out without copying.
func ReadVector(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint64
	if !ReadVarint(s, &n) || n > MaxVectorLen || n > uint64(len(*s)) {
		return false
	}
	return s.ReadBytes((*[]byte)(out), int(n))
}

// ReadVectorFunc reads a vector and calls f for each element until the
// vector's contents are exhausted. f must consume at least one byte per call.
func ReadVectorFunc(s *cryptobyte.String, f func(*cryptobyte.String) bool) bool {
	var body cryptobyte.String
	if !ReadVector(s, &body) {
		return false
	}
	for !body.Empty() {
		before := len(body)
		if !f(&body) || len(body) == before {
			return false
		}
	}
	return true
}

// AddOptional appends an optional<T>: a presence byte, then f's output if
// present.
func AddOptional(b *cryptobyte.Builder, present bool, f cryptobyte.BuilderContinuation) {
	if !present {
		b.AddUint8(0)
		return
	}
	b.AddUint8(1)
	f(b)
}

// ReadOptional reads an optional<T> presence byte; it rejects values other
// than 0 and 1.
func ReadOptional(s *cryptobyte.String, present *bool) bool {
	var x uint8
	if !s.ReadUint8(&x) || x > 1 {
		return false
	}
	*present = x == 1
	return true
}

// ReadBool reads a TLS boolean (a byte that is 0 or 1).
func ReadBool(s *cryptobyte.String, v *bool) bool { return ReadOptional(s, v) }

// AddBool appends a TLS boolean.
func AddBool(b *cryptobyte.Builder, v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// Marshal runs f on a fresh builder and returns the bytes or the first error.
func Marshal(f func(*cryptobyte.Builder)) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

// Unmarshal runs f over data and fails unless f succeeds and consumes every
// byte. what names the structure in the error.
func Unmarshal(data []byte, what string, f func(*cryptobyte.String) bool) error {
	s := cryptobyte.String(data)
	if !f(&s) {
		return fmt.Errorf("%w: invalid %s", ErrDecode, what)
	}
	if !s.Empty() {
		return fmt.Errorf("%w after %s", ErrTrailingData, what)
	}
	return nil
}
