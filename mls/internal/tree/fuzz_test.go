package tree

import (
	"bytes"
	"testing"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// FuzzDecode feeds arbitrary bytes to the ratchet tree decoder and, when
// they decode, runs everything a joiner runs on an untrusted tree.
func FuzzDecode(f *testing.F) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	for _, n := range []int{1, 2, 3, 5} {
		b := buildTree(f, cs, n)
		data, err := b.tree.Bytes()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Decode(cs, data)
		if err != nil {
			return
		}
		enc, err := tr.Bytes()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, data)
		}
		for x := range tr.Width() {
			_ = tr.Resolution(treemath.NodeIndex(x))
		}
		for l := range tr.LeafCount() {
			_, _ = tr.FilteredDirectPath(treemath.LeafIndex(l))
		}
		_ = tr.Validate(ValidateOptions{GroupID: testGroup})
		checkCache(t, tr)
	})
}

// FuzzMergeUpdatePath feeds arbitrary UpdatePaths from member 1 to a fixed
// tree and to member 2's decryption.
func FuzzMergeUpdatePath(f *testing.F) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	b := buildTree(f, cs, 4)
	gen := b.tree.Clone()
	template := *gen.Leaf(1)
	res, err := gen.GenerateUpdatePath(1, PathParams{Rand: bytes.NewReader(make([]byte, 64)), Signer: b.signers[1], GroupID: testGroup, Leaf: &template, GroupContext: testCtx(cs)})
	if err != nil {
		f.Fatal(err)
	}
	seed, err := codec.Marshal(res.Path.Encode)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	ctx, _ := testCtx(cs)(gen.TreeHash())
	f.Fuzz(func(t *testing.T, data []byte) {
		var p message.UpdatePath
		if codec.Unmarshal(data, "update path", p.Decode) != nil {
			return
		}
		tr := b.tree.Clone()
		before := tr.TreeHash()
		if err := tr.MergeUpdatePath(1, &p, nil); err != nil {
			if !bytes.Equal(tr.TreeHash(), before) {
				t.Fatal("rejected path changed the tree")
			}
			return
		}
		keys := b.keys[2].Clone()
		_, _ = tr.DecryptPath(keys, 1, &p, nil, ctx)
		checkCache(t, tr)
	})
}

// FuzzUnmarshalPrivateKeys checks the stored key set decoder.
func FuzzUnmarshalPrivateKeys(f *testing.F) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	b := buildTree(f, cs, 3)
	data, _ := b.keys[1].MarshalBinary()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := UnmarshalPrivateKeys(data)
		if err != nil {
			return
		}
		again, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
	})
}
