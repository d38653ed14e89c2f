package message

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// codecValue is a structure with this package's Encode/Decode pair.
type codecValue interface {
	Encode(*cryptobyte.Builder)
	Decode(*cryptobyte.String) bool
}

// roundTrip encodes in, decodes it into out, re-encodes and compares. It
// also checks that every strict prefix fails to decode fully and that a
// trailing byte is rejected.
func roundTrip(t *testing.T, in interface{ Encode(*cryptobyte.Builder) }, out codecValue) []byte {
	t.Helper()
	data, err := codec.Marshal(in.Encode)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	checkBytes(t, data, out)
	return data
}

// checkBytes decodes data into out, requires a byte-exact re-encoding, and
// checks truncation and trailing-byte rejection.
func checkBytes(t *testing.T, data []byte, out codecValue) {
	t.Helper()
	if err := checkEncoding(data, out); err != nil {
		t.Fatal(err)
	}
}

// checkEncoding is checkBytes returning the first failure.
func checkEncoding(data []byte, out codecValue) error {
	if err := codec.Unmarshal(data, "value", out.Decode); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	again, err := codec.Marshal(out.Encode)
	if err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("re-encoding differs:\n got %x\nwant %x", again, data)
	}
	if err := codec.Unmarshal(append(bytes.Clone(data), 0), "value", out.Decode); err == nil {
		return errors.New("trailing byte accepted")
	}
	// Every strict prefix must fail: no structure here has an optional tail.
	step := 1
	if len(data) > 512 {
		step = len(data)/256 + 1
	}
	for n := 0; n < len(data); n += step {
		if err := codec.Unmarshal(data[:n], "value", out.Decode); err == nil {
			return fmt.Errorf("truncation to %d of %d bytes accepted", n, len(data))
		}
	}
	// Leave out decoded from the full input for the caller.
	return codec.Unmarshal(data, "value", out.Decode)
}
