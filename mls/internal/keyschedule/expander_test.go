package keyschedule

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// TestExpanderMatchesSuite checks the keyed-once shortcut against the
// suite's ExpandWithLabel over labels, contexts and lengths.
func TestExpanderMatchesSuite(t *testing.T) {
	for _, id := range suite.IDs() {
		s, _ := suite.Get(id)
		if !fastExpandOK(s) {
			t.Errorf("suite %d: shortcut disabled", id)
		}
		secret := make([]byte, s.HashSize())
		rand.Read(secret)
		x := newExpander(s, secret)
		for _, label := range []string{"", "key", "nonce", "secret", strings.Repeat("l", 70)} {
			for _, n := range []int{0, 4, 32, 63, 64, 100, maxFastContext} {
				context := make([]byte, n)
				rand.Read(context)
				for _, length := range []int{0, 1, 12, 16, 32} {
					want, err := s.ExpandWithLabel(secret, label, context, length)
					if err != nil {
						t.Fatal(err)
					}
					got, err := x.expand(label, context, length)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("suite %d label %q context %d length %d: %x, want %x", id, label, n, length, got, want)
					}
				}
			}
		}
		if _, err := x.expand("key", make([]byte, maxFastContext+1), 16); err == nil {
			t.Error("context beyond the bound accepted")
		}
	}
}

func BenchmarkRatchet(b *testing.B) {
	tree := testTree(b, 2, Options{})
	b.Run("Next", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k, err := tree.Next(0, Application)
			if err != nil {
				b.Fatal(err)
			}
			k.Erase()
		}
	})
	b.Run("KeyConsume", func(b *testing.B) {
		b.ReportAllocs()
		gen := uint32(0)
		for b.Loop() {
			k, err := tree.Key(1, Application, gen)
			if err != nil {
				b.Fatal(err)
			}
			k.Erase()
			if err := tree.Consume(1, Application, gen); err != nil {
				b.Fatal(err)
			}
			gen++
		}
	})
	b.Run("SenderDataKeyNonce", func(b *testing.B) {
		b.ReportAllocs()
		secret, sample := make([]byte, 32), make([]byte, 100)
		for b.Loop() {
			if _, _, err := SenderDataKeyNonce(tree.suite, secret, sample); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LeafIn10000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t := testTree(b, 10000, Options{})
			if _, err := t.Next(treemath.LeafIndex(9999), Application); err != nil {
				b.Fatal(err)
			}
		}
	})
}
