package keyschedule

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

func testTree(t testing.TB, leaves treemath.LeafCount, opts Options) *SecretTree {
	t.Helper()
	s, err := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := NewSecretTree(s, bytes.Repeat([]byte{7}, s.HashSize()), leaves, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// TestSenderAndReceiverAgree checks that the keys a sender takes with Next
// are the keys a receiver finds with Key, in order and out of order.
func TestSenderAndReceiverAgree(t *testing.T) {
	sender := testTree(t, 5, Options{})
	receiver := sender.Clone()
	var sent []RatchetKey
	for range 10 {
		k, err := sender.Next(3, Application)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, k)
	}
	for _, i := range []int{4, 0, 9, 2, 1, 3, 8, 5, 7, 6} {
		k, err := receiver.Key(3, Application, uint32(i))
		if err != nil {
			t.Fatalf("generation %d: %v", i, err)
		}
		if !bytes.Equal(k.Key, sent[i].Key) || !bytes.Equal(k.Nonce, sent[i].Nonce) || k.Generation != uint32(i) {
			t.Fatalf("generation %d: receiver key differs from sender key", i)
		}
		if err := receiver.Consume(3, Application, uint32(i)); err != nil {
			t.Fatalf("consume %d: %v", i, err)
		}
		if err := receiver.Consume(3, Application, uint32(i)); !errors.Is(err, ErrGenerationConsumed) {
			t.Fatalf("second consume of %d: %v, want ErrGenerationConsumed", i, err)
		}
	}
	if r := receiver.ratchets[3][Application]; len(r.retained) != 0 || r.next != 10 {
		t.Errorf("after all generations: %d retained, next %d", len(r.retained), r.next)
	}
	// The handshake ratchet of the same leaf is untouched.
	if _, err := receiver.Key(3, Handshake, 0); err != nil {
		t.Errorf("handshake generation 0: %v", err)
	}
}

func TestWindowBounds(t *testing.T) {
	tree := testTree(t, 2, Options{MaxForward: 10, MaxRetained: 3})
	if _, err := tree.Key(1, Application, 11); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("Key 11 ahead: %v, want ErrGenerationTooFar", err)
	}
	if err := tree.Consume(1, Application, 11); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("Consume 11 ahead: %v, want ErrGenerationTooFar", err)
	}
	if len(tree.ratchets) != 0 {
		t.Fatal("a rejected Consume derived the leaf")
	}
	if err := tree.Consume(1, Application, 10); err != nil {
		t.Fatal(err)
	}
	r := &tree.ratchets[1][Application]
	if len(r.retained) != 3 || r.retained[0].gen != 7 || r.retained[2].gen != 9 {
		t.Fatalf("retained %+v, want generations 7..9", r.retained)
	}
	// Generation 6 was skipped beyond the window and is gone.
	if _, err := tree.Key(1, Application, 6); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("Key 6: %v, want ErrGenerationConsumed", err)
	}
	// Consuming 12 adds 11 and evicts the oldest (7), erasing it.
	evicted := r.retained[0].key
	if err := tree.Consume(1, Application, 12); err != nil {
		t.Fatal(err)
	}
	if !allZero(evicted) {
		t.Error("evicted key not erased")
	}
	r = &tree.ratchets[1][Application]
	var gens []uint32
	for _, k := range r.retained {
		gens = append(gens, k.gen)
	}
	if len(gens) != 3 || gens[0] != 8 || gens[1] != 9 || gens[2] != 11 {
		t.Fatalf("retained generations %v, want [8 9 11]", gens)
	}
	if _, err := tree.Key(1, Application, 7); !errors.Is(err, ErrGenerationConsumed) {
		t.Fatalf("Key 7: %v, want ErrGenerationConsumed", err)
	}
	if _, err := tree.Key(2, Application, 0); !errors.Is(err, ErrUnknownLeaf) {
		t.Fatalf("leaf 2 of 2: %v, want ErrUnknownLeaf", err)
	}
}

// TestKeyDoesNotChangeState checks that looking a key up, even far ahead or
// for a leaf never derived, leaves the tree as it was.
func TestKeyDoesNotChangeState(t *testing.T) {
	tree := testTree(t, 8, Options{})
	if err := tree.Consume(2, Application, 5); err != nil {
		t.Fatal(err)
	}
	before, err := tree.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		leaf treemath.LeafIndex
		typ  RatchetType
		gen  uint32
	}{{2, Application, 3}, {2, Application, 900}, {2, Handshake, 4}, {6, Application, 0}, {7, Handshake, 40}} {
		if _, err := tree.Key(q.leaf, q.typ, q.gen); err != nil {
			t.Fatalf("Key(%d, %s, %d): %v", q.leaf, q.typ, q.gen, err)
		}
	}
	after, err := tree.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Key changed the secret tree")
	}
}

// TestLazyDerivation checks that a large tree derives only the path of the
// leaf that is used, and that consumed secrets are erased.
func TestLazyDerivation(t *testing.T) {
	tree := testTree(t, 10000, Options{})
	root := tree.nodes[tree.leaves.Root()]
	if _, err := tree.Next(4321, Application); err != nil {
		t.Fatal(err)
	}
	if !allZero(root) {
		t.Error("root secret not erased after its children were derived")
	}
	// One leaf's path in a tree of depth 14 leaves one sibling per level.
	if len(tree.nodes) != 14 || len(tree.ratchets) != 1 {
		t.Errorf("%d node secrets and %d ratchets held, want 14 and 1", len(tree.nodes), len(tree.ratchets))
	}
	secret := tree.ratchets[4321][Application].secret
	if _, err := tree.Next(4321, Application); err != nil {
		t.Fatal(err)
	}
	if !allZero(secret) {
		t.Error("ratchet secret not erased after advancing")
	}
	if _, err := tree.Next(4320, Handshake); err != nil {
		t.Fatal(err)
	}
	if len(tree.nodes) != 13 || len(tree.ratchets) != 2 {
		t.Errorf("%d node secrets and %d ratchets held, want 13 and 2", len(tree.nodes), len(tree.ratchets))
	}
	held := tree.ratchets[4320][Handshake].secret
	tree.Erase()
	if !allZero(held) || len(tree.nodes) != 0 || len(tree.ratchets) != 0 {
		t.Error("Erase left secrets behind")
	}
}

func TestMarshalRoundTripAndRejects(t *testing.T) {
	tree := testTree(t, 6, Options{MaxForward: 50, MaxRetained: 4})
	for _, step := range []struct {
		leaf treemath.LeafIndex
		gen  uint32
	}{{0, 9}, {0, 6}, {5, 2}} {
		if err := tree.Consume(step.leaf, Application, step.gen); err != nil {
			t.Fatal(err)
		}
	}
	data, err := tree.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalSecretTree(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Fatal("round trip changed the encoding")
	}
	if back.Options() != (Options{MaxForward: 50, MaxRetained: 4}) {
		t.Errorf("options %+v not restored", back.Options())
	}
	want, _ := tree.Key(0, Application, 7)
	got, err := back.Key(0, Application, 7)
	if err != nil || !bytes.Equal(got.Key, want.Key) {
		t.Fatalf("restored tree lost retained key 7: %v", err)
	}

	// A state where a derived leaf's ancestor is still held would let the
	// leaf's ratchets be derived again from scratch: rejected.
	bad := tree.Clone()
	bad.nodes[tree.leaves.Root()] = bytes.Repeat([]byte{1}, 32)
	badData, err := bad.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalSecretTree(badData); !errors.Is(err, ErrInvalidState) {
		t.Errorf("ancestor and descendant both held: %v, want ErrInvalidState", err)
	}
	for i := range data {
		if _, err := UnmarshalSecretTree(data[:i]); err == nil {
			t.Fatalf("truncated state of %d bytes accepted", i)
		}
	}
	if _, err := UnmarshalSecretTree(append(data, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	wrongVersion := append([]byte{2}, data[1:]...)
	if _, err := UnmarshalSecretTree(wrongVersion); err == nil {
		t.Error("unknown version accepted")
	}
}

func TestEpochSecretsMarshalRejects(t *testing.T) {
	s, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	_, e, err := NewEpoch(s, make([]byte, 32), nil, nil, []byte("gc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.NewSecretTree(4, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(e.Encryption) != 0 {
		t.Fatal("encryption secret not moved into the tree")
	}
	if _, err := e.NewSecretTree(4, Options{}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("second secret tree: %v, want ErrInvalidState", err)
	}
	data, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalEpochSecrets(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.EpochAuthenticator, e.EpochAuthenticator) || back.Suite() != s {
		t.Fatal("round trip lost data")
	}
	for i := range data {
		if _, err := UnmarshalEpochSecrets(data[:i]); err == nil {
			t.Fatalf("truncated state of %d bytes accepted", i)
		}
	}
	e.Erase()
	if e.Exporter != nil || e.Init != nil {
		t.Error("Erase left secrets")
	}
	if _, err := e.Export("x", nil, 16); !errors.Is(err, ErrInvalidState) {
		t.Errorf("Export after Erase: %v", err)
	}
}

func TestExternalInit(t *testing.T) {
	for _, id := range suite.IDs() {
		s, _ := suite.Get(id)
		_, e, err := NewEpoch(s, make([]byte, 32), nil, nil, []byte("gc"))
		if err != nil {
			t.Fatal(err)
		}
		priv, pub, err := e.ExternalKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		kem, sent, err := ExternalInitSend(s, pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ExternalInitReceive(s, priv, kem)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sent, got) || len(got) != s.HashSize() {
			t.Errorf("suite %d: init secrets differ", id)
		}
		kem[0] ^= 1
		if other, err := ExternalInitReceive(s, priv, kem); err == nil && bytes.Equal(other, sent) {
			t.Errorf("suite %d: altered kem_output gave the same secret", id)
		}
	}
}

func TestWelcomeKeyNonce(t *testing.T) {
	s, _ := suite.Get(suite.X25519ChaCha20Poly1305SHA256Ed25519)
	joiner, _, err := NewEpoch(s, make([]byte, 32), nil, nil, []byte("gc"))
	if err != nil {
		t.Fatal(err)
	}
	key, nonce, err := WelcomeKeyNonce(s, joiner, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != s.KeySize() || len(nonce) != s.NonceSize() {
		t.Fatalf("key %d bytes, nonce %d bytes", len(key), len(nonce))
	}
	psk, err := CombinePSKs(s, []PSK{{ID: []byte{1, 1, 'a', 0}, Secret: []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	key2, _, err := WelcomeKeyNonce(s, joiner, psk)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(key, key2) {
		t.Error("psk_secret does not affect the welcome key")
	}
	if _, _, err := WelcomeKeyNonce(s, joiner[:5], nil); !errors.Is(err, ErrInvalidSecret) {
		t.Errorf("short joiner secret: %v", err)
	}
}

func FuzzUnmarshalSecretTree(f *testing.F) {
	tree := testTree(f, 6, Options{})
	_ = tree.Consume(1, Application, 4)
	_ = tree.Consume(4, Handshake, 0)
	seed, err := tree.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{1, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := UnmarshalSecretTree(data)
		if err != nil {
			return
		}
		// A state that decodes is usable without panicking.
		for l := range min(uint32(tree.leaves), 4) {
			if _, err := tree.Key(treemath.LeafIndex(l), Application, 1); err == nil {
				_ = tree.Consume(treemath.LeafIndex(l), Application, 1)
			}
			_, _ = tree.Next(treemath.LeafIndex(l), Handshake)
		}
		if _, err := tree.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzUnmarshalEpochSecrets(f *testing.F) {
	s, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	_, e, err := NewEpoch(s, make([]byte, 32), nil, nil, []byte("gc"))
	if err != nil {
		f.Fatal(err)
	}
	seed, err := e.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := UnmarshalEpochSecrets(data)
		if err != nil {
			return
		}
		if _, err := e.Export("label", nil, 32); err != nil {
			t.Fatal(err)
		}
	})
}

// TestZeroValues checks that zero values fail with errors, not panics.
func TestZeroValues(t *testing.T) {
	var e EpochSecrets
	if _, err := e.MarshalBinary(); !errors.Is(err, ErrInvalidState) {
		t.Errorf("EpochSecrets.MarshalBinary: %v", err)
	}
	if _, err := e.Export("x", nil, 1); !errors.Is(err, ErrInvalidState) {
		t.Errorf("EpochSecrets.Export: %v", err)
	}
	if _, _, err := e.ExternalKeyPair(); !errors.Is(err, ErrInvalidState) {
		t.Errorf("EpochSecrets.ExternalKeyPair: %v", err)
	}
	if _, err := e.NewSecretTree(2, Options{}); !errors.Is(err, ErrInvalidState) {
		t.Errorf("EpochSecrets.NewSecretTree: %v", err)
	}
	var tree SecretTree
	if _, err := tree.MarshalBinary(); !errors.Is(err, ErrInvalidState) {
		t.Errorf("SecretTree.MarshalBinary: %v", err)
	}
	if _, err := tree.Next(0, Application); !errors.Is(err, ErrUnknownLeaf) {
		t.Errorf("SecretTree.Next: %v", err)
	}
	if _, err := tree.Key(0, Application, 0); !errors.Is(err, ErrUnknownLeaf) {
		t.Errorf("SecretTree.Key: %v", err)
	}
	s, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	if _, err := NewSecretTree(s, make([]byte, 32), 0, Options{}); !errors.Is(err, ErrInvalidState) {
		t.Errorf("tree of no leaves: %v", err)
	}
	if _, err := NewSecretTree(s, make([]byte, 32), 4, Options{MaxForward: MaxWindow + 1}); !errors.Is(err, ErrInvalidState) {
		t.Errorf("window beyond MaxWindow: %v", err)
	}
	if _, err := CombinePSKs(s, make([]PSK, maxPSKs+1)); !errors.Is(err, ErrTooManyPSKs) {
		t.Errorf("too many PSKs: %v", err)
	}
}
