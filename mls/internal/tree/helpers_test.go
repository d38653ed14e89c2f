package tree

import (
	"bytes"
	"testing"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/treemath"
)

func decodeProposal(data []byte, p *message.Proposal) error {
	return codec.Unmarshal(data, "proposal", p.Decode)
}

func decodeUpdatePath(data []byte, p *message.UpdatePath) error {
	return codec.Unmarshal(data, "update path", p.Decode)
}

// fullHash recomputes the tree hash of x from scratch, ignoring the cache.
func fullHash(tr *Tree, x treemath.NodeIndex) []byte {
	if x.IsLeaf() {
		return leafHash(tr.cs, nil, x.Leaf(), tr.leaves[x>>1])
	}
	return parentNodeHash(tr.cs, tr.parents[x>>1], fullHash(tr, x.Left()), fullHash(tr, x.Right()))
}

// checkCache verifies that every cached hash, and the root hash, equal a
// full recomputation, and that the cache invariant holds.
func checkCache(t *testing.T, tr *Tree) {
	t.Helper()
	n := tr.LeafCount()
	for x := range tr.Width() {
		x := treemath.NodeIndex(x)
		if !tr.valid[x] {
			if x != tr.Root() && tr.valid[x.Parent(n)] {
				t.Fatalf("node %d stale but its parent is cached", x)
			}
			continue
		}
		if got, want := tr.nodeHash(x), fullHash(tr, x); !bytes.Equal(got, want) {
			t.Fatalf("cached hash of node %d = %x, full recomputation %x", x, got, want)
		}
	}
	if got, want := tr.TreeHash(), fullHash(tr, tr.Root()); !bytes.Equal(got, want) {
		t.Fatalf("tree hash %x, full recomputation %x", got, want)
	}
}
