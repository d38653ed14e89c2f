package server

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestVarintMinimal(t *testing.T) {
	for _, n := range []int{0, 63, 64, 16383, 16384, 1 << 29} {
		var b cryptobyte.Builder
		addVarint(&b, n)
		s := cryptobyte.String(b.BytesOrPanic())
		got, ok := readVarint(&s)
		if !ok || got != n || !s.Empty() {
			t.Fatalf("varint %d: got %d ok=%v", n, got, ok)
		}
	}
	for _, bad := range [][]byte{{0x40, 0x01}, {0x80, 0x00, 0x00, 0x01}, {0xc0}, {0x40}} {
		s := cryptobyte.String(bad)
		if _, ok := readVarint(&s); ok {
			t.Fatalf("non-minimal or invalid varint %x accepted", bad)
		}
	}
}

func TestExternalSenderRoundTrip(t *testing.T) {
	e := &externalSender{signatureKey: bytes.Repeat([]byte{7}, 32), identity: []byte("eve")}
	enc := marshalExternalSender(e)
	got, err := parseExternalSender(enc)
	if err != nil || !bytes.Equal(got.signatureKey, e.signatureKey) || !bytes.Equal(got.identity, e.identity) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if _, err := parseExternalSender(append(enc, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	list, err := parseExternalSenders(marshalExternalSenders([]externalSender{*e, *e}))
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %d senders", err, len(list))
	}
	if l, err := parseExternalSenders([]byte{0}); err != nil || len(l) != 0 {
		t.Fatalf("empty list: %v %v", l, err)
	}
}

func FuzzWire(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add(marshalExternalSender(&externalSender{signatureKey: []byte{1, 2}, identity: []byte("x")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, err := parseExternalSender(data); err == nil {
			if !bytes.Equal(marshalExternalSender(e), data) {
				t.Fatal("external sender does not re-encode to its input")
			}
		}
		parseExternalSenders(data)
	})
}
