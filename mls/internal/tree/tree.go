package tree

import (
	"bytes"
	"fmt"
	"iter"
	"slices"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// MaxLeaves bounds the number of leaves of a tree, whether it is decoded or
// grown by adds, so that a peer cannot make the tree allocate without limit.
const MaxLeaves = 1 << 18

// Tree is a ratchet tree: a full binary tree of 2^d leaves stored as an
// array, leaf L at node 2L and parents at odd node indices. A nil entry is a
// blank node.
type Tree struct {
	cs      *suite.Suite
	leaves  []*message.LeafNode   // leaf L
	parents []*message.ParentNode // parent node x at x/2

	// hashes caches the tree hash of node x at [x*h, (x+1)*h), valid when
	// valid[x]. Invariant: if a node is invalid, so are all its ancestors.
	hashes []byte
	valid  []bool
	h      int
}

// New returns a one-member tree holding leaf (the state of a group's
// creator).
func New(cs *suite.Suite, leaf *message.LeafNode) (*Tree, error) {
	if err := checkEncodable(leaf); err != nil {
		return nil, err
	}
	t := &Tree{cs: cs, h: cs.HashSize()}
	t.resize(1)
	t.leaves[0] = leaf
	return t, nil
}

// checkEncodable makes sure a leaf node that enters the tree can be encoded,
// so that hashing it later cannot fail.
func checkEncodable(leaf *message.LeafNode) error {
	if leaf == nil {
		return fmt.Errorf("%w: nil leaf node", ErrInvalidLeaf)
	}
	if _, err := leaf.Bytes(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeaf, err)
	}
	return nil
}

// resize sets the number of leaves to n (a power of two), keeping the nodes
// and cached hashes of the part that remains and marking new nodes invalid.
func (t *Tree) resize(n int) {
	w := 2*n - 1
	if n <= len(t.leaves) {
		clear(t.leaves[n:])
		clear(t.parents[n-1:])
		t.leaves, t.parents = t.leaves[:n], t.parents[:n-1]
		t.hashes, t.valid = t.hashes[:w*t.h], t.valid[:w]
		return
	}
	t.leaves = append(t.leaves, make([]*message.LeafNode, n-len(t.leaves))...)
	t.parents = append(t.parents, make([]*message.ParentNode, n-1-len(t.parents))...)
	t.hashes = append(t.hashes, make([]byte, w*t.h-len(t.hashes))...)
	t.valid = append(t.valid, make([]bool, w-len(t.valid))...)
}

// Suite returns the tree's cipher suite.
func (t *Tree) Suite() *suite.Suite { return t.cs }

// LeafCount returns the number of leaves, blank or not (a power of two).
func (t *Tree) LeafCount() treemath.LeafCount { return treemath.LeafCount(len(t.leaves)) }

// Width returns the number of nodes.
func (t *Tree) Width() uint32 { return t.LeafCount().NodeWidth() }

// Root returns the root's node index.
func (t *Tree) Root() treemath.NodeIndex { return t.LeafCount().Root() }

// Leaf returns the leaf node at l, or nil if it is blank or outside the tree.
func (t *Tree) Leaf(l treemath.LeafIndex) *message.LeafNode {
	if int64(l) >= int64(len(t.leaves)) {
		return nil
	}
	return t.leaves[l]
}

// Parent returns the parent node at x, or nil if it is blank, not a parent
// or outside the tree.
func (t *Tree) Parent(x treemath.NodeIndex) *message.ParentNode {
	if x.IsLeaf() || uint32(x) >= t.Width() {
		return nil
	}
	return t.parents[x>>1]
}

// IsBlank reports whether node x is blank (or outside the tree).
func (t *Tree) IsBlank(x treemath.NodeIndex) bool {
	if x.IsLeaf() {
		return t.Leaf(x.Leaf()) == nil
	}
	return t.Parent(x) == nil
}

// EncryptionKey returns the HPKE public key of node x, or nil when it is
// blank.
func (t *Tree) EncryptionKey(x treemath.NodeIndex) message.HPKEPublicKey {
	if x.IsLeaf() {
		if l := t.Leaf(x.Leaf()); l != nil {
			return l.EncryptionKey
		}
		return nil
	}
	if p := t.Parent(x); p != nil {
		return p.EncryptionKey
	}
	return nil
}

// Leaves iterates over the non-blank leaves in index order.
func (t *Tree) Leaves() iter.Seq2[treemath.LeafIndex, *message.LeafNode] {
	return func(yield func(treemath.LeafIndex, *message.LeafNode) bool) {
		for i, l := range t.leaves {
			if l != nil && !yield(treemath.LeafIndex(i), l) {
				return
			}
		}
	}
}

// MemberCount returns the number of non-blank leaves.
func (t *Tree) MemberCount() int {
	n := 0
	for _, l := range t.leaves {
		if l != nil {
			n++
		}
	}
	return n
}

// FindLeaf returns the index of the first non-blank leaf for which match
// returns true.
func (t *Tree) FindLeaf(match func(*message.LeafNode) bool) (treemath.LeafIndex, bool) {
	for i, l := range t.leaves {
		if l != nil && match(l) {
			return treemath.LeafIndex(i), true
		}
	}
	return 0, false
}

// LeafBySignatureKey returns the index of the leaf with signature key key.
func (t *Tree) LeafBySignatureKey(key message.SignaturePublicKey) (treemath.LeafIndex, bool) {
	return t.FindLeaf(func(l *message.LeafNode) bool { return bytes.Equal(l.SignatureKey, key) })
}

// Clone returns an independent copy of the tree. Nodes are shared (they are
// never modified in place), so cloning costs two pointer slices and the hash
// cache.
func (t *Tree) Clone() *Tree {
	return &Tree{
		cs:      t.cs,
		leaves:  slices.Clone(t.leaves),
		parents: slices.Clone(t.parents),
		hashes:  slices.Clone(t.hashes),
		valid:   slices.Clone(t.valid),
		h:       t.h,
	}
}

// invalidate marks the cached hash of x and of its ancestors as stale.
func (t *Tree) invalidate(x treemath.NodeIndex) {
	n, root := t.LeafCount(), t.Root()
	for t.valid[x] {
		t.valid[x] = false
		if x == root {
			return
		}
		x = x.Parent(n)
	}
}

func (t *Tree) setLeaf(l treemath.LeafIndex, leaf *message.LeafNode) {
	t.leaves[l] = leaf
	t.invalidate(l.Node())
}

func (t *Tree) setParent(x treemath.NodeIndex, p *message.ParentNode) {
	t.parents[x>>1] = p
	t.invalidate(x)
}

// checkLeaf returns an error unless l is a non-blank leaf of the tree.
func (t *Tree) checkLeaf(l treemath.LeafIndex) error {
	if int64(l) >= int64(len(t.leaves)) {
		return fmt.Errorf("%w: %d of %d", ErrLeafIndex, l, len(t.leaves))
	}
	if t.leaves[l] == nil {
		return fmt.Errorf("%w: %d", ErrBlankLeaf, l)
	}
	return nil
}

// BlankPath blanks the parent nodes on l's direct path.
func (t *Tree) BlankPath(l treemath.LeafIndex) {
	if int64(l) >= int64(len(t.leaves)) {
		return
	}
	for _, x := range l.Node().DirectPath(t.LeafCount()) {
		if t.parents[x>>1] != nil {
			t.setParent(x, nil)
		}
	}
}

// FreeLeaf returns the leftmost blank leaf, extending the tree when there is
// none; the leaf stays blank. This is where an Add places its member and
// where an external joiner's commit places the joiner.
func (t *Tree) FreeLeaf() (treemath.LeafIndex, error) {
	if i := slices.Index(t.leaves, nil); i >= 0 {
		return treemath.LeafIndex(i), nil
	}
	n := len(t.leaves)
	if 2*n > MaxLeaves {
		return 0, fmt.Errorf("%w: more than %d leaves", ErrMalformedTree, MaxLeaves)
	}
	t.resize(2 * n)
	t.invalidate(t.Root())
	return treemath.LeafIndex(n), nil
}

// AddLeaf places leaf at the leftmost blank leaf (extending the tree when
// there is none), adds the new leaf to the unmerged leaves of every
// non-blank parent above it, and returns its index (RFC 9420, Section
// 12.1.1). It does not validate the leaf node; see [Tree.ValidateLeafNode].
func (t *Tree) AddLeaf(leaf *message.LeafNode) (treemath.LeafIndex, error) {
	if err := checkEncodable(leaf); err != nil {
		return 0, err
	}
	l, err := t.FreeLeaf()
	if err != nil {
		return 0, err
	}
	for _, x := range l.Node().DirectPath(t.LeafCount()) {
		p := t.parents[x>>1]
		if p == nil {
			continue
		}
		np := *p
		i, found := slices.BinarySearch(p.UnmergedLeaves, l)
		if !found {
			np.UnmergedLeaves = slices.Insert(slices.Clone(p.UnmergedLeaves), i, l)
		}
		t.setParent(x, &np)
	}
	t.setLeaf(l, leaf)
	return l, nil
}

// UpdateLeaf replaces the leaf node at l and blanks its direct path, as an
// Update proposal does (RFC 9420, Section 12.1.2). It does not validate the
// leaf node; see [Tree.ValidateLeafNode].
func (t *Tree) UpdateLeaf(l treemath.LeafIndex, leaf *message.LeafNode) error {
	if err := t.checkLeaf(l); err != nil {
		return err
	}
	if err := checkEncodable(leaf); err != nil {
		return err
	}
	t.BlankPath(l)
	t.setLeaf(l, leaf)
	return nil
}

// RemoveLeaf blanks leaf l and its direct path and truncates the tree, as a
// Remove proposal does (RFC 9420, Section 12.1.3).
func (t *Tree) RemoveLeaf(l treemath.LeafIndex) error {
	if err := t.checkLeaf(l); err != nil {
		return err
	}
	t.BlankPath(l)
	t.setLeaf(l, nil)
	t.Truncate()
	return nil
}

// Truncate halves the tree while its right subtree holds no non-blank leaf.
func (t *Tree) Truncate() {
	last := -1
	for i := len(t.leaves) - 1; i >= 0; i-- {
		if t.leaves[i] != nil {
			last = i
			break
		}
	}
	n := len(t.leaves)
	for n > 1 && n/2 > last {
		n /= 2
	}
	if n < len(t.leaves) {
		t.resize(n)
	}
}

// Resolution returns the resolution of node x (RFC 9420, Section 4.1.1): the
// non-blank nodes covering its subtree, each non-blank node followed by its
// unmerged leaves.
func (t *Tree) Resolution(x treemath.NodeIndex) []treemath.NodeIndex {
	if uint32(x) >= t.Width() {
		return nil
	}
	return t.appendResolution(nil, x)
}

func (t *Tree) appendResolution(out []treemath.NodeIndex, x treemath.NodeIndex) []treemath.NodeIndex {
	if x.IsLeaf() {
		if t.leaves[x>>1] != nil {
			out = append(out, x)
		}
		return out
	}
	if p := t.parents[x>>1]; p != nil {
		out = append(out, x)
		for _, l := range p.UnmergedLeaves {
			out = append(out, l.Node())
		}
		return out
	}
	out = t.appendResolution(out, x.Left())
	return t.appendResolution(out, x.Right())
}

// emptyResolution reports whether the subtree under x holds no non-blank
// node, stopping at the first one found.
func (t *Tree) emptyResolution(x treemath.NodeIndex) bool {
	if x.IsLeaf() {
		return t.leaves[x>>1] == nil
	}
	if t.parents[x>>1] != nil {
		return false
	}
	return t.emptyResolution(x.Left()) && t.emptyResolution(x.Right())
}

// FilteredDirectPath returns the filtered direct path of leaf l (RFC 9420,
// Section 4.1.2) and, for each of its nodes, the child on l's copath.
func (t *Tree) FilteredDirectPath(l treemath.LeafIndex) (path, copath []treemath.NodeIndex) {
	if int64(l) >= int64(len(t.leaves)) {
		return nil, nil
	}
	n := t.LeafCount()
	x := l.Node()
	for x != n.Root() {
		p := x.Parent(n)
		s := x.Sibling(n)
		if !t.emptyResolution(s) {
			path = append(path, p)
			copath = append(copath, s)
		}
		x = p
	}
	return path, copath
}

// leafRange returns the leaves [lo, hi) under node x.
func leafRange(x treemath.NodeIndex) (lo, hi treemath.LeafIndex) {
	span := uint32(1)<<x.Level() - 1
	lo = treemath.LeafIndex((uint32(x) - span) >> 1)
	return lo, lo + treemath.LeafIndex(span+1)
}
