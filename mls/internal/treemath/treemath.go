// Package treemath implements the array-based left-balanced binary tree
// arithmetic of RFC 9420, Appendix C, as methods on typed indices.
//
// Leaves sit at even node indices (leaf L is node 2L), parents at odd ones.
// A tree with n leaves (n a power of two after truncation rules are applied
// by the caller) has 2n-1 nodes.
package treemath

import "math/bits"

// LeafIndex is the index of a leaf among the leaves of a tree.
type LeafIndex uint32

// NodeIndex is the index of a node in the array representation of a tree.
type NodeIndex uint32

// LeafCount is a number of leaves.
type LeafCount uint32

// Node returns the node index of leaf l.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * l) }

// IsLeaf reports whether x is a leaf node.
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// Leaf returns the leaf index of node x, which must be a leaf.
func (x NodeIndex) Leaf() LeafIndex { return LeafIndex(x >> 1) }

// Level returns the height of x above the leaves (0 for leaves).
func (x NodeIndex) Level() uint { return uint(bits.TrailingZeros32(^uint32(x))) }

// NodeWidth returns the number of nodes of a tree with n leaves.
func (n LeafCount) NodeWidth() uint32 {
	if n == 0 {
		return 0
	}
	return 2*uint32(n) - 1
}

// Root returns the root of a tree with n leaves (n > 0).
func (n LeafCount) Root() NodeIndex {
	w := n.NodeWidth()
	return NodeIndex(1<<(bits.Len32(w)-1) - 1)
}

// Left returns the left child of the parent x.
func (x NodeIndex) Left() NodeIndex {
	k := x.Level()
	if k == 0 {
		return x
	}
	return x ^ (1 << (k - 1))
}

// Right returns the right child of the parent x.
func (x NodeIndex) Right() NodeIndex {
	k := x.Level()
	if k == 0 {
		return x
	}
	return x ^ (3 << (k - 1))
}

// parentStep returns the parent of x in an infinite tree.
func (x NodeIndex) parentStep() NodeIndex {
	k := x.Level()
	b := (x >> (k + 1)) & 1
	return (x | (1 << k)) ^ (b << (k + 1))
}

// Parent returns the parent of x in a tree with n leaves; x must not be the
// root.
func (x NodeIndex) Parent(n LeafCount) NodeIndex {
	if x == n.Root() {
		return x
	}
	return x.parentStep()
}

// Sibling returns the other child of x's parent.
func (x NodeIndex) Sibling(n LeafCount) NodeIndex {
	p := x.Parent(n)
	if x < p {
		return p.Right()
	}
	return p.Left()
}

// DirectPath returns the path from x's parent up to the root, excluding x
// itself and including the root (empty when x is the root).
func (x NodeIndex) DirectPath(n LeafCount) []NodeIndex {
	r := n.Root()
	if x == r {
		return nil
	}
	path := make([]NodeIndex, 0, bits.Len32(uint32(n)))
	for x != r {
		x = x.parentStep()
		path = append(path, x)
	}
	return path
}

// Copath returns the siblings of x and of each node on its direct path,
// excluding the root.
func (x NodeIndex) Copath(n LeafCount) []NodeIndex {
	r := n.Root()
	if x == r {
		return nil
	}
	path := append([]NodeIndex{x}, x.DirectPath(n)...)
	path = path[:len(path)-1]
	out := make([]NodeIndex, len(path))
	for i, y := range path {
		out[i] = y.Sibling(n)
	}
	return out
}

// IsAncestor reports whether a is an ancestor of d (or d itself).
func IsAncestor(a, d NodeIndex) bool {
	span := NodeIndex(1)<<a.Level() - 1
	return d+span >= a && d <= a+span
}

// CommonAncestor returns the lowest common ancestor of x and y.
func CommonAncestor(x, y NodeIndex) NodeIndex {
	lx, ly := x.Level()+1, y.Level()+1
	if lx <= ly && x>>ly == y>>ly {
		return y
	}
	if ly <= lx && x>>lx == y>>lx {
		return x
	}
	xn, yn := x, y
	k := uint(0)
	for xn != yn {
		xn, yn = xn>>1, yn>>1
		k++
	}
	return NodeIndex(xn<<k + (1<<(k-1) - 1))
}
