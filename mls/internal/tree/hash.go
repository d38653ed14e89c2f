package tree

import (
	"fmt"
	"runtime"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// TreeHash returns the tree hash of the root (RFC 9420, Section 7.8).
func (t *Tree) TreeHash() []byte { return slices.Clone(t.nodeHash(t.Root())) }

// NodeHash returns the tree hash of the subtree under x, or nil when x is
// outside the tree.
func (t *Tree) NodeHash(x treemath.NodeIndex) []byte {
	if uint32(x) >= t.Width() {
		return nil
	}
	return slices.Clone(t.nodeHash(x))
}

// nodeHash returns the cached tree hash of x, computing what is stale. The
// result aliases the cache: read it before the tree changes.
func (t *Tree) nodeHash(x treemath.NodeIndex) []byte {
	off := int(x) * t.h
	out := t.hashes[off : off+t.h : off+t.h]
	if t.valid[x] {
		return out
	}
	var sum []byte
	if x.IsLeaf() {
		// Leaves are checked to be encodable when they enter the tree
		// (decoded ones always are), so this cannot fail.
		sum, _ = leafHash(t.cs, x.Leaf(), t.leaves[x>>1])
	} else {
		left := t.nodeHash(x.Left())
		right := t.nodeHash(x.Right())
		sum = parentNodeHash(t.cs, t.parents[x>>1], left, right)
	}
	copy(out, sum)
	t.valid[x] = true
	return out
}

// leafHash hashes a TreeHashInput for leaf l (nil for a blank leaf). It
// fails only for a leaf node that cannot be encoded.
func leafHash(cs *suite.Suite, l treemath.LeafIndex, leaf *message.LeafNode) ([]byte, error) {
	var buf [512]byte
	in, err := leafHashInput(buf[:0], l, leaf)
	if err != nil {
		return nil, err
	}
	return cs.Hash(in), nil
}

// leafHashInput appends the TreeHashInput of leaf l (nil for a blank leaf)
// to buf.
func leafHashInput(buf []byte, l treemath.LeafIndex, leaf *message.LeafNode) ([]byte, error) {
	b := cryptobyte.NewBuilder(buf)
	b.AddUint8(uint8(message.NodeTypeLeaf))
	b.AddUint32(uint32(l))
	codec.AddOptional(b, leaf != nil, leaf.Encode)
	in, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLeaf, err)
	}
	return in, nil
}

// leafHashInputPrefix is the length of what precedes the LeafNode in the
// TreeHashInput of a non-blank leaf: node type, leaf index, presence.
const leafHashInputPrefix = 1 + 4 + 1

// tbsFromHashInput returns the LeafNodeTBS of leaf l from its
// TreeHashInput in: the LeafNode encoding minus its signature, followed by
// the group id and leaf index for the update and commit sources (RFC 9420,
// Section 7.2). It saves encoding the leaf a second time. It returns nil
// when in is not the encoding of leaf, and the caller encodes afresh.
func tbsFromHashInput(in []byte, leaf *message.LeafNode, groupID message.GroupID, l treemath.LeafIndex) []byte {
	sig := len(leaf.Signature)
	var sigField int
	switch {
	case sig < 1<<6:
		sigField = 1 + sig
	case sig < 1<<14:
		sigField = 2 + sig
	default:
		sigField = 4 + sig
	}
	if len(in) < leafHashInputPrefix+sigField {
		return nil
	}
	content := in[leafHashInputPrefix : len(in)-sigField]
	if leaf.Source != message.SourceUpdate && leaf.Source != message.SourceCommit {
		return content
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, len(content)+len(groupID)+8))
	b.AddBytes(content)
	codec.AddOpaque(b, groupID)
	b.AddUint32(uint32(l))
	tbs, err := b.Bytes()
	if err != nil {
		return nil
	}
	return tbs
}

// parentNodeHash hashes a TreeHashInput for a parent node.
func parentNodeHash(cs *suite.Suite, p *message.ParentNode, left, right []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint8(uint8(message.NodeTypeParent))
	codec.AddOptional(&b, p != nil, p.Encode)
	codec.AddOpaque(&b, left)
	codec.AddOpaque(&b, right)
	in, _ := b.Bytes()
	return cs.Hash(in)
}

// parentHashOf hashes a ParentHashInput (RFC 9420, Section 7.9).
func parentHashOf(cs *suite.Suite, encryptionKey, parentHash, siblingHash []byte) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, encryptionKey)
	codec.AddOpaque(&b, parentHash)
	codec.AddOpaque(&b, siblingHash)
	in, _ := b.Bytes()
	return cs.Hash(in)
}

// parentHash returns the parent hash of the non-blank parent p with copath
// child s.
func (t *Tree) parentHash(p, s treemath.NodeIndex) []byte {
	node := t.parents[p>>1]
	return parentHashOf(t.cs, node.EncryptionKey, node.ParentHash, t.originalTreeHash(s, node.UnmergedLeaves))
}

// originalTreeHash returns the tree hash of x in the tree where the leaves
// in excluded (sorted) are blank and absent from every unmerged_leaves list:
// the original_sibling_tree_hash of a parent whose unmerged leaves are
// excluded. Subtrees that hold none of them come from the cache.
func (t *Tree) originalTreeHash(x treemath.NodeIndex, excluded []treemath.LeafIndex) []byte {
	lo, hi := leafRange(x)
	a, _ := slices.BinarySearch(excluded, lo)
	b, _ := slices.BinarySearch(excluded, hi)
	excluded = excluded[a:b]
	if len(excluded) == 0 {
		return t.nodeHash(x)
	}
	if x.IsLeaf() {
		sum, _ := leafHash(t.cs, x.Leaf(), nil)
		return sum
	}
	left := t.originalTreeHash(x.Left(), excluded)
	right := t.originalTreeHash(x.Right(), excluded)
	p := t.parents[x>>1]
	if p != nil {
		kept := make([]treemath.LeafIndex, 0, len(p.UnmergedLeaves))
		for _, l := range p.UnmergedLeaves {
			if _, found := slices.BinarySearch(excluded, l); !found {
				kept = append(kept, l)
			}
		}
		if len(kept) != len(p.UnmergedLeaves) {
			np := *p
			np.UnmergedLeaves = kept
			p = &np
		}
	}
	return parentNodeHash(t.cs, p, left, right)
}

// pathParentHashes computes the parent_hash fields for new nodes with
// public keys pubs placed on the filtered direct path path (with copath
// children copath), from the root down: fields[i] is the parent_hash of
// path[i], and leafHash is the one for the leaf below. New nodes have no
// unmerged leaves, so each original sibling tree hash is the current tree
// hash of the copath child, which the path does not change.
func (t *Tree) pathParentHashes(copath []treemath.NodeIndex, pubs []message.HPKEPublicKey) (fields [][]byte, leaf []byte) {
	fields = make([][]byte, len(pubs))
	var above []byte
	for i := len(pubs) - 1; i >= 0; i-- {
		fields[i] = above
		above = parentHashOf(t.cs, pubs[i], above, t.nodeHash(copath[i]))
	}
	return fields, above
}

// WarmCache computes every stale hash of the tree on all cores, so that
// later operations find the cache full (a tree decoded from storage starts
// cold, and the first commit after would rehash it all). It returns the
// root tree hash, as TreeHash does.
func (t *Tree) WarmCache() []byte {
	n := len(t.leaves)
	// The subtrees under one level share no cache entry, so each is
	// hashed by one worker; there are enough of them to keep every core
	// busy. The tree has a power of two leaves, so the level is full.
	k := 0
	for n>>(k+1) >= 4*runtime.GOMAXPROCS(0) {
		k++
	}
	_ = parallel(n>>k, func(i int) error {
		t.nodeHash(treemath.NodeIndex(i<<(k+1) + 1<<k - 1))
		return nil
	})
	return t.TreeHash()
}
