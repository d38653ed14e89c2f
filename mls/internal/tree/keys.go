package tree

import (
	"bytes"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// HPKEPrivateKey is a serialised HPKE private key (RFC 9180
// SerializePrivateKey).
type HPKEPrivateKey []byte

// nodeKey is one HPKE key pair that a member holds for a node.
type nodeKey struct {
	node treemath.NodeIndex
	priv HPKEPrivateKey
	pub  message.HPKEPublicKey
}

// PrivateKeys is the private part of one member's view of the tree: the HPKE
// private key of its own leaf and those of the parent nodes on its direct
// path that it knows (RFC 9420, Section 4.2). Keys that are replaced or
// dropped are zeroed.
type PrivateKeys struct {
	cs   *suite.Suite
	leaf treemath.LeafIndex
	keys []nodeKey // sorted by node index; at most one per node
}

// NewPrivateKeys returns the key set of the member at leaf, holding only the
// leaf's private key encPriv. The caller keeps ownership of encPriv; the set
// stores a copy.
func NewPrivateKeys(cs *suite.Suite, leaf treemath.LeafIndex, encPriv HPKEPrivateKey) (*PrivateKeys, error) {
	pub, err := cs.HPKEPublicKey(encPriv)
	if err != nil {
		return nil, fmt.Errorf("failed to load leaf private key: %w", err)
	}
	k := &PrivateKeys{cs: cs, leaf: leaf}
	k.set(leaf.Node(), slices.Clone(encPriv), pub)
	return k, nil
}

// Leaf returns the member's leaf index.
func (k *PrivateKeys) Leaf() treemath.LeafIndex { return k.leaf }

// Nodes returns the nodes whose private keys the set holds, in order.
func (k *PrivateKeys) Nodes() []treemath.NodeIndex {
	out := make([]treemath.NodeIndex, len(k.keys))
	for i, nk := range k.keys {
		out[i] = nk.node
	}
	return out
}

// find returns the position of node x in keys.
func (k *PrivateKeys) find(x treemath.NodeIndex) (int, bool) {
	return slices.BinarySearchFunc(k.keys, x, func(nk nodeKey, x treemath.NodeIndex) int {
		return int(nk.node) - int(x)
	})
}

// key returns the key pair held for x, if any.
func (k *PrivateKeys) key(x treemath.NodeIndex) (*nodeKey, bool) {
	i, ok := k.find(x)
	if !ok {
		return nil, false
	}
	return &k.keys[i], true
}

// Has reports whether the set holds the private key of node x.
func (k *PrivateKeys) Has(x treemath.NodeIndex) bool {
	_, ok := k.find(x)
	return ok
}

// set stores a key pair for x, taking ownership of priv and zeroing the
// key it replaces.
func (k *PrivateKeys) set(x treemath.NodeIndex, priv HPKEPrivateKey, pub message.HPKEPublicKey) {
	i, ok := k.find(x)
	if ok {
		clear(k.keys[i].priv)
		k.keys[i] = nodeKey{node: x, priv: priv, pub: pub}
		return
	}
	k.keys = slices.Insert(k.keys, i, nodeKey{node: x, priv: priv, pub: pub})
}

// drop removes and zeroes the key of x, if held.
func (k *PrivateKeys) drop(x treemath.NodeIndex) {
	if i, ok := k.find(x); ok {
		clear(k.keys[i].priv)
		k.keys = slices.Delete(k.keys, i, i+1)
	}
}

// SetLeafKey replaces the leaf's private key, as after the member's own
// Update proposal is committed. The old key is zeroed; the set stores a copy
// of encPriv.
func (k *PrivateKeys) SetLeafKey(encPriv HPKEPrivateKey) error {
	pub, err := k.cs.HPKEPublicKey(encPriv)
	if err != nil {
		return fmt.Errorf("failed to load leaf private key: %w", err)
	}
	k.set(k.leaf.Node(), slices.Clone(encPriv), pub)
	return nil
}

// deriveNodeKey derives a node's key pair from its path secret (RFC 9420,
// Section 7.4).
func deriveNodeKey(cs *suite.Suite, pathSecret []byte) (HPKEPrivateKey, message.HPKEPublicKey, error) {
	nodeSecret, err := cs.DeriveSecret(pathSecret, "node")
	if err != nil {
		return nil, nil, err
	}
	defer clear(nodeSecret)
	priv, pub, err := cs.DeriveHPKEKeyPair(nodeSecret)
	if err != nil {
		return nil, nil, err
	}
	return priv, pub, nil
}

// SetPathSecret installs the key of node x derived from pathSecret, then
// walks up the member's direct path deriving the next path secret for each
// non-blank ancestor, as a new member does with the path_secret of its
// GroupSecrets (RFC 9420, Section 12.4.3.1). x must be an ancestor of the
// member's leaf. Every derived public key must equal the tree's; on any
// error the set is unchanged.
func (k *PrivateKeys) SetPathSecret(t *Tree, x treemath.NodeIndex, pathSecret []byte) error {
	n := t.LeafCount()
	me := k.leaf.Node()
	if x.IsLeaf() || uint32(x) >= t.Width() || !treemath.IsAncestor(x, me) {
		return fmt.Errorf("%w: node %d is not above leaf %d", ErrPrivateKeys, x, k.leaf)
	}
	var derived []nodeKey
	fail := func(err error) error {
		for _, d := range derived {
			clear(d.priv)
		}
		return err
	}
	secret := slices.Clone(pathSecret)
	defer func() { clear(secret) }()
	for y := x; ; y = y.Parent(n) {
		if pub := t.EncryptionKey(y); pub != nil {
			if y != x {
				next, err := k.cs.DeriveSecret(secret, "path")
				if err != nil {
					return fail(err)
				}
				clear(secret)
				secret = next
			}
			priv, derivedPub, err := deriveNodeKey(k.cs, secret)
			if err != nil {
				return fail(err)
			}
			derived = append(derived, nodeKey{node: y, priv: priv, pub: derivedPub})
			if !bytes.Equal(derivedPub, pub) {
				return fail(&NodeError{Node: y, Err: fmt.Errorf("%w: derived public key differs from the tree's", ErrPrivateKeys)})
			}
		} else if y == x {
			return fail(&NodeError{Node: y, Err: fmt.Errorf("%w: node is blank", ErrPrivateKeys)})
		}
		if y == n.Root() {
			break
		}
	}
	for _, d := range derived {
		k.set(d.node, d.priv, d.pub)
	}
	return nil
}

// SetNodeSecret installs the key of the single node x derived from
// pathSecret, checking it against the tree.
func (k *PrivateKeys) SetNodeSecret(t *Tree, x treemath.NodeIndex, pathSecret []byte) error {
	if x.IsLeaf() || !treemath.IsAncestor(x, k.leaf.Node()) {
		return fmt.Errorf("%w: node %d is not above leaf %d", ErrPrivateKeys, x, k.leaf)
	}
	pub := t.EncryptionKey(x)
	priv, derivedPub, err := deriveNodeKey(k.cs, pathSecret)
	if err != nil {
		return err
	}
	if pub == nil || !bytes.Equal(pub, derivedPub) {
		clear(priv)
		return &NodeError{Node: x, Err: fmt.Errorf("%w: derived public key differs from the tree's", ErrPrivateKeys)}
	}
	k.set(x, priv, derivedPub)
	return nil
}

// Prune drops (and zeroes) every key whose node is now blank, outside the
// tree, or holds a different public key: the outdated keys after proposals
// blanked or replaced nodes.
func (k *PrivateKeys) Prune(t *Tree) {
	k.keys = slices.DeleteFunc(k.keys, func(nk nodeKey) bool {
		if uint32(nk.node) < t.Width() && bytes.Equal(t.EncryptionKey(nk.node), nk.pub) {
			return false
		}
		clear(nk.priv)
		return true
	})
}

// Check verifies that the set fits t: the leaf is in the tree, and every
// key belongs to the leaf or a node on its direct path whose public key it
// matches.
func (k *PrivateKeys) Check(t *Tree) error {
	if err := t.checkLeaf(k.leaf); err != nil {
		return fmt.Errorf("%w: %w", ErrPrivateKeys, err)
	}
	me := k.leaf.Node()
	for _, nk := range k.keys {
		if uint32(nk.node) >= t.Width() || !treemath.IsAncestor(nk.node, me) {
			return &NodeError{Node: nk.node, Err: fmt.Errorf("%w: key for a node not on the member's path", ErrPrivateKeys)}
		}
		if !bytes.Equal(t.EncryptionKey(nk.node), nk.pub) {
			return &NodeError{Node: nk.node, Err: fmt.Errorf("%w: public key differs from the tree's", ErrPrivateKeys)}
		}
	}
	return nil
}

// Clone returns an independent copy; its keys must be destroyed separately.
func (k *PrivateKeys) Clone() *PrivateKeys {
	c := &PrivateKeys{cs: k.cs, leaf: k.leaf, keys: make([]nodeKey, len(k.keys))}
	for i, nk := range k.keys {
		c.keys[i] = nodeKey{node: nk.node, priv: slices.Clone(nk.priv), pub: nk.pub}
	}
	return c
}

// Destroy zeroes and drops every key.
func (k *PrivateKeys) Destroy() {
	for _, nk := range k.keys {
		clear(nk.priv)
	}
	k.keys = nil
}

// privateKeysVersion tags the serialised form.
const privateKeysVersion = 1

// MarshalBinary encodes the set for storage: a version, the suite, the leaf
// index and each node's index and private key. The result holds secrets.
func (k *PrivateKeys) MarshalBinary() ([]byte, error) {
	return codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(privateKeysVersion)
		b.AddUint16(uint16(k.cs.ID()))
		b.AddUint32(uint32(k.leaf))
		codec.AddVector(b, func(b *cryptobyte.Builder) {
			for _, nk := range k.keys {
				b.AddUint32(uint32(nk.node))
				codec.AddOpaque(b, nk.priv)
			}
		})
	})
}

// UnmarshalPrivateKeys decodes a set written by [PrivateKeys.MarshalBinary].
func UnmarshalPrivateKeys(data []byte) (*PrivateKeys, error) {
	var (
		version uint8
		id      uint16
		leaf    uint32
		keys    []nodeKey
	)
	err := codec.Unmarshal(data, "private keys", func(s *cryptobyte.String) bool {
		if !s.ReadUint8(&version) || version != privateKeysVersion || !s.ReadUint16(&id) || !s.ReadUint32(&leaf) {
			return false
		}
		return codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
			var nk nodeKey
			var x uint32
			var priv []byte
			if !s.ReadUint32(&x) || !codec.ReadOpaque(s, &priv) {
				return false
			}
			nk.node, nk.priv = treemath.NodeIndex(x), priv
			if len(keys) > 0 && keys[len(keys)-1].node >= nk.node {
				return false
			}
			keys = append(keys, nk)
			return true
		})
	})
	fail := func(err error) (*PrivateKeys, error) {
		for _, nk := range keys {
			clear(nk.priv)
		}
		return nil, err
	}
	if err != nil {
		return fail(err)
	}
	cs, err := suite.Get(suite.ID(id))
	if err != nil {
		return fail(err)
	}
	for i := range keys {
		if keys[i].pub, err = cs.HPKEPublicKey(keys[i].priv); err != nil {
			return fail(fmt.Errorf("failed to load private key of node %d: %w", keys[i].node, err))
		}
	}
	return &PrivateKeys{cs: cs, leaf: treemath.LeafIndex(leaf), keys: keys}, nil
}
