package message

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
)

// errNilSuite and errNilSigner report a missing cipher suite or signer
// instead of a nil pointer dereference.
var (
	errNilSuite  = errors.New("mls: nil cipher suite")
	errNilSigner = errors.New("mls: nil signer")
)

// needSuite returns an error when cs is nil.
func needSuite(cs *suite.Suite) error {
	if cs == nil {
		return errNilSuite
	}
	return nil
}

// needSigner returns an error when signer is nil.
func needSigner(signer *suite.Signer) error {
	if signer == nil {
		return errNilSigner
	}
	return nil
}

// addList appends items as a vector, each element written by f.
func addList[T any](b *cryptobyte.Builder, items []T, f func(*cryptobyte.Builder, T)) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, it := range items {
			f(b, it)
		}
	})
}

// readList reads a vector whose elements are decoded by f. Every element
// consumes at least one byte, so the number of elements, and what is
// allocated for them, is bounded by the input length.
func readList[T any](s *cryptobyte.String, out *[]T, f func(*cryptobyte.String, *T) bool) bool {
	var items []T
	ok := codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
		var it T
		if !f(s, &it) {
			return false
		}
		items = append(items, it)
		return true
	})
	if !ok {
		return false
	}
	*out = items
	return true
}

// addU16List appends a vector of 16-bit values.
func addU16List[T ~uint16](b *cryptobyte.Builder, items []T) {
	addList(b, items, func(b *cryptobyte.Builder, v T) { b.AddUint16(uint16(v)) })
}

// readU16List reads a vector of 16-bit values; any value is accepted. The
// vector's length fixes the element count, so the slice is allocated once.
func readU16List[T ~uint16](s *cryptobyte.String, out *[]T) bool {
	var body cryptobyte.String
	if !codec.ReadVector(s, &body) || len(body)%2 != 0 {
		return false
	}
	if len(body) == 0 {
		*out = nil
		return true
	}
	items := make([]T, len(body)/2)
	for i := range items {
		items[i] = T(uint16(body[2*i])<<8 | uint16(body[2*i+1]))
	}
	*out = items
	return true
}

// readBytes reads an opaque<V> into a named byte-slice type.
func readBytes[T ~[]byte](s *cryptobyte.String, out *T) bool {
	var b []byte
	if !codec.ReadOpaque(s, &b) {
		return false
	}
	*out = b
	return true
}

// encode marshals anything with an Encode method.
func encode(e interface{ Encode(*cryptobyte.Builder) }) ([]byte, error) {
	return codec.Marshal(e.Encode)
}
