package tree

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// ValidateOptions are the group parameters that a tree or a leaf node is
// validated against.
type ValidateOptions struct {
	// GroupID is the group's ID, signed by update and commit leaves.
	GroupID message.GroupID
	// Extensions are the group context extensions; a
	// required_capabilities extension among them is enforced.
	Extensions message.Extensions
	// Now, when not zero, must lie within the lifetime of key package
	// leaves. The RFC only recommends this for nodes received from others
	// (a member who joined long ago may hold an expired key package
	// leaf), so leave it zero when validating a whole tree.
	Now time.Time
	// MaxLifetime, when not zero, bounds the lifetime of key package
	// leaves.
	MaxLifetime time.Duration
	// CheckCredential, when set, validates a leaf's credential against
	// its signature key (RFC 9420, Section 5.3.1). [Tree.Validate] calls
	// it from several goroutines at once, so it must be safe for
	// concurrent use.
	CheckCredential func(leaf *message.LeafNode) error
	// TreeHash, when set, must equal the root tree hash ([Tree.Validate]).
	TreeHash []byte
}

// requiredCapabilities decodes the required_capabilities extension, if any.
func (o *ValidateOptions) requiredCapabilities() (*message.RequiredCapabilities, error) {
	var rc message.RequiredCapabilities
	ok, err := message.DecodeExtension(o.Extensions, message.ExtensionRequiredCapabilities, &rc)
	if err != nil {
		return nil, fmt.Errorf("%w: required_capabilities: %w", ErrIncompatible, err)
	}
	if !ok {
		return nil, nil
	}
	return &rc, nil
}

// checkLeafAlone runs the checks of RFC 9420, Section 7.3 that concern one
// leaf node by itself: source, lifetime, capabilities, key formats,
// signature, credential and required capabilities.
func (t *Tree) checkLeafAlone(leaf *message.LeafNode, index treemath.LeafIndex, source message.LeafNodeSource, rc *message.RequiredCapabilities, o *ValidateOptions) error {
	return t.checkLeafAloneTBS(leaf, index, source, rc, o, nil)
}

// checkLeafAloneTBS is checkLeafAlone with the leaf's LeafNodeTBS already
// encoded (nil: encode it).
func (t *Tree) checkLeafAloneTBS(leaf *message.LeafNode, index treemath.LeafIndex, source message.LeafNodeSource, rc *message.RequiredCapabilities, o *ValidateOptions, tbs []byte) error {
	err := leaf.Validate(message.LeafNodeCheck{Source: source, Now: o.Now, MaxLifetime: o.MaxLifetime})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeaf, err)
	}
	if err := t.cs.ValidateHPKEPublicKey(leaf.EncryptionKey); err != nil {
		return fmt.Errorf("%w: encryption key: %w", ErrInvalidLeaf, err)
	}
	// Verification parses the signature key (a P-256 point costs a
	// square root), so the key's format is checked on its own only to
	// explain a failure.
	if tbs == nil {
		err = leaf.Verify(t.cs, o.GroupID, index)
	} else if err = t.cs.VerifyWithLabel(leaf.SignatureKey, "LeafNodeTBS", tbs, leaf.Signature); err != nil {
		err = fmt.Errorf("failed to verify leaf node signature: %w", err)
	}
	if err != nil {
		if kerr := t.cs.ValidateSignaturePublicKey(leaf.SignatureKey); kerr != nil {
			return fmt.Errorf("%w: signature key: %w", ErrInvalidLeaf, kerr)
		}
		return fmt.Errorf("%w: %w", ErrInvalidLeaf, err)
	}
	if o.CheckCredential != nil {
		if err := o.CheckCredential(leaf); err != nil {
			return fmt.Errorf("%w: credential: %w", ErrInvalidLeaf, err)
		}
	}
	if rc != nil {
		if err := rc.SatisfiedBy(&leaf.Capabilities); err != nil {
			return fmt.Errorf("%w: %w", ErrIncompatible, err)
		}
	}
	return nil
}

// LeafUse says in which role a leaf node is validated by
// [Tree.ValidateLeafNode].
type LeafUse struct {
	// Source is the leaf_node_source the role requires: key_package for
	// an Add, update for an Update proposal, commit for an UpdatePath.
	Source message.LeafNodeSource
	// Leaf is the leaf the node replaces (update) or takes (commit); it
	// is signed into the node. Unused for key_package.
	Leaf treemath.LeafIndex
}

// ValidateLeafNode validates a leaf node that is to enter the tree (RFC
// 9420, Section 7.3): the checks of the node alone (source, lifetime,
// capabilities, key formats, signature, credential, required capabilities),
// that its credential type is supported by every other member and that it
// supports every credential type in use, that its signature key is unique
// among the other members, and that its encryption key appears nowhere in
// the tree (not even in the leaf it replaces).
func (t *Tree) ValidateLeafNode(leaf *message.LeafNode, use LeafUse, o ValidateOptions) error {
	at := func(err error) error {
		if use.Source == message.SourceKeyPackage || int64(use.Leaf) >= int64(len(t.leaves)) {
			return err
		}
		return &NodeError{Node: use.Leaf.Node(), Err: err}
	}
	if use.Source != message.SourceKeyPackage && int64(use.Leaf) >= int64(len(t.leaves)) {
		return fmt.Errorf("%w: %d", ErrLeafIndex, use.Leaf)
	}
	rc, err := o.requiredCapabilities()
	if err != nil {
		return err
	}
	if err := t.checkLeafAlone(leaf, use.Leaf, use.Source, rc, &o); err != nil {
		return at(err)
	}
	replaced := use.Source != message.SourceKeyPackage
	for i, m := range t.leaves {
		if m == nil {
			continue
		}
		if bytes.Equal(m.EncryptionKey, leaf.EncryptionKey) {
			return at(fmt.Errorf("%w: encryption key of leaf %d", ErrDuplicateKey, i))
		}
		if replaced && treemath.LeafIndex(i) == use.Leaf {
			continue
		}
		if bytes.Equal(m.SignatureKey, leaf.SignatureKey) {
			return at(fmt.Errorf("%w: signature key of leaf %d", ErrDuplicateKey, i))
		}
		if !m.Capabilities.SupportsCredential(leaf.Credential.Type) {
			return at(fmt.Errorf("%w: leaf %d does not support credential type 0x%04x", ErrIncompatible, i, uint16(leaf.Credential.Type)))
		}
		if !leaf.Capabilities.SupportsCredential(m.Credential.Type) {
			return at(fmt.Errorf("%w: credential type 0x%04x of leaf %d not supported", ErrIncompatible, uint16(m.Credential.Type), i))
		}
	}
	for i, p := range t.parents {
		if p != nil && bytes.Equal(p.EncryptionKey, leaf.EncryptionKey) {
			return at(fmt.Errorf("%w: encryption key of parent node %d", ErrDuplicateKey, 2*i+1))
		}
	}
	return nil
}

// Validate checks a tree received from others, as a new member must before
// using it (RFC 9420, Sections 7.3, 7.9.2 and 12.4.3.1): the root tree hash
// when o.TreeHash is set; every non-blank leaf node (source, capabilities,
// key formats, signature with o.GroupID, credential, required capabilities,
// credential types supported by all members, and lifetime when o.Now is
// set); unique signature keys among members and unique encryption keys
// among all nodes; every unmerged leaf a non-blank descendant that every
// non-blank node in between lists too; and every non-blank parent node
// parent-hash valid. Each leaf signature is verified once, on all cores,
// and every tree hash is computed once and kept in the cache.
func (t *Tree) Validate(o ValidateOptions) error {
	rc, err := o.requiredCapabilities()
	if err != nil {
		return err
	}
	if err := t.checkStructure(); err != nil {
		return err
	}
	inputs := make([][]byte, len(t.leaves))
	// The cheap checks come first, so that a forged tree is rejected
	// before thousands of signatures are verified. In parallel per node:
	// the leaf's tree hash, or the parent's key format.
	err = parallel(int(t.Width()), func(i int) error {
		x := treemath.NodeIndex(i)
		if !x.IsLeaf() {
			if p := t.parents[x>>1]; p != nil {
				if err := t.cs.ValidateHPKEPublicKey(p.EncryptionKey); err != nil {
					return nodeErr(x, ErrMalformedTree, "encryption key: %v", err)
				}
			}
			return nil
		}
		if !t.valid[x] {
			leaf := t.leaves[x>>1]
			in, err := leafHashInput(nil, x.Leaf(), leaf)
			if err != nil {
				return &NodeError{Node: x, Err: err}
			}
			copy(t.hashes[int(x)*t.h:], t.cs.Hash(in))
			t.valid[x] = true
			if leaf != nil {
				// Kept for the signature check below, which
				// verifies a prefix of this encoding.
				inputs[x>>1] = in
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if o.TreeHash != nil && !bytes.Equal(t.WarmCache(), o.TreeHash) {
		return fmt.Errorf("%w: root hash differs from the group's", ErrTreeHash)
	}
	if err := t.VerifyParentHashes(); err != nil {
		return err
	}
	// Then every leaf node, signatures included, on all cores.
	return parallel(len(t.leaves), func(i int) error {
		leaf := t.leaves[i]
		if leaf == nil {
			return nil
		}
		l := treemath.LeafIndex(i)
		var tbs []byte
		if inputs[i] != nil {
			tbs = tbsFromHashInput(inputs[i], leaf, o.GroupID, l)
			inputs[i] = nil
		}
		if err := t.checkLeafAloneTBS(leaf, l, leaf.Source, rc, &o, tbs); err != nil {
			return &NodeError{Node: l.Node(), Err: err}
		}
		return nil
	})
}

// checkStructure checks what needs no cryptography: credential types
// supported by every member, key uniqueness, and unmerged leaves.
func (t *Tree) checkStructure() error {
	var inUse []message.CredentialType
	sigKeys := make(map[string]treemath.NodeIndex, len(t.leaves))
	encKeys := make(map[string]treemath.NodeIndex, 2*len(t.leaves))
	for i, leaf := range t.leaves {
		if leaf == nil {
			continue
		}
		x := treemath.LeafIndex(i).Node()
		if !slices.Contains(inUse, leaf.Credential.Type) {
			inUse = append(inUse, leaf.Credential.Type)
		}
		if y, dup := sigKeys[string(leaf.SignatureKey)]; dup {
			return nodeErr(x, ErrDuplicateKey, "signature key of node %d", y)
		}
		sigKeys[string(leaf.SignatureKey)] = x
		if y, dup := encKeys[string(leaf.EncryptionKey)]; dup {
			return nodeErr(x, ErrDuplicateKey, "encryption key of node %d", y)
		}
		encKeys[string(leaf.EncryptionKey)] = x
	}
	for i, leaf := range t.leaves {
		if leaf == nil {
			continue
		}
		for _, ct := range inUse {
			if !leaf.Capabilities.SupportsCredential(ct) {
				return nodeErr(treemath.LeafIndex(i).Node(), ErrIncompatible, "credential type 0x%04x in use is not supported", uint16(ct))
			}
		}
	}
	for i, p := range t.parents {
		if p == nil {
			continue
		}
		x := treemath.NodeIndex(2*i + 1)
		if y, dup := encKeys[string(p.EncryptionKey)]; dup {
			return nodeErr(x, ErrDuplicateKey, "encryption key of node %d", y)
		}
		encKeys[string(p.EncryptionKey)] = x
		if err := t.checkUnmerged(x, p); err != nil {
			return err
		}
	}
	return nil
}

// checkUnmerged checks the unmerged_leaves of the parent x (RFC 9420,
// Section 12.4.3.1).
func (t *Tree) checkUnmerged(x treemath.NodeIndex, p *message.ParentNode) error {
	lo, hi := leafRange(x)
	n := t.LeafCount()
	for j, l := range p.UnmergedLeaves {
		if j > 0 && l <= p.UnmergedLeaves[j-1] {
			return nodeErr(x, ErrUnmergedLeaves, "not in increasing order")
		}
		if l < lo || l >= hi {
			return nodeErr(x, ErrUnmergedLeaves, "leaf %d is not a descendant", l)
		}
		if t.leaves[l] == nil {
			return nodeErr(x, ErrUnmergedLeaves, "leaf %d is blank", l)
		}
		for y := l.Node().Parent(n); y != x; y = y.Parent(n) {
			q := t.parents[y>>1]
			if q == nil {
				continue
			}
			if _, found := slices.BinarySearch(q.UnmergedLeaves, l); !found {
				return nodeErr(y, ErrUnmergedLeaves, "leaf %d, unmerged at ancestor %d, is missing", l, x)
			}
		}
	}
	return nil
}

// VerifyParentHashes checks that every non-blank parent node is parent-hash
// valid (RFC 9420, Section 7.9.2), top down: exactly one node D in the
// resolution of one of its children C has D.parent_hash equal to the
// parent's parent hash with the other child as copath child, and the
// parent's unmerged leaves under C are exactly the rest of C's resolution.
// Since every parent is checked, each is chained down to a leaf.
func (t *Tree) VerifyParentHashes() error {
	var res []treemath.NodeIndex
	for i, p := range t.parents {
		if p == nil {
			continue
		}
		x := treemath.NodeIndex(2*i + 1)
		found := 0
		for _, c := range [2]treemath.NodeIndex{x.Left(), x.Right()} {
			s := c.Sibling(t.LeafCount())
			ph := t.parentHash(x, s)
			res = t.appendResolution(res[:0], c)
			for _, d := range res {
				if bytes.Equal(t.storedParentHash(d), ph) && t.unmergedMatch(p, c, res, d) {
					found++
				}
			}
		}
		if found != 1 {
			return nodeErr(x, ErrParentHash, "%d descendants link to it, want 1", found)
		}
	}
	return nil
}

// storedParentHash returns the parent_hash field of a non-blank node.
func (t *Tree) storedParentHash(d treemath.NodeIndex) []byte {
	if d.IsLeaf() {
		if l := t.leaves[d>>1]; l != nil && l.Source == message.SourceCommit {
			return l.ParentHash
		}
		return nil
	}
	if q := t.parents[d>>1]; q != nil {
		return q.ParentHash
	}
	return nil
}

// unmergedMatch reports whether p's unmerged leaves under c are exactly the
// resolution res of c without d.
func (t *Tree) unmergedMatch(p *message.ParentNode, c treemath.NodeIndex, res []treemath.NodeIndex, d treemath.NodeIndex) bool {
	lo, hi := leafRange(c)
	a, _ := slices.BinarySearch(p.UnmergedLeaves, lo)
	b, _ := slices.BinarySearch(p.UnmergedLeaves, hi)
	under := p.UnmergedLeaves[a:b]
	if len(under) != len(res)-1 {
		return false
	}
	for _, y := range res {
		if y == d {
			continue
		}
		if !y.IsLeaf() {
			return false
		}
		if _, found := slices.BinarySearch(under, y.Leaf()); !found {
			return false
		}
	}
	return true
}
