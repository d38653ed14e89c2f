package tree

import (
	"bytes"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// newLeaf returns a signed key-package leaf node with fresh keys, its
// signer and its HPKE private key.
func newLeaf(t testing.TB, cs *suite.Suite, name string) (*message.LeafNode, *suite.Signer, HPKEPrivateKey) {
	t.Helper()
	sigPriv, _, err := cs.GenerateSignatureKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cs.NewSigner(sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	encPriv, encPub, err := cs.GenerateHPKEKey()
	if err != nil {
		t.Fatal(err)
	}
	leaf := &message.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.Public(),
		Credential:    message.NewBasicCredential([]byte(name)),
		Capabilities: message.Capabilities{
			Versions:     []message.ProtocolVersion{message.MLS10},
			CipherSuites: []suite.ID{cs.ID()},
			Credentials:  []message.CredentialType{message.CredentialBasic},
		},
		Source:   message.SourceKeyPackage,
		Lifetime: message.Lifetime{NotBefore: 0, NotAfter: 1 << 62},
	}
	if err := leaf.Sign(signer, nil, 0); err != nil {
		t.Fatal(err)
	}
	return leaf, signer, encPriv
}

// simMember is one member's view in the simulation: its own copy of the
// tree and its private keys.
type simMember struct {
	name   string
	tree   *Tree
	keys   *PrivateKeys
	signer *suite.Signer
}

// simGroup runs random epochs over a set of members that each keep their
// own tree, and checks after every epoch that all views agree.
type simGroup struct {
	t       *testing.T
	cs      *suite.Suite
	rng     *rand.Rand
	rd      *rand.ChaCha8 // leaf secrets
	gid     message.GroupID
	epoch   uint64
	members map[treemath.LeafIndex]*simMember
	next    int
}

func (g *simGroup) ctx(treeHash []byte) ([]byte, error) {
	gc := message.GroupContext{
		Version: message.MLS10, CipherSuite: g.cs.ID(), GroupID: g.gid, Epoch: g.epoch + 1,
		TreeHash: treeHash, ConfirmedTranscriptHash: []byte("cth"),
	}
	return gc.Bytes()
}

func newSimGroup(t *testing.T, cs *suite.Suite, seed uint64) *simGroup {
	g := &simGroup{t: t, cs: cs, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), gid: message.GroupID("sim"), members: map[treemath.LeafIndex]*simMember{}}
	g.rd = rand.NewChaCha8([32]byte{byte(seed)})
	leaf, signer, priv := newLeaf(t, cs, "m0")
	tr, err := New(cs, leaf)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewPrivateKeys(cs, 0, priv)
	if err != nil {
		t.Fatal(err)
	}
	g.members[0] = &simMember{name: "m0", tree: tr, keys: keys, signer: signer}
	g.next = 1
	return g
}

func (g *simGroup) randomMember() treemath.LeafIndex {
	var ids []treemath.LeafIndex
	for l := range g.members {
		ids = append(ids, l)
	}
	// Map iteration order is random but not seeded; sort for replayable runs.
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids[g.rng.IntN(len(ids))]
}

// pending is a new member waiting for the commit that adds it.
type pending struct {
	leaf   *message.LeafNode
	signer *suite.Signer
	priv   HPKEPrivateKey
	name   string
}

// epochStep performs one commit: removes, updates and adds chosen at
// random, with or without a path (a path when the rules require one).
func (g *simGroup) epochStep() {
	t := g.t
	if g.rng.IntN(10) == 0 {
		g.externalJoin()
		return
	}
	committer := g.randomMember()
	var removes []treemath.LeafIndex
	var adds []pending
	type upd struct {
		who  treemath.LeafIndex
		leaf *message.LeafNode
		priv HPKEPrivateKey
	}
	var updates []upd
	switch op := g.rng.IntN(10); {
	case op < 4 || len(g.members) < 3:
		for range 1 + g.rng.IntN(3) {
			name := fmt.Sprintf("m%d", g.next)
			g.next++
			leaf, signer, priv := newLeaf(t, g.cs, name)
			adds = append(adds, pending{leaf, signer, priv, name})
		}
	case op < 7:
		for range 1 + g.rng.IntN(2) {
			v := g.randomMember()
			if v != committer && !containsLeaf(removes, v) && len(g.members)-len(removes) > 1 {
				removes = append(removes, v)
			}
		}
	case op < 8:
		u := g.randomMember()
		if u != committer {
			m := g.members[u]
			priv, pub, err := g.cs.GenerateHPKEKey()
			if err != nil {
				t.Fatal(err)
			}
			leaf := *m.tree.Leaf(u)
			leaf.EncryptionKey = pub
			leaf.Source = message.SourceUpdate
			leaf.Lifetime = message.Lifetime{}
			leaf.ParentHash = nil
			if err := leaf.Sign(m.signer, g.gid, u); err != nil {
				t.Fatal(err)
			}
			updates = append(updates, upd{u, &leaf, priv})
		}
	}
	withPath := len(removes) > 0 || len(updates) > 0 || len(adds) == 0 || g.rng.IntN(2) == 0

	// Every member applies the proposals to its own tree: updates, then
	// removes, then adds.
	var added []treemath.LeafIndex
	for l, m := range g.members {
		tr := m.tree
		for _, u := range updates {
			if err := tr.ValidateLeafNode(u.leaf, LeafUse{Source: message.SourceUpdate, Leaf: u.who}, ValidateOptions{GroupID: g.gid}); err != nil {
				t.Fatalf("member %d: update of %d invalid: %v", l, u.who, err)
			}
			if err := tr.UpdateLeaf(u.who, u.leaf); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range removes {
			if err := tr.RemoveLeaf(r); err != nil {
				t.Fatal(err)
			}
		}
		var mine []treemath.LeafIndex
		for _, a := range adds {
			if err := tr.ValidateLeafNode(a.leaf, LeafUse{Source: message.SourceKeyPackage}, ValidateOptions{GroupID: g.gid}); err != nil {
				t.Fatalf("member %d: add invalid: %v", l, err)
			}
			idx, err := tr.AddLeaf(a.leaf)
			if err != nil {
				t.Fatal(err)
			}
			mine = append(mine, idx)
		}
		if added == nil {
			added = mine
		} else if fmt.Sprint(added) != fmt.Sprint(mine) {
			t.Fatalf("members placed new leaves differently: %v vs %v", added, mine)
		}
		for _, u := range updates {
			if u.who == l {
				if err := m.keys.SetLeafKey(u.priv); err != nil {
					t.Fatal(err)
				}
			}
		}
		m.keys.Prune(tr)
	}
	for _, r := range removes {
		g.members[r].keys.Destroy()
		delete(g.members, r)
	}

	cm := g.members[committer]
	var res *PathResult
	if withPath {
		template := *cm.tree.Leaf(committer)
		var err error
		res, err = cm.tree.GenerateUpdatePath(committer, PathParams{
			Rand: g.rd, Signer: cm.signer, GroupID: g.gid, Leaf: &template, Exclude: added, GroupContext: g.ctx,
		})
		if err != nil {
			t.Fatalf("generate: %v", err)
		}
		if err := cm.tree.VerifyParentHashes(); err != nil {
			t.Fatalf("committer's tree not parent-hash valid after its path: %v", err)
		}
		cm.keys.Destroy()
		cm.keys = res.Keys
		for l, m := range g.members {
			if l == committer {
				continue
			}
			if err := m.tree.ValidateLeafNode(&res.Path.LeafNode, LeafUse{Source: message.SourceCommit, Leaf: committer}, ValidateOptions{GroupID: g.gid}); err != nil {
				t.Fatalf("member %d: committer's leaf invalid: %v", l, err)
			}
			commit, err := m.tree.ProcessUpdatePath(m.keys, committer, res.Path, added, g.ctx)
			if err != nil {
				t.Fatalf("member %d processing path of %d: %v", l, committer, err)
			}
			if !bytes.Equal(commit, res.CommitSecret) {
				t.Fatalf("member %d: commit secret differs from the committer's", l)
			}
			m.keys.Prune(m.tree)
		}
	}

	// New members join from the committer's tree, sent as ratchet_tree.
	for i, a := range adds {
		l := added[i]
		data, err := cm.tree.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		tr, err := Decode(g.cs, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Validate(ValidateOptions{GroupID: g.gid, TreeHash: cm.tree.TreeHash()}); err != nil {
			t.Fatalf("joiner %d: tree invalid: %v", l, err)
		}
		keys, err := NewPrivateKeys(g.cs, l, a.priv)
		if err != nil {
			t.Fatal(err)
		}
		if res != nil {
			secret, x, ok := res.PathSecret(l)
			if !ok {
				t.Fatalf("no path secret for new member %d", l)
			}
			if err := keys.SetPathSecret(tr, x, secret); err != nil {
				t.Fatalf("joiner %d: path secret: %v", l, err)
			}
		}
		g.members[l] = &simMember{name: a.name, tree: tr, keys: keys, signer: a.signer}
	}
	if res != nil {
		res.Destroy()
	}
	g.epoch++
	g.check(withPath)
}

// externalJoin has a new client join by an external commit: it takes the
// leftmost free leaf of a copy of the tree and sends a path from it.
func (g *simGroup) externalJoin() {
	t := g.t
	name := fmt.Sprintf("m%d", g.next)
	g.next++
	leaf, signer, _ := newLeaf(t, g.cs, name)
	data, err := g.members[g.randomMember()].tree.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Decode(g.cs, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Validate(ValidateOptions{GroupID: g.gid}); err != nil {
		t.Fatalf("external joiner: tree invalid: %v", err)
	}
	l, err := tr.FreeLeaf()
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.GenerateUpdatePath(l, PathParams{Rand: g.rd, Signer: signer, GroupID: g.gid, Leaf: leaf, GroupContext: g.ctx})
	if err != nil {
		t.Fatalf("external joiner: %v", err)
	}
	for m, mem := range g.members {
		free, err := mem.tree.FreeLeaf()
		if err != nil || free != l {
			t.Fatalf("member %d: free leaf %d, joiner took %d (%v)", m, free, l, err)
		}
		commit, err := mem.tree.ProcessUpdatePath(mem.keys, l, res.Path, nil, g.ctx)
		if err != nil {
			t.Fatalf("member %d processing external commit: %v", m, err)
		}
		if !bytes.Equal(commit, res.CommitSecret) {
			t.Fatalf("member %d: external commit secret differs", m)
		}
		mem.keys.Prune(mem.tree)
	}
	g.members[l] = &simMember{name: name, tree: tr, keys: res.Keys, signer: signer}
	res.Destroy()
	g.epoch++
	g.check(true)
}

func containsLeaf(ls []treemath.LeafIndex, l treemath.LeafIndex) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// check verifies that all members hold the same tree, that it is valid,
// that caches match full recomputation, and that each member's keys fit,
// including the root's key after a commit with a path.
func (g *simGroup) check(withPath bool) {
	t := g.t
	var ref []byte
	for l, m := range g.members {
		th := m.tree.TreeHash()
		if ref == nil {
			ref = th
		} else if !bytes.Equal(th, ref) {
			t.Fatalf("epoch %d: member %d's tree hash differs", g.epoch, l)
		}
		checkCache(t, m.tree)
		if err := m.keys.Check(m.tree); err != nil {
			t.Fatalf("epoch %d: member %d: %v", g.epoch, l, err)
		}
		if withPath && !m.keys.Has(m.tree.Root()) {
			t.Fatalf("epoch %d: member %d does not know the root's key after a path", g.epoch, l)
		}
		if m.tree.Leaf(l) == nil || m.tree.MemberCount() != len(g.members) {
			t.Fatalf("epoch %d: member %d: membership differs", g.epoch, l)
		}
	}
	for _, m := range g.members {
		if err := m.tree.Validate(ValidateOptions{GroupID: g.gid}); err != nil {
			t.Fatalf("epoch %d: tree invalid: %v", g.epoch, err)
		}
		break
	}
}

func TestSimulatedGroups(t *testing.T) {
	for _, id := range suite.IDs() {
		cs, _ := suite.Get(id)
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			epochs := 60
			if testing.Short() {
				epochs = 15
			}
			g := newSimGroup(t, cs, uint64(id))
			for range epochs {
				g.epochStep()
			}
			t.Logf("%d epochs, %d members, %d leaves", g.epoch, len(g.members), g.members[g.randomMember()].tree.LeafCount())
		})
	}
}
