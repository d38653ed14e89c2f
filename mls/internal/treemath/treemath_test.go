package treemath

import (
	"testing"

	"github.com/parley-im/parley/mls/internal/vectors"
)

// opt is a JSON node index that may be null.
type opt *uint32

type treeMathCase struct {
	NLeaves uint32 `json:"n_leaves"`
	NNodes  uint32 `json:"n_nodes"`
	Root    uint32 `json:"root"`
	Left    []opt  `json:"left"`
	Right   []opt  `json:"right"`
	Parent  []opt  `json:"parent"`
	Sibling []opt  `json:"sibling"`
}

func TestTreeMathVectors(t *testing.T) {
	var cases []treeMathCase
	vectors.Load(t, "tree-math.json", &cases)
	var count vectors.Counter
	count.Report(t, "tree-math.json")
	for _, tc := range cases {
		count.Ran++
		n := LeafCount(tc.NLeaves)
		if n.NodeWidth() != tc.NNodes {
			t.Errorf("n=%d: width %d, want %d", n, n.NodeWidth(), tc.NNodes)
		}
		if uint32(n.Root()) != tc.Root {
			t.Errorf("n=%d: root %d, want %d", n, n.Root(), tc.Root)
		}
		check := func(name string, want []opt, f func(NodeIndex) (NodeIndex, bool)) {
			for i, w := range want {
				got, ok := f(NodeIndex(i))
				if (w == nil) != !ok || (ok && uint32(got) != *w) {
					t.Errorf("n=%d %s(%d) = %d,%v", n, name, i, got, ok)
				}
			}
		}
		check("left", tc.Left, func(x NodeIndex) (NodeIndex, bool) { return x.Left(), !x.IsLeaf() })
		check("right", tc.Right, func(x NodeIndex) (NodeIndex, bool) { return x.Right(), !x.IsLeaf() })
		check("parent", tc.Parent, func(x NodeIndex) (NodeIndex, bool) { return x.Parent(n), x != n.Root() })
		check("sibling", tc.Sibling, func(x NodeIndex) (NodeIndex, bool) { return x.Sibling(n), x != n.Root() })
	}
}

func TestPathsAndAncestors(t *testing.T) {
	n := LeafCount(8)
	got := LeafIndex(2).Node().DirectPath(n)
	want := []NodeIndex{5, 3, 7}
	if len(got) != len(want) {
		t.Fatalf("direct path %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("direct path %v, want %v", got, want)
		}
	}
	cp := LeafIndex(2).Node().Copath(n)
	if len(cp) != 3 || cp[0] != 6 || cp[1] != 1 || cp[2] != 11 {
		t.Fatalf("copath %v", cp)
	}
	for x := NodeIndex(0); x < 15; x++ {
		for y := NodeIndex(0); y < 15; y++ {
			a := CommonAncestor(x, y)
			if !IsAncestor(a, x) || !IsAncestor(a, y) {
				t.Fatalf("CommonAncestor(%d,%d)=%d is not an ancestor of both", x, y, a)
			}
			if a.Level() > 0 && IsAncestor(a.Left(), x) && IsAncestor(a.Left(), y) || a.Level() > 0 && IsAncestor(a.Right(), x) && IsAncestor(a.Right(), y) {
				t.Fatalf("CommonAncestor(%d,%d)=%d is not the lowest", x, y, a)
			}
		}
	}
}
