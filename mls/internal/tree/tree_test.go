package tree

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// fakeLeaf returns an unsigned but encodable leaf node with random keys;
// tree hashing does not look at signatures.
func fakeLeaf(rng *rand.Rand) *message.LeafNode {
	key := func() []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	return &message.LeafNode{
		EncryptionKey: key(), SignatureKey: key(),
		Credential:   message.NewBasicCredential([]byte("x")),
		Capabilities: message.Capabilities{Credentials: []message.CredentialType{message.CredentialBasic}},
		Source:       message.SourceUpdate, Signature: key(),
	}
}

// TestTreeHashCacheRandomOps applies random adds, removes, updates and path
// changes, and after each checks the cached hashes against a full
// recomputation and against a freshly decoded copy of the tree.
func TestTreeHashCacheRandomOps(t *testing.T) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	rng := rand.New(rand.NewPCG(1, 2))
	tr, err := New(cs, fakeLeaf(rng))
	if err != nil {
		t.Fatal(err)
	}
	ops := 3000
	if testing.Short() {
		ops = 500
	}
	members := []treemath.LeafIndex{0}
	for i := range ops {
		switch op := rng.IntN(10); {
		case op < 4 || len(members) < 2:
			l, err := tr.AddLeaf(fakeLeaf(rng))
			if err != nil {
				t.Fatal(err)
			}
			members = append(members, l)
		case op < 6:
			j := rng.IntN(len(members))
			if err := tr.RemoveLeaf(members[j]); err != nil {
				t.Fatal(err)
			}
			members = slices.Delete(members, j, j+1)
		case op < 8:
			if err := tr.UpdateLeaf(members[rng.IntN(len(members))], fakeLeaf(rng)); err != nil {
				t.Fatal(err)
			}
		default:
			// A path: fresh keys on the filtered direct path.
			l := members[rng.IntN(len(members))]
			path, _ := tr.FilteredDirectPath(l)
			tr.BlankPath(l)
			for _, x := range path {
				tr.setParent(x, &message.ParentNode{EncryptionKey: fakeLeaf(rng).EncryptionKey})
			}
			tr.setLeaf(l, fakeLeaf(rng))
		}
		if rng.IntN(3) == 0 {
			_ = tr.NodeHash(treemath.NodeIndex(rng.IntN(int(tr.Width()))))
		}
		checkCache(t, tr)
		if i%50 == 0 {
			data, err := tr.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := Decode(cs, data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fresh.TreeHash(), tr.TreeHash()) {
				t.Fatalf("op %d: decoded copy hashes differently", i)
			}
		}
		slices.Sort(members)
		if tr.MemberCount() != len(members) {
			t.Fatalf("op %d: %d members in the tree, %d expected", i, tr.MemberCount(), len(members))
		}
		// The tree is truncated: the right half holds a member.
		if n := int(tr.LeafCount()); n > 1 && int(members[len(members)-1]) < n/2 {
			t.Fatalf("op %d: tree of %d leaves not truncated (last member %d)", i, n, members[len(members)-1])
		}
	}
}

func TestAddRemoveShape(t *testing.T) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	rng := rand.New(rand.NewPCG(3, 4))
	tr, _ := New(cs, fakeLeaf(rng))
	for want := treemath.LeafIndex(1); want < 5; want++ {
		l, err := tr.AddLeaf(fakeLeaf(rng))
		if err != nil || l != want {
			t.Fatalf("add placed leaf at %d (%v), want %d", l, err, want)
		}
	}
	if tr.LeafCount() != 8 {
		t.Fatalf("%d leaves, want 8", tr.LeafCount())
	}
	// A parent above leaf 1 gets the next added leaf as unmerged.
	_, pub, _ := cs.GenerateHPKEKey()
	tr.setParent(3, &message.ParentNode{EncryptionKey: pub})
	if err := tr.RemoveLeaf(2); err != nil {
		t.Fatal(err)
	}
	if !tr.IsBlank(3) || !tr.IsBlank(4) {
		t.Fatal("remove did not blank the leaf and its path")
	}
	tr.setParent(3, &message.ParentNode{EncryptionKey: pub})
	if l, _ := tr.AddLeaf(fakeLeaf(rng)); l != 2 {
		t.Fatalf("add did not reuse the leftmost blank leaf: %d", l)
	}
	if got := tr.Parent(3).UnmergedLeaves; len(got) != 1 || got[0] != 2 {
		t.Fatalf("unmerged leaves at node 3 = %v", got)
	}
	if got := tr.Resolution(3); !slices.Equal(got, []treemath.NodeIndex{3, 4}) {
		t.Fatalf("resolution(3) = %v", got)
	}
	for _, l := range []treemath.LeafIndex{4, 3} {
		if err := tr.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if tr.LeafCount() != 4 {
		t.Fatalf("%d leaves after removing the right half, want 4", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(3); !errors.Is(err, ErrBlankLeaf) {
		t.Fatalf("removing a blank leaf: %v", err)
	}
	if err := tr.RemoveLeaf(40); !errors.Is(err, ErrLeafIndex) {
		t.Fatalf("removing outside the tree: %v", err)
	}
	if err := tr.UpdateLeaf(3, fakeLeaf(rng)); !errors.Is(err, ErrBlankLeaf) {
		t.Fatalf("updating a blank leaf: %v", err)
	}
	bad := fakeLeaf(rng)
	bad.Source = 9
	if _, err := tr.AddLeaf(bad); !errors.Is(err, ErrInvalidLeaf) {
		t.Fatalf("unencodable leaf: %v", err)
	}
	for _, l := range []treemath.LeafIndex{2, 1} {
		if err := tr.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if tr.LeafCount() != 1 || tr.Width() != 1 || tr.Root() != 0 {
		t.Fatalf("one member left in a tree of %d leaves", tr.LeafCount())
	}
}

func TestFilteredDirectPath(t *testing.T) {
	// The example of RFC 9420, Section 4.1.2: leaves A B _ _ E F G _,
	// parents T (1), X (9) and Y (11) set, U (3), V (5), Z (13) blank.
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	rng := rand.New(rand.NewPCG(5, 6))
	tr := &Tree{cs: cs, h: cs.HashSize()}
	tr.resize(8)
	for _, l := range []int{0, 1, 4, 5, 6} {
		tr.leaves[l] = fakeLeaf(rng)
	}
	for _, x := range []int{1, 7, 9, 11} {
		tr.parents[x>>1] = &message.ParentNode{EncryptionKey: fakeLeaf(rng).EncryptionKey}
	}
	want := map[treemath.LeafIndex][]treemath.NodeIndex{
		0: {1, 7}, 1: {1, 7}, 4: {9, 11, 7}, 5: {9, 11, 7}, 6: {11, 7},
	}
	for l, w := range want {
		if got, _ := tr.FilteredDirectPath(l); !slices.Equal(got, w) {
			t.Errorf("filtered direct path of %d = %v, want %v", l, got, w)
		}
	}
}

func TestPrivateKeysMarshal(t *testing.T) {
	cs, _ := suite.Get(suite.P256AES128GCMSHA256P256)
	b := buildTree(t, cs, 4)
	k := b.keys[2] // the last committer: leaf 2 and nodes 5 and 3
	if !slices.Equal(k.Nodes(), []treemath.NodeIndex{3, 4, 5}) {
		t.Fatalf("member 2 holds %v", k.Nodes())
	}
	data, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalPrivateKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Check(b.tree); err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(again, data) {
		t.Fatal("re-encoding differs")
	}
	for _, bad := range [][]byte{nil, data[:len(data)-1], append(bytes.Clone(data), 0), append([]byte{2}, data[1:]...)} {
		if _, err := UnmarshalPrivateKeys(bad); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
	// Destroy zeroes the key bytes in place.
	c := back.Clone()
	held := c.keys[0].priv
	c.Destroy()
	if !bytes.Equal(held, make([]byte, len(held))) || len(c.Nodes()) != 0 {
		t.Fatal("Destroy left key material")
	}
	if err := back.Check(b.tree); err != nil {
		t.Fatal("destroying a clone affected the original")
	}
	// Prune drops keys for nodes that changed and zeroes them.
	tr := b.tree.Clone()
	tr.BlankPath(2)
	root := back.keys[0].priv
	back.Prune(tr)
	if !slices.Equal(back.Nodes(), []treemath.NodeIndex{4}) || !bytes.Equal(root, make([]byte, len(root))) {
		t.Fatalf("after pruning: %v", back.Nodes())
	}
}

func TestSetPathSecretRejects(t *testing.T) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	b := buildTree(t, cs, 5)
	tr := b.tree
	// Leaf 3 commits adding a member at leaf 5, who joins with the path
	// secret of their lowest common ancestor.
	leaf, _, priv := newLeaf(t, cs, "joiner")
	l, err := tr.AddLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	template := *tr.Leaf(3)
	res, err := tr.GenerateUpdatePath(3, PathParams{Rand: bytes.NewReader(bytes.Repeat([]byte{9}, 32)), Signer: b.signers[3], GroupID: testGroup, Leaf: &template, Exclude: []treemath.LeafIndex{l}, GroupContext: testCtx(cs)})
	if err != nil {
		t.Fatal(err)
	}
	secret, x, ok := res.PathSecret(l)
	if !ok || x != treemath.CommonAncestor(treemath.LeafIndex(3).Node(), l.Node()) {
		t.Fatalf("path secret for %d at node %d (%v)", l, x, ok)
	}
	// The path carries nothing for the excluded new member.
	ctx, _ := testCtx(cs)(tr.TreeHash())
	joiner, _ := NewPrivateKeys(cs, l, priv)
	if _, err := tr.DecryptPath(joiner, 3, res.Path, []treemath.LeafIndex{l}, ctx); !errors.Is(err, ErrNoPathKey) {
		t.Fatalf("excluded member decrypting: %v", err)
	}
	wrong := bytes.Clone(secret)
	wrong[0] ^= 1
	if err := joiner.SetPathSecret(tr, x, wrong); !errors.Is(err, ErrPrivateKeys) {
		t.Fatalf("wrong path secret: %v", err)
	}
	if err := joiner.SetPathSecret(tr, 1, secret); !errors.Is(err, ErrPrivateKeys) {
		t.Fatalf("node not above the member: %v", err)
	}
	if !slices.Equal(joiner.Nodes(), []treemath.NodeIndex{l.Node()}) {
		t.Fatalf("failed calls changed the keys: %v", joiner.Nodes())
	}
	if err := joiner.SetPathSecret(tr, x, secret); err != nil {
		t.Fatal(err)
	}
	if !joiner.Has(tr.Root()) || joiner.Check(tr) != nil {
		t.Fatalf("joiner keys %v do not reach the root", joiner.Nodes())
	}
	// The committer's keys and the joiner's agree on the shared nodes.
	for _, n := range joiner.Nodes() {
		if n == l.Node() {
			continue
		}
		a, _ := joiner.key(n)
		c, ok := res.Keys.key(n)
		if !ok || !bytes.Equal(a.priv, c.priv) {
			t.Fatalf("node %d: keys differ", n)
		}
	}
}
