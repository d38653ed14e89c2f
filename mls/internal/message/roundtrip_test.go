package message

import (
	"bytes"
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
func roundTrip(t *testing.T, in, out codecValue) []byte {
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
	if err := codec.Unmarshal(data, "value", out.Decode); err != nil {
		t.Fatalf("decode: %v", err)
	}
	again, err := codec.Marshal(out.Encode)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, data)
	}
	if err := codec.Unmarshal(append(bytes.Clone(data), 0), "value", out.Decode); err == nil {
		t.Fatal("trailing byte accepted")
	}
	// Every prefix must fail: the structure has no optional tail.
	step := 1
	if len(data) > 512 {
		step = len(data)/256 + 1
	}
	for n := 0; n < len(data); n += step {
		if err := codec.Unmarshal(data[:n], "value", out.Decode); err == nil {
			t.Fatalf("truncation to %d of %d bytes accepted", n, len(data))
		}
	}
}
