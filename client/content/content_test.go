package content

import (
	"bytes"
	"errors"
	"testing"
)

func sample() *Content {
	return &Content{Kind: KindReply, ID: ID{1, 2}, Target: ID{3}, SentAtMilli: 1234, ExpireAfter: 60,
		Body: []byte("hello"), Name: "team", Admins: []string{"abc", "def"}}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []*Content{sample(), {Kind: KindText, ID: ID{9}}, {Kind: KindTyping, ID: ID{8}, Body: []byte("1")}} {
		b, err := Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != c.Kind || got.ID != c.ID || got.Target != c.Target || !bytes.Equal(got.Body, c.Body) ||
			got.Name != c.Name || len(got.Admins) != len(c.Admins) || got.SentAtMilli != c.SentAtMilli || got.ExpireAfter != c.ExpireAfter {
			t.Fatalf("round trip: got %+v want %+v", got, c)
		}
	}
}

// Typing notices, receipts and short messages share one size class.
func TestPaddingHidesKind(t *testing.T) {
	typing, _ := Marshal(&Content{Kind: KindTyping, ID: ID{1}, Body: []byte("1")})
	receipt, _ := Marshal(&Content{Kind: KindReceipt, ID: ID{1}, Target: ID{2}})
	text, _ := Marshal(&Content{Kind: KindText, ID: ID{1}, Body: []byte("see you at eight tonight")})
	if len(typing) != len(receipt) || len(typing) != len(text) || len(text) != 256 {
		t.Fatalf("sizes differ: %d %d %d", len(typing), len(receipt), len(text))
	}
	long, _ := Marshal(&Content{Kind: KindText, ID: ID{1}, Body: make([]byte, 300)})
	if len(long) != 512 {
		t.Fatalf("300-byte body padded to %d, want 512", len(long))
	}
}

func TestRejects(t *testing.T) {
	good, _ := Marshal(sample())
	cases := map[string][]byte{
		"empty":       nil,
		"version":     append([]byte{2}, good[1:]...),
		"kind":        append([]byte{1, 99}, good[2:]...),
		"trailing":    append(append([]byte{}, good...), 0),
		"truncated":   good[:len(good)-1],
		"nonzero pad": append(append([]byte{}, good[:len(good)-1]...), 1),
		"no target":   func() []byte { b, _ := Marshal(&Content{Kind: KindText}); b[1] = byte(KindEdit); return b }(),
	}
	for name, b := range cases {
		if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Marshal(&Content{Kind: KindEdit}); err == nil {
		t.Error("edit without target encoded")
	}
}

// A delivery receipt carries 1 to MaxDeliveredIDs whole ids; a burst of
// one chat fits one receipt, and a one-id receipt looks like a short
// message on the wire.
func TestDelivered(t *testing.T) {
	ids := []ID{{1}, {2}, {3}}
	b, err := Marshal(&Content{Kind: KindDelivered, ID: ID{9}, Body: Delivered(ids)})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 256 {
		t.Fatalf("3-id receipt padded to %d, want 256", len(b))
	}
	c, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got := DeliveredIDs(c)
	if len(got) != 3 || got[0] != ids[0] || got[2] != ids[2] {
		t.Fatalf("ids %v", got)
	}
	full := make([]ID, MaxDeliveredIDs)
	if _, err := Marshal(&Content{Kind: KindDelivered, Body: Delivered(full)}); err != nil {
		t.Fatalf("full receipt: %v", err)
	}
	for name, body := range map[string][]byte{
		"empty":    nil,
		"partial":  make([]byte, IDSize+1),
		"too many": Delivered(append(full, ID{})),
	} {
		if _, err := Marshal(&Content{Kind: KindDelivered, Body: body}); err == nil {
			t.Errorf("%s: encoded", name)
		}
		// The same body smuggled in as a text decodes as nothing else.
		raw, err := Marshal(&Content{Kind: KindText, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		raw[1] = byte(KindDelivered)
		if _, err := Unmarshal(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decoded: %v", name, err)
		}
	}
	if DeliveredIDs(&Content{Kind: KindText, Body: make([]byte, IDSize)}) != nil {
		t.Error("ids of a text")
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal(sample())
	f.Add(good)
	f.Add([]byte{1, 1})
	if d, err := Marshal(&Content{Kind: KindDelivered, ID: ID{1}, Body: Delivered([]ID{{2}, {3}})}); err == nil {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, err := Marshal(c)
		if err != nil {
			t.Fatalf("decoded content does not encode: %v", err)
		}
		c2, err := Unmarshal(again)
		if err != nil || c2.ID != c.ID || !bytes.Equal(c2.Body, c.Body) {
			t.Fatalf("re-decode differs: %v", err)
		}
	})
}

// A reaction is short: the encoder refuses a long one and the decoder
// rejects one built by hand (another client), as it does invalid UTF-8.
func TestReactionLimit(t *testing.T) {
	ok := &Content{Kind: KindReaction, ID: ID{1}, Target: ID{2}, Body: bytes.Repeat([]byte("a"), MaxReaction)}
	b, err := Marshal(ok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(b); err != nil {
		t.Fatalf("a %d-byte reaction: %v", MaxReaction, err)
	}
	for name, body := range map[string][]byte{"long": bytes.Repeat([]byte("a"), MaxReaction+1), "utf8": {0xff, 0xfe}} {
		long := &Content{Kind: KindReaction, ID: ID{1}, Target: ID{2}, Body: body}
		if _, err := Marshal(long); !errors.Is(err, ErrReactionTooLong) {
			t.Fatalf("%s: Marshal = %v, want ErrReactionTooLong", name, err)
		}
		long.Kind = KindText
		raw, err := Marshal(long)
		if err != nil {
			t.Fatal(err)
		}
		raw[1] = byte(KindReaction)
		if _, err := Unmarshal(raw); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: Unmarshal = %v, want ErrMalformed", name, err)
		}
	}
}
