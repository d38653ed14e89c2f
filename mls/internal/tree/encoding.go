package tree

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// Decode decodes a tree in ratchet_tree extension form (optional<Node>
// ratchet_tree<V>, RFC 9420, Section 12.4.3.3). It checks the structure
// only; a tree received from a peer must then pass [Tree.Validate].
func Decode(cs *suite.Suite, data []byte) (*Tree, error) {
	rt, err := message.DecodeRatchetTree(data)
	if err != nil {
		return nil, fmt.Errorf("failed to decode ratchet tree: %w", err)
	}
	return FromRatchetTree(cs, rt)
}

// FromRatchetTree builds a tree from the nodes of a ratchet_tree extension,
// extending it with blank nodes to a full width. It checks the structure:
// at least one node, leaves at even and parents at odd positions, a
// non-blank last node, at most [MaxLeaves] leaves, and unmerged leaves that
// lie inside the tree. The nodes are shared with rt, which must not be
// modified afterwards.
func FromRatchetTree(cs *suite.Suite, rt message.RatchetTree) (*Tree, error) {
	k := len(rt)
	if k == 0 {
		return nil, fmt.Errorf("%w: no nodes", ErrMalformedTree)
	}
	if rt[k-1] == nil {
		return nil, fmt.Errorf("%w: last node is blank", ErrMalformedTree)
	}
	if k > 2*MaxLeaves-1 {
		return nil, fmt.Errorf("%w: %d nodes exceed the limit of %d leaves", ErrMalformedTree, k, MaxLeaves)
	}
	n := 1
	for 2*n-1 < k {
		n *= 2
	}
	t := &Tree{cs: cs, h: cs.HashSize()}
	t.resize(n)
	for i, node := range rt {
		if node == nil {
			continue
		}
		x := treemath.NodeIndex(i)
		switch {
		case node.Leaf != nil && node.Parent == nil && x.IsLeaf():
			t.leaves[x>>1] = node.Leaf
		case node.Parent != nil && node.Leaf == nil && !x.IsLeaf():
			p := node.Parent
			for j, l := range p.UnmergedLeaves {
				if int64(l) >= int64(n) || (j > 0 && l <= p.UnmergedLeaves[j-1]) {
					return nil, nodeErr(x, ErrMalformedTree, "unmerged leaves not increasing leaf indices inside the tree")
				}
			}
			t.parents[x>>1] = p
		default:
			return nil, nodeErr(x, ErrMalformedTree, "node of the wrong type for its position")
		}
	}
	return t, nil
}

// RatchetTree returns the tree in ratchet_tree extension form, without
// trailing blank nodes. The nodes are shared with the tree.
func (t *Tree) RatchetTree() message.RatchetTree {
	w := int(t.Width())
	for w > 0 && t.IsBlank(treemath.NodeIndex(w-1)) {
		w--
	}
	rt := make(message.RatchetTree, w)
	nodes := make([]message.Node, w)
	for i := range rt {
		x := treemath.NodeIndex(i)
		if x.IsLeaf() {
			nodes[i].Leaf = t.leaves[x>>1]
		} else {
			nodes[i].Parent = t.parents[x>>1]
		}
		if nodes[i].Leaf != nil || nodes[i].Parent != nil {
			rt[i] = &nodes[i]
		}
	}
	return rt
}

// Bytes returns the tree encoded in ratchet_tree extension form. It
// writes the nodes into one buffer sized for the tree, instead of the
// growing builders of the generic encoder, which copy a 10,000-member tree
// several times over.
func (t *Tree) Bytes() ([]byte, error) {
	rt := t.RatchetTree()
	body := cryptobyte.NewBuilder(make([]byte, 0, encodedSizeHint(rt)))
	for _, n := range rt {
		codec.AddOptional(body, n != nil, func(b *cryptobyte.Builder) { n.Encode(b) })
	}
	nodes, err := body.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode ratchet tree: %w", err)
	}
	out := cryptobyte.NewBuilder(make([]byte, 0, len(nodes)+8))
	codec.AddOpaque(out, nodes)
	data, err := out.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode ratchet tree: %w", err)
	}
	return data, nil
}

// encodedSizeHint estimates the encoded size of rt from its keys and
// credentials; the buffer grows if it is short.
func encodedSizeHint(rt message.RatchetTree) int {
	n := 0
	for _, node := range rt {
		n++
		switch {
		case node == nil:
		case node.Leaf != nil:
			l := node.Leaf
			n += 64 + len(l.EncryptionKey) + len(l.SignatureKey) + len(l.Credential.Identity) + len(l.ParentHash) + len(l.Signature)
		case node.Parent != nil:
			n += 16 + len(node.Parent.EncryptionKey) + len(node.Parent.ParentHash) + 4*len(node.Parent.UnmergedLeaves)
		}
	}
	return n
}
