package tree

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"testing"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

var testGroup = message.GroupID("test group")

// testCtx is a fixed provisional group context encoder for tests.
func testCtx(cs *suite.Suite) func([]byte) ([]byte, error) {
	return func(th []byte) ([]byte, error) {
		gc := message.GroupContext{Version: message.MLS10, CipherSuite: cs.ID(), GroupID: testGroup, Epoch: 7, TreeHash: th}
		return gc.Bytes()
	}
}

// built is a tree grown like the vectors' get_tree(n): leaf i commits
// adding leaf i+1, so it has parent nodes, unmerged leaves and commit
// leaves.
type built struct {
	cs      *suite.Suite
	tree    *Tree
	signers []*suite.Signer
	keys    []*PrivateKeys
}

func buildTree(t testing.TB, cs *suite.Suite, n int) *built {
	t.Helper()
	leaf, signer, priv := newLeaf(t, cs, "m0")
	tr, err := New(cs, leaf)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewPrivateKeys(cs, 0, priv)
	if err != nil {
		t.Fatal(err)
	}
	b := &built{cs: cs, tree: tr, signers: []*suite.Signer{signer}, keys: []*PrivateKeys{k}}
	for i := 0; i < n-1; i++ {
		leaf, signer, priv := newLeaf(t, cs, "m")
		l, err := tr.AddLeaf(leaf)
		if err != nil {
			t.Fatal(err)
		}
		template := *tr.Leaf(treemath.LeafIndex(i))
		res, err := tr.GenerateUpdatePath(treemath.LeafIndex(i), PathParams{
			Rand: crand.Reader, Signer: b.signers[i], GroupID: testGroup, Leaf: &template,
			Exclude: []treemath.LeafIndex{l}, GroupContext: testCtx(cs),
		})
		if err != nil {
			t.Fatal(err)
		}
		b.keys[i].Destroy()
		b.keys[i] = res.Keys
		k, err := NewPrivateKeys(cs, l, priv)
		if err != nil {
			t.Fatal(err)
		}
		secret, x, _ := res.PathSecret(l)
		if err := k.SetPathSecret(tr, x, secret); err != nil {
			t.Fatal(err)
		}
		b.signers = append(b.signers, signer)
		b.keys = append(b.keys, k)
		res.Destroy()
		// The others do not process the path here; drop what it made
		// stale.
		for _, k := range b.keys {
			k.Prune(tr)
		}
	}
	return b
}

func mustValid(t *testing.T, tr *Tree) {
	t.Helper()
	if err := tr.Validate(ValidateOptions{GroupID: testGroup}); err != nil {
		t.Fatalf("valid tree rejected: %v", err)
	}
}

// expectNodeErr checks that err wraps want and names node x.
func expectNodeErr(t *testing.T, err, want error, x treemath.NodeIndex) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node != x {
		t.Fatalf("error %v does not name node %d", err, x)
	}
}

// withParent returns a copy of tr where the parent at x is replaced by f's
// change of a copy.
func withParent(tr *Tree, x treemath.NodeIndex, f func(p *message.ParentNode)) *Tree {
	c := tr.Clone()
	p := *c.Parent(x)
	f(&p)
	c.setParent(x, &p)
	return c
}

func withLeaf(tr *Tree, l treemath.LeafIndex, f func(n *message.LeafNode)) *Tree {
	c := tr.Clone()
	n := *c.Leaf(l)
	f(&n)
	c.setLeaf(l, &n)
	return c
}

func TestValidateRejects(t *testing.T) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	b := buildTree(t, cs, 7)
	tr := b.tree
	// A last member added without a path: leaf 7 is unmerged at nodes
	// 11 and 7 (the root), while node 13 between them is blank.
	last, _, _ := newLeaf(t, cs, "m7")
	if l, err := tr.AddLeaf(last); err != nil || l != 7 {
		t.Fatalf("added at %d: %v", l, err)
	}
	mustValid(t, tr)
	root := tr.Root()
	for _, x := range []treemath.NodeIndex{root, 11} {
		if p := tr.Parent(x); p == nil || len(p.UnmergedLeaves) != 1 || p.UnmergedLeaves[0] != 7 {
			t.Fatalf("unexpected shape at node %d: %+v", x, p)
		}
	}
	if !tr.IsBlank(13) {
		t.Fatal("node 13 not blank")
	}

	t.Run("tree hash", func(t *testing.T) {
		err := tr.Clone().Validate(ValidateOptions{GroupID: testGroup, TreeHash: make([]byte, 32)})
		if !errors.Is(err, ErrTreeHash) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("parent hash field", func(t *testing.T) {
		c := withParent(tr, 3, func(p *message.ParentNode) { p.ParentHash = bytes.Repeat([]byte{1}, 32) })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrParentHash, 3)
	})
	t.Run("parent key", func(t *testing.T) {
		_, pub, _ := cs.GenerateHPKEKey()
		c := withParent(tr, root, func(p *message.ParentNode) { p.EncryptionKey = pub })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrParentHash, root)
	})
	t.Run("unmerged leaf dropped", func(t *testing.T) {
		c := withParent(tr, root, func(p *message.ParentNode) { p.UnmergedLeaves = nil })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrParentHash, root)
	})
	t.Run("unmerged leaf blank", func(t *testing.T) {
		c := tr.Clone()
		c.setLeaf(7, nil)
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrUnmergedLeaves, root)
	})
	t.Run("unmerged leaf not below", func(t *testing.T) {
		c := withParent(tr, 3, func(p *message.ParentNode) { p.UnmergedLeaves = []treemath.LeafIndex{5} })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrUnmergedLeaves, 3)
	})
	t.Run("unmerged leaf missing in between", func(t *testing.T) {
		// Leaf 7 is unmerged at the root; a non-blank node 13 between
		// them must list it too.
		_, pub, _ := cs.GenerateHPKEKey()
		c := tr.Clone()
		c.setParent(13, &message.ParentNode{EncryptionKey: pub})
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrUnmergedLeaves, 13)
	})
	t.Run("duplicate encryption key", func(t *testing.T) {
		c := withParent(tr, 3, func(p *message.ParentNode) { p.EncryptionKey = tr.Leaf(2).EncryptionKey })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrDuplicateKey, 3)
	})
	t.Run("duplicate signature key", func(t *testing.T) {
		c := withLeaf(tr, 4, func(n *message.LeafNode) { n.SignatureKey = tr.Leaf(1).SignatureKey })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrDuplicateKey, 8)
	})
	t.Run("signature", func(t *testing.T) {
		c := withLeaf(tr, 5, func(n *message.LeafNode) { n.Credential.Identity = []byte("mallory") })
		err := c.Validate(ValidateOptions{GroupID: testGroup})
		expectNodeErr(t, err, ErrInvalidLeaf, 10)
		if !errors.Is(err, suite.ErrInvalidSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("signature key format", func(t *testing.T) {
		c := withLeaf(tr, 5, func(n *message.LeafNode) { n.SignatureKey = n.SignatureKey[:31] })
		err := c.Validate(ValidateOptions{GroupID: testGroup})
		expectNodeErr(t, err, ErrInvalidLeaf, 10)
		if !errors.Is(err, suite.ErrInvalidKey) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong group", func(t *testing.T) {
		err := tr.Clone().Validate(ValidateOptions{GroupID: message.GroupID("other")})
		if !errors.Is(err, suite.ErrInvalidSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("required capabilities", func(t *testing.T) {
		ext, err := message.NewExtension(message.ExtensionRequiredCapabilities, &message.RequiredCapabilities{Extensions: []message.ExtensionType{0xF0F0}})
		if err != nil {
			t.Fatal(err)
		}
		err = tr.Clone().Validate(ValidateOptions{GroupID: testGroup, Extensions: message.Extensions{ext}})
		if !errors.Is(err, ErrIncompatible) || !errors.Is(err, message.ErrCapabilities) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("credential", func(t *testing.T) {
		bad := errors.New("unknown identity")
		err := tr.Clone().Validate(ValidateOptions{GroupID: testGroup, CheckCredential: func(l *message.LeafNode) error {
			if string(l.Credential.Identity) == "m0" {
				return bad
			}
			return nil
		}})
		expectNodeErr(t, err, bad, 0)
	})
	t.Run("credential type not supported by others", func(t *testing.T) {
		c := withLeaf(tr, 3, func(n *message.LeafNode) {
			n.Credential = message.Credential{Type: message.CredentialX509, Certificates: [][]byte{{1}}}
			n.Capabilities.Credentials = []message.CredentialType{message.CredentialBasic, message.CredentialX509}
		})
		err := c.Validate(ValidateOptions{GroupID: testGroup})
		if !errors.Is(err, ErrIncompatible) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		// Leaf 7 is covered by no parent hash (it is unmerged where it
		// would be), so only the leaf checks can catch this.
		c := withLeaf(tr, 7, func(n *message.LeafNode) { n.Lifetime = message.Lifetime{NotBefore: 10, NotAfter: 5} })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrInvalidLeaf, 14)
		if err := c.Validate(ValidateOptions{GroupID: testGroup}); !errors.Is(err, message.ErrLifetime) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("leaf under a parent hash", func(t *testing.T) {
		// Leaf 6 is in the original sibling subtree of node 11's parent
		// hash: changing it breaks the chain before signatures are
		// checked.
		c := withLeaf(tr, 6, func(n *message.LeafNode) { n.Lifetime = message.Lifetime{NotBefore: 10, NotAfter: 5} })
		expectNodeErr(t, c.Validate(ValidateOptions{GroupID: testGroup}), ErrParentHash, 11)
	})
	mustValid(t, tr)
}

func TestValidateLeafNode(t *testing.T) {
	cs, _ := suite.Get(suite.X25519ChaCha20Poly1305SHA256Ed25519)
	b := buildTree(t, cs, 5)
	tr := b.tree
	opts := ValidateOptions{GroupID: testGroup}

	fresh, _, _ := newLeaf(t, cs, "new")
	if err := tr.ValidateLeafNode(fresh, LeafUse{Source: message.SourceKeyPackage}, opts); err != nil {
		t.Fatalf("fresh key package leaf rejected: %v", err)
	}
	if err := tr.ValidateLeafNode(fresh, LeafUse{Source: message.SourceUpdate, Leaf: 1}, opts); !errors.Is(err, message.ErrLeafNodeSource) {
		t.Fatalf("wrong source: %v", err)
	}
	dup := *fresh
	dup.EncryptionKey = tr.Parent(3).EncryptionKey
	if err := tr.ValidateLeafNode(&dup, LeafUse{Source: message.SourceKeyPackage}, opts); !errors.Is(err, ErrDuplicateKey) && !errors.Is(err, ErrInvalidLeaf) {
		t.Fatalf("duplicate parent key: %v", err)
	}

	// An update must change the encryption key but may keep the
	// signature key.
	update := func(mod func(*message.LeafNode)) *message.LeafNode {
		n := *tr.Leaf(2)
		n.Source, n.Lifetime, n.ParentHash = message.SourceUpdate, message.Lifetime{}, nil
		mod(&n)
		if err := n.Sign(b.signers[2], testGroup, 2); err != nil {
			t.Fatal(err)
		}
		return &n
	}
	_, newPub, _ := cs.GenerateHPKEKey()
	if err := tr.ValidateLeafNode(update(func(n *message.LeafNode) { n.EncryptionKey = newPub }), LeafUse{Source: message.SourceUpdate, Leaf: 2}, opts); err != nil {
		t.Fatalf("valid update rejected: %v", err)
	}
	err := tr.ValidateLeafNode(update(func(*message.LeafNode) {}), LeafUse{Source: message.SourceUpdate, Leaf: 2}, opts)
	expectNodeErr(t, err, ErrDuplicateKey, 4)
	err = tr.ValidateLeafNode(update(func(n *message.LeafNode) { n.EncryptionKey = newPub }), LeafUse{Source: message.SourceUpdate, Leaf: 3}, opts)
	expectNodeErr(t, err, suite.ErrInvalidSignature, 6)
	if err := tr.ValidateLeafNode(fresh, LeafUse{Source: message.SourceUpdate, Leaf: 99}, opts); !errors.Is(err, ErrLeafIndex) {
		t.Fatalf("leaf out of range: %v", err)
	}
	stolen := *fresh
	stolen.SignatureKey = tr.Leaf(4).SignatureKey
	if err := tr.ValidateLeafNode(&stolen, LeafUse{Source: message.SourceKeyPackage}, opts); !errors.Is(err, ErrInvalidLeaf) && !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate signature key: %v", err)
	}
}

func TestMergeUpdatePathRejects(t *testing.T) {
	cs, _ := suite.Get(suite.P256AES128GCMSHA256P256)
	b := buildTree(t, cs, 6)
	base := b.tree
	sender := treemath.LeafIndex(1)
	gen := base.Clone()
	template := *gen.Leaf(sender)
	res, err := gen.GenerateUpdatePath(sender, PathParams{Rand: crand.Reader, Signer: b.signers[sender], GroupID: testGroup, Leaf: &template, GroupContext: testCtx(cs)})
	if err != nil {
		t.Fatal(err)
	}
	before := base.TreeHash()
	reject := func(name string, want error, mod func(p *message.UpdatePath)) {
		t.Helper()
		p := clonePath(res.Path)
		mod(p)
		c := base.Clone()
		err := c.MergeUpdatePath(sender, p, nil)
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
		if !bytes.Equal(c.TreeHash(), before) {
			t.Fatalf("%s: rejected path changed the tree", name)
		}
	}
	reject("missing node", ErrInvalidPath, func(p *message.UpdatePath) { p.Nodes = p.Nodes[1:] })
	reject("extra ciphertext", ErrInvalidPath, func(p *message.UpdatePath) {
		p.Nodes[0].EncryptedPathSecret = append(p.Nodes[0].EncryptedPathSecret, p.Nodes[0].EncryptedPathSecret[0])
	})
	reject("leaf parent hash", ErrParentHash, func(p *message.UpdatePath) { p.LeafNode.ParentHash = bytes.Repeat([]byte{7}, 32) })
	reject("source", ErrInvalidPath, func(p *message.UpdatePath) { p.LeafNode.Source = message.SourceUpdate })
	reject("key reused from the tree", ErrDuplicateKey, func(p *message.UpdatePath) { p.Nodes[0].EncryptionKey = base.Leaf(4).EncryptionKey })
	reject("key repeated in the path", ErrDuplicateKey, func(p *message.UpdatePath) { p.Nodes[1].EncryptionKey = p.Nodes[0].EncryptionKey })
	reject("invalid key", ErrInvalidPath, func(p *message.UpdatePath) { p.Nodes[0].EncryptionKey = []byte{4, 1, 2} })
	_, other, _ := cs.GenerateHPKEKey()
	reject("node key swapped", ErrParentHash, func(p *message.UpdatePath) { p.Nodes[0].EncryptionKey = other })

	// Decryption failures leave the member's keys as they were.
	merged := base.Clone()
	if err := merged.MergeUpdatePath(sender, res.Path, nil); err != nil {
		t.Fatal(err)
	}
	ctx, _ := testCtx(cs)(merged.TreeHash())
	recv := b.keys[4]
	snapshot, _ := recv.MarshalBinary()
	decryptReject := func(name string, want error, ctx []byte, mod func(p *message.UpdatePath)) {
		t.Helper()
		p := clonePath(res.Path)
		mod(p)
		if _, err := merged.DecryptPath(recv, sender, p, nil, ctx); !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
		if now, _ := recv.MarshalBinary(); !bytes.Equal(now, snapshot) {
			t.Fatalf("%s: keys changed", name)
		}
	}
	last := len(res.Path.Nodes) - 1
	decryptReject("ciphertext", ErrInvalidPath, ctx, func(p *message.UpdatePath) {
		for i := range p.Nodes {
			for j := range p.Nodes[i].EncryptedPathSecret {
				ct := &p.Nodes[i].EncryptedPathSecret[j]
				ct.Ciphertext = append([]byte(nil), ct.Ciphertext...)
				ct.Ciphertext[0] ^= 1
			}
		}
	})
	decryptReject("context", ErrInvalidPath, append(bytes.Clone(ctx), 0), func(*message.UpdatePath) {})
	decryptReject("derived key", ErrInvalidPath, ctx, func(p *message.UpdatePath) { p.Nodes[last].EncryptionKey = other })
	decryptReject("node count", ErrInvalidPath, ctx, func(p *message.UpdatePath) { p.Nodes = p.Nodes[:last] })
	if _, err := merged.DecryptPath(res.Keys, sender, res.Path, nil, ctx); !errors.Is(err, ErrNoPathKey) {
		t.Fatalf("committer decrypting its own path: %v", err)
	}
	empty, _ := NewPrivateKeys(cs, 4, mustPriv(t, cs))
	if _, err := merged.DecryptPath(empty, sender, res.Path, nil, ctx); !errors.Is(err, ErrNoPathKey) {
		t.Fatalf("member without keys: %v", err)
	}
	if _, err := merged.DecryptPath(recv, sender, res.Path, nil, ctx); err != nil {
		t.Fatalf("valid path: %v", err)
	}
}

func mustPriv(t *testing.T, cs *suite.Suite) HPKEPrivateKey {
	priv, _, err := cs.GenerateHPKEKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func clonePath(p *message.UpdatePath) *message.UpdatePath {
	data, err := codec.Marshal(p.Encode)
	if err != nil {
		panic(err)
	}
	var out message.UpdatePath
	if err := decodeUpdatePath(data, &out); err != nil {
		panic(err)
	}
	return &out
}

func TestDecodeRejects(t *testing.T) {
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	b := buildTree(t, cs, 3)
	rt := b.tree.RatchetTree()
	enc := func(rt message.RatchetTree) []byte {
		data, err := codec.Marshal(rt.Encode)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	good := enc(rt)
	if _, err := Decode(cs, good); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":          enc(nil),
		"trailing blank": enc(append(slicesClone(rt), nil)),
		"parent at leaf": enc(message.RatchetTree{rt[1]}),
		"trailing bytes": append(bytes.Clone(good), 0),
	} {
		if _, err := Decode(cs, data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := FromRatchetTree(cs, message.RatchetTree{rt[1]}); !errors.Is(err, ErrMalformedTree) {
		t.Errorf("parent at leaf position: %v", err)
	}
	bad := slicesClone(rt)
	p := *bad[3].Parent
	p.UnmergedLeaves = []treemath.LeafIndex{9}
	bad[3] = &message.Node{Parent: &p}
	if _, err := FromRatchetTree(cs, bad); !errors.Is(err, ErrMalformedTree) {
		t.Errorf("unmerged leaf outside the tree: %v", err)
	}
}

func slicesClone(rt message.RatchetTree) message.RatchetTree {
	return append(message.RatchetTree(nil), rt...)
}
