package tree

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// TestTBSFromHashInput checks that the LeafNodeTBS cut out of a leaf's
// TreeHashInput equals the one encoded afresh, for every source and for
// signatures whose length prefix takes one, two or four bytes.
func TestTBSFromHashInput(t *testing.T) {
	groupID := message.GroupID("group")
	for _, src := range []message.LeafNodeSource{message.SourceKeyPackage, message.SourceUpdate, message.SourceCommit} {
		for _, sigLen := range []int{0, 63, 64, 72, 16383, 16384} {
			leaf := &message.LeafNode{
				EncryptionKey: bytes.Repeat([]byte{1}, 32),
				SignatureKey:  bytes.Repeat([]byte{2}, 32),
				Credential:    message.NewBasicCredential([]byte("alice")),
				Capabilities:  message.Capabilities{Versions: []message.ProtocolVersion{message.MLS10}, Credentials: []message.CredentialType{message.CredentialBasic}},
				Source:        src,
				Lifetime:      message.Lifetime{NotBefore: 1, NotAfter: 2},
				Signature:     bytes.Repeat([]byte{3}, sigLen),
			}
			if src == message.SourceCommit {
				leaf.ParentHash = bytes.Repeat([]byte{4}, 32)
			}
			l := treemath.LeafIndex(7)
			in, err := leafHashInput(nil, l, leaf)
			if err != nil {
				t.Fatal(err)
			}
			want, err := leaf.ToBeSigned(groupID, l)
			if err != nil {
				t.Fatal(err)
			}
			if got := tbsFromHashInput(in, leaf, groupID, l); !bytes.Equal(got, want) {
				t.Fatalf("source %d, signature of %d bytes: TBS differs", src, sigLen)
			}
		}
	}
	// An input too short for the signature is refused, not sliced.
	leaf := &message.LeafNode{Signature: make([]byte, 100)}
	if tbsFromHashInput(make([]byte, 10), leaf, groupID, 0) != nil {
		t.Fatal("short input accepted")
	}
}

// TestWarmCache checks that a decoded tree's warmed cache holds the same
// hashes as a full recomputation.
func TestWarmCache(t *testing.T) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	rng := rand.New(rand.NewPCG(3, 4))
	tr, err := New(cs, fakeLeaf(rng))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 37 {
		l, err := tr.AddLeaf(fakeLeaf(rng))
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			if err := tr.RemoveLeaf(l - 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	data, err := tr.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cold, err := Decode(tr.cs, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cold.WarmCache(), tr.TreeHash()) {
		t.Fatal("warm root hash differs")
	}
	for x := range cold.Width() {
		if !cold.valid[x] {
			t.Fatalf("node %d not cached", x)
		}
	}
	checkCache(t, cold)
}

// TestBytesMatchesGenericEncoder checks the tree's own encoder against the
// message package's, for trees whose encoding needs 2- and 4-byte
// length prefixes.
func TestBytesMatchesGenericEncoder(t *testing.T) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	rng := rand.New(rand.NewPCG(5, 6))
	tr, err := New(cs, fakeLeaf(rng))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 100, 300} {
		for tr.MemberCount() < n {
			if _, err := tr.AddLeaf(fakeLeaf(rng)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := tr.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		want, err := tr.RatchetTree().Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d members: encodings differ", n)
		}
	}
	// A tree with a blank trailing leaf encodes without it.
	if err := tr.RemoveLeaf(treemath.LeafIndex(tr.MemberCount() - 1)); err != nil {
		t.Fatal(err)
	}
	got, _ := tr.Bytes()
	want, _ := tr.RatchetTree().Bytes()
	if !bytes.Equal(got, want) {
		t.Fatal("encodings differ after a removal")
	}
}
