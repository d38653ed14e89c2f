package message

import (
	"bytes"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// ParentNode is an interior node of the ratchet tree (RFC 9420, Section
// 7.1). UnmergedLeaves must be sorted in increasing order; the decoder
// enforces strict increase.
type ParentNode struct {
	EncryptionKey  HPKEPublicKey
	ParentHash     []byte
	UnmergedLeaves []treemath.LeafIndex
}

// Encode appends the parent node to b.
func (p *ParentNode) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, p.EncryptionKey)
	codec.AddOpaque(b, p.ParentHash)
	addList(b, p.UnmergedLeaves, func(b *cryptobyte.Builder, l treemath.LeafIndex) { b.AddUint32(uint32(l)) })
}

// Decode reads a parent node from s.
func (p *ParentNode) Decode(s *cryptobyte.String) bool {
	*p = ParentNode{}
	if !readBytes(s, &p.EncryptionKey) || !codec.ReadOpaque(s, &p.ParentHash) {
		return false
	}
	ok := readList(s, &p.UnmergedLeaves, func(s *cryptobyte.String, l *treemath.LeafIndex) bool {
		var x uint32
		if !s.ReadUint32(&x) {
			return false
		}
		*l = treemath.LeafIndex(x)
		return true
	})
	if !ok {
		return false
	}
	for i := 1; i < len(p.UnmergedLeaves); i++ {
		if p.UnmergedLeaves[i] <= p.UnmergedLeaves[i-1] {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of p.
func (p *ParentNode) Clone() *ParentNode {
	return &ParentNode{
		EncryptionKey:  bytes.Clone(p.EncryptionKey),
		ParentHash:     bytes.Clone(p.ParentHash),
		UnmergedLeaves: slices.Clone(p.UnmergedLeaves),
	}
}

// Node is one node of a ratchet tree: exactly one of Leaf and Parent is set.
type Node struct {
	Leaf   *LeafNode
	Parent *ParentNode
}

// Type returns the node's type.
func (n *Node) Type() NodeType {
	if n.Leaf != nil {
		return NodeTypeLeaf
	}
	return NodeTypeParent
}

// Encode appends the node to b.
func (n *Node) Encode(b *cryptobyte.Builder) {
	switch {
	case n.Leaf != nil && n.Parent == nil:
		b.AddUint8(uint8(NodeTypeLeaf))
		n.Leaf.Encode(b)
	case n.Parent != nil && n.Leaf == nil:
		b.AddUint8(uint8(NodeTypeParent))
		n.Parent.Encode(b)
	default:
		b.SetError(fmt.Errorf("%w: node must be exactly one of leaf and parent", ErrEncode))
	}
}

// Decode reads a node from s.
func (n *Node) Decode(s *cryptobyte.String) bool {
	*n = Node{}
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	switch NodeType(t) {
	case NodeTypeLeaf:
		n.Leaf = new(LeafNode)
		return n.Leaf.Decode(s)
	case NodeTypeParent:
		n.Parent = new(ParentNode)
		return n.Parent.Decode(s)
	default:
		return false
	}
}

// RatchetTree is the ratchet_tree extension's payload, optional<Node>
// ratchet_tree<V>, in array order; a nil entry is a blank node.
type RatchetTree []*Node

// Encode appends the tree to b.
func (t RatchetTree) Encode(b *cryptobyte.Builder) {
	addList(b, t, func(b *cryptobyte.Builder, n *Node) {
		codec.AddOptional(b, n != nil, func(b *cryptobyte.Builder) { n.Encode(b) })
	})
}

// Decode reads a tree from s. It checks the structure that the RFC fixes
// for this encoding (Section 12.4.3.3): leaves at even positions, parents
// at odd ones, and a non-blank last node. The tree is not extended to a full
// width; that is the tree package's job.
func (t *RatchetTree) Decode(s *cryptobyte.String) bool {
	var nodes []*Node
	ok := readList(s, &nodes, func(s *cryptobyte.String, n **Node) bool {
		var present bool
		if !codec.ReadOptional(s, &present) {
			return false
		}
		if !present {
			*n = nil
			return true
		}
		*n = new(Node)
		return (*n).Decode(s)
	})
	if !ok || len(nodes) == 0 || nodes[len(nodes)-1] == nil {
		return false
	}
	for i, n := range nodes {
		if n != nil && (n.Leaf != nil) != (i%2 == 0) {
			return false
		}
	}
	*t = nodes
	return true
}

// Bytes returns the encoded tree.
func (t RatchetTree) Bytes() ([]byte, error) { return encode(t) }

// DecodeRatchetTree decodes a complete ratchet_tree value.
func DecodeRatchetTree(data []byte) (RatchetTree, error) {
	var t RatchetTree
	if err := codec.Unmarshal(data, "ratchet tree", t.Decode); err != nil {
		return nil, err
	}
	return t, nil
}

// HPKECiphertext is an HPKE encryption: the KEM output and the AEAD
// ciphertext.
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// Encode appends the ciphertext to b.
func (c *HPKECiphertext) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, c.KEMOutput)
	codec.AddOpaque(b, c.Ciphertext)
}

// Decode reads a ciphertext from s.
func (c *HPKECiphertext) Decode(s *cryptobyte.String) bool {
	return codec.ReadOpaque(s, &c.KEMOutput) && codec.ReadOpaque(s, &c.Ciphertext)
}

// UpdatePathNode is one parent node of an UpdatePath: its new public key and
// the path secret encrypted to each node of the copath child's resolution.
type UpdatePathNode struct {
	EncryptionKey       HPKEPublicKey
	EncryptedPathSecret []HPKECiphertext
}

// Encode appends the node to b.
func (n *UpdatePathNode) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, n.EncryptionKey)
	addList(b, n.EncryptedPathSecret, func(b *cryptobyte.Builder, c HPKECiphertext) { c.Encode(b) })
}

// Decode reads the node from s.
func (n *UpdatePathNode) Decode(s *cryptobyte.String) bool {
	return readBytes(s, &n.EncryptionKey) &&
		readList(s, &n.EncryptedPathSecret, func(s *cryptobyte.String, c *HPKECiphertext) bool { return c.Decode(s) })
}

// UpdatePath is the path a committer sends: its new leaf node and one
// UpdatePathNode per node of its filtered direct path (RFC 9420, Section
// 7.6).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// Encode appends the path to b.
func (p *UpdatePath) Encode(b *cryptobyte.Builder) {
	p.LeafNode.Encode(b)
	addList(b, p.Nodes, func(b *cryptobyte.Builder, n UpdatePathNode) { n.Encode(b) })
}

// Decode reads the path from s.
func (p *UpdatePath) Decode(s *cryptobyte.String) bool {
	return p.LeafNode.Decode(s) &&
		readList(s, &p.Nodes, func(s *cryptobyte.String, n *UpdatePathNode) bool { return n.Decode(s) })
}
