package client

import (
	"bytes"
	"testing"

	"github.com/parley-im/parley/client/store"
)

func TestWelcomeEnvelope(t *testing.T) {
	b := marshalWelcome(store.ChatGroup, []byte("ref"), []byte("welcome"))
	k, ref, w, err := unmarshalWelcome(b)
	if err != nil || k != store.ChatGroup || ref != "ref" || !bytes.Equal(w, []byte("welcome")) {
		t.Fatalf("round trip: %v %v %q %q", err, k, ref, w)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(append([]byte{}, b...), 0), append([]byte{2}, b[1:]...), append([]byte{1, 9}, b[2:]...)} {
		if _, _, _, err := unmarshalWelcome(bad); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
}

func FuzzUnmarshalWelcome(f *testing.F) {
	f.Add(marshalWelcome(store.ChatDirect, []byte("r"), []byte("w")))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, ref, w, err := unmarshalWelcome(b)
		if err != nil {
			return
		}
		if !bytes.Equal(marshalWelcome(k, []byte(ref), w), b) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzParseLinkCode(f *testing.F) {
	f.Add("aebqcaid")
	f.Fuzz(func(t *testing.T, code string) {
		r, err := ParseLinkCode(code)
		if err != nil {
			return
		}
		if _, err := ParseLinkCode(r.Code()); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		_ = r.Comparison()
	})
}
