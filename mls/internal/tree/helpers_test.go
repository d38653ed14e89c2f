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

// fullHash recomputes the tree hash of x from scratch, ignoring the cache,
// and records every node's hash in all.
func fullHash(tr *Tree, x treemath.NodeIndex, all [][]byte) []byte {
	var h []byte
	if x.IsLeaf() {
		h, _ = leafHash(tr.cs, x.Leaf(), tr.leaves[x>>1])
	} else {
		h = parentNodeHash(tr.cs, tr.parents[x>>1], fullHash(tr, x.Left(), all), fullHash(tr, x.Right(), all))
	}
	all[x] = h
	return h
}

// checkCache verifies that every cached hash, and the root hash, equal a
// full recomputation, and that the cache invariant holds.
func checkCache(t *testing.T, tr *Tree) {
	t.Helper()
	n := tr.LeafCount()
	all := make([][]byte, tr.Width())
	root := fullHash(tr, tr.Root(), all)
	for x := range tr.Width() {
		x := treemath.NodeIndex(x)
		if !tr.valid[x] {
			if x != tr.Root() && tr.valid[x.Parent(n)] {
				t.Fatalf("node %d stale but its parent is cached", x)
			}
			continue
		}
		if got := tr.nodeHash(x); !bytes.Equal(got, all[x]) {
			t.Fatalf("cached hash of node %d = %x, full recomputation %x", x, got, all[x])
		}
	}
	if got := tr.TreeHash(); !bytes.Equal(got, root) {
		t.Fatalf("tree hash %x, full recomputation %x", got, root)
	}
}
