package framing

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

var benchSuites = []suite.ID{suite.X25519AES128GCMSHA256Ed25519, suite.X25519ChaCha20Poly1305SHA256Ed25519}

// benchCases runs f for each suite and group size; the sender is the last
// member, so the larger group pays for deriving a deep leaf once.
func benchCases(b *testing.B, f func(b *testing.B, g *group, from treemath.LeafIndex)) {
	for _, id := range benchSuites {
		for _, members := range []int{2, 1000} {
			b.Run(fmt.Sprintf("suite=%d/members=%d/1KiB", id, members), func(b *testing.B) {
				g := newGroup(b, id, members)
				f(b, g, treemath.LeafIndex(members-1))
			})
		}
	}
}

// BenchmarkProtectPrivate measures what a sender pays for one 1 KiB
// application message: signing, ratchet key, encryption, sender data and
// the MLSMessage encoding.
func BenchmarkProtectPrivate(b *testing.B) {
	benchCases(b, func(b *testing.B, g *group, from treemath.LeafIndex) {
		e := g.member(b, Keys{})
		data := make([]byte, 1024)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		defer cpuTimer(b)()
		for b.Loop() {
			ac, err := e.Sign(g.signers[from], message.WireFormatPrivateMessage, g.application(from, data))
			if err != nil {
				b.Fatal(err)
			}
			pm, err := e.ProtectPrivate(rand.Reader, ac)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := message.NewPrivateMessage(pm).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProtectPrivateOnly measures ProtectPrivate alone, without the
// signature: the framing's own share of the sender's cost.
func BenchmarkProtectPrivateOnly(b *testing.B) {
	benchCases(b, func(b *testing.B, g *group, from treemath.LeafIndex) {
		e := g.member(b, Keys{})
		ac, err := e.Sign(g.signers[from], message.WireFormatPrivateMessage, g.application(from, make([]byte, 1024)))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(1024)
		b.ReportAllocs()
		defer cpuTimer(b)()
		for b.Loop() {
			if _, err := e.ProtectPrivate(rand.Reader, ac); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUnprotectPrivate measures what a receiver pays for one 1 KiB
// application message: MLSMessage decoding, sender data, ratchet key,
// decryption, signature verification and consuming the key.
func BenchmarkUnprotectPrivate(b *testing.B) {
	benchCases(b, func(b *testing.B, g *group, from treemath.LeafIndex) {
		sender, receiver := g.member(b, Keys{}), g.member(b, Keys{})
		data := make([]byte, 1024)
		// The ratchet moves on with every message, so each iteration needs
		// its own; make them before the timer starts.
		msgs := make([][]byte, b.N)
		for i := range msgs {
			ac, err := sender.Sign(g.signers[from], message.WireFormatPrivateMessage, g.application(from, data))
			if err != nil {
				b.Fatal(err)
			}
			pm, err := sender.ProtectPrivate(rand.Reader, ac)
			if err != nil {
				b.Fatal(err)
			}
			if msgs[i], err = message.NewPrivateMessage(pm).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		b.ResetTimer()
		defer cpuTimer(b)()
		for i := range b.N {
			m, err := message.DecodeMLSMessage(msgs[i])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := receiver.UnprotectPrivate(m.PrivateMessage, g.sigKey); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEd25519Baseline measures the floor the framing benchmarks are
// compared with: one Ed25519 signature and one verification over a message
// of the same size.
func BenchmarkEd25519Baseline(b *testing.B) {
	s, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	signer, err := s.NewSigner(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 1200)
	sig, _ := signer.Sign(msg)
	b.Run("sign", func(b *testing.B) {
		defer cpuTimer(b)()
		for b.Loop() {
			if _, err := signer.Sign(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		defer cpuTimer(b)()
		for b.Loop() {
			if err := s.Verify(signer.Public(), msg, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
