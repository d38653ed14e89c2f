package codec

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 16383, 16384, 1<<30 - 1} {
		data, err := Marshal(func(b *cryptobyte.Builder) { AddVarint(b, v) })
		if err != nil {
			t.Fatal(err)
		}
		var got uint64
		if err := Unmarshal(data, "varint", func(s *cryptobyte.String) bool { return ReadVarint(s, &got) }); err != nil || got != v {
			t.Fatalf("%d: got %d, %v", v, got, err)
		}
	}
	if _, err := Marshal(func(b *cryptobyte.Builder) { AddVarint(b, 1<<30) }); err == nil {
		t.Fatal("2^30 encoded without error")
	}
}

func TestVarintRejectsNonMinimal(t *testing.T) {
	for _, in := range [][]byte{{0x40, 0x25}, {0x80, 0x00, 0x00, 0x25}, {0x80, 0x00, 0x3f, 0xff}, {0xc0, 0, 0, 0, 0, 0, 0, 1}} {
		var v uint64
		if err := Unmarshal(in, "varint", func(s *cryptobyte.String) bool { return ReadVarint(s, &v) }); !errors.Is(err, ErrDecode) {
			t.Errorf("%x: accepted as %d", in, v)
		}
	}
}

func TestVectorAndTrailing(t *testing.T) {
	data, err := Marshal(func(b *cryptobyte.Builder) {
		AddVector(b, func(b *cryptobyte.Builder) {
			AddOpaque(b, []byte("ab"))
			AddOpaque(b, []byte("cde"))
		})
		AddOptional(b, true, func(b *cryptobyte.Builder) { b.AddUint16(7) })
	})
	if err != nil {
		t.Fatal(err)
	}
	var items [][]byte
	var present bool
	var x uint16
	read := func(s *cryptobyte.String) bool {
		items = nil
		return ReadVectorFunc(s, func(s *cryptobyte.String) bool {
			var it []byte
			if !ReadOpaque(s, &it) {
				return false
			}
			items = append(items, it)
			return true
		}) && ReadOptional(s, &present) && present && s.ReadUint16(&x)
	}
	if err := Unmarshal(data, "test", read); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || !bytes.Equal(items[1], []byte("cde")) || x != 7 {
		t.Fatalf("decoded %q %d", items, x)
	}
	if err := Unmarshal(append(data, 0), "test", read); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := Unmarshal(data[:len(data)-1], "test", read); !errors.Is(err, ErrDecode) {
		t.Fatalf("truncated: %v", err)
	}
}

func FuzzVector(f *testing.F) {
	f.Add([]byte{0x03, 0x01, 0x61, 0x00})
	f.Add([]byte{0x40, 0x02, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var items [][]byte
		err := Unmarshal(data, "fuzz", func(s *cryptobyte.String) bool {
			return ReadVectorFunc(s, func(s *cryptobyte.String) bool {
				var it []byte
				if !ReadOpaque(s, &it) {
					return false
				}
				items = append(items, it)
				return true
			})
		})
		if err != nil {
			return
		}
		again, err := Marshal(func(b *cryptobyte.Builder) {
			AddVector(b, func(b *cryptobyte.Builder) {
				for _, it := range items {
					AddOpaque(b, it)
				}
			})
		})
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("not canonical: %x -> %x (%v)", data, again, err)
		}
	})
}
