package tree

import (
	crand "crypto/rand"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// bigTree is a valid tree of many members, built directly rather than by
// thousands of commits: every parent with members on both sides is set, as
// if each member had committed in turn from left to right, so the setter of
// a parent is its rightmost member and every parent hash chain is intact.
type bigTree struct {
	cs      *suite.Suite
	tree    *Tree
	signers []*suite.Signer
	privs   []HPKEPrivateKey // by node index, for non-blank nodes
}

var (
	bigTrees   = map[int]*bigTree{}
	bigTreesMu sync.Mutex
)

func getBigTree(tb testing.TB, members int) *bigTree {
	tb.Helper()
	bigTreesMu.Lock()
	defer bigTreesMu.Unlock()
	if bt, ok := bigTrees[members]; ok {
		return bt
	}
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	n := 1
	for n < members {
		n *= 2
	}
	bt := &bigTree{cs: cs, tree: &Tree{cs: cs, h: cs.HashSize()}, signers: make([]*suite.Signer, members)}
	bt.tree.resize(n)
	bt.privs = make([]HPKEPrivateKey, bt.tree.Width())
	key := func(x treemath.NodeIndex) message.HPKEPublicKey {
		priv, pub, err := cs.GenerateHPKEKey()
		if err != nil {
			tb.Fatal(err)
		}
		bt.privs[x] = priv
		return pub
	}
	junk := func() []byte {
		b := make([]byte, cs.HashSize())
		crand.Read(b)
		return b
	}
	hasMember := func(x treemath.NodeIndex) bool {
		lo, _ := leafRange(x)
		return int(lo) < members
	}
	var fin func(x treemath.NodeIndex, ph []byte)
	fin = func(x treemath.NodeIndex, ph []byte) {
		if !hasMember(x) {
			return
		}
		if x.IsLeaf() {
			l := x.Leaf()
			sigPriv, _, err := cs.GenerateSignatureKey(crand.Reader)
			if err != nil {
				tb.Fatal(err)
			}
			signer, _ := cs.NewSigner(sigPriv)
			bt.signers[l] = signer
			leaf := &message.LeafNode{
				EncryptionKey: key(x),
				SignatureKey:  signer.Public(),
				Credential:    message.NewBasicCredential(fmt.Appendf(nil, "member %d", l)),
				Capabilities: message.Capabilities{
					Versions:     []message.ProtocolVersion{message.MLS10},
					CipherSuites: []suite.ID{cs.ID()},
					Credentials:  []message.CredentialType{message.CredentialBasic},
				},
				Source:     message.SourceCommit,
				ParentHash: ph,
			}
			if err := leaf.Sign(signer, testGroup, l); err != nil {
				tb.Fatal(err)
			}
			bt.tree.leaves[l] = leaf
			return
		}
		if !hasMember(x.Right()) {
			// Blank: the committers below never had a copath member on
			// the right.
			fin(x.Left(), ph)
			return
		}
		p := &message.ParentNode{EncryptionKey: key(x), ParentHash: ph}
		bt.tree.parents[x>>1] = p
		fin(x.Left(), junk())
		fin(x.Right(), parentHashOf(cs, p.EncryptionKey, p.ParentHash, bt.tree.nodeHash(x.Left())))
	}
	fin(bt.tree.Root(), nil)
	clear(bt.tree.valid)
	if err := bt.tree.Clone().Validate(ValidateOptions{GroupID: testGroup}); err != nil {
		tb.Fatalf("constructed tree invalid: %v", err)
	}
	bigTrees[members] = bt
	return bt
}

// keysOf returns the private keys member l holds in the constructed tree.
func (bt *bigTree) keysOf(tb testing.TB, l treemath.LeafIndex) *PrivateKeys {
	k, err := NewPrivateKeys(bt.cs, l, bt.privs[l.Node()])
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range l.Node().DirectPath(bt.tree.LeafCount()) {
		if bt.tree.Parent(x) != nil {
			pub, _ := bt.cs.HPKEPublicKey(bt.privs[x])
			k.set(x, append(HPKEPrivateKey(nil), bt.privs[x]...), pub)
		}
	}
	if err := k.Check(bt.tree); err != nil {
		tb.Fatal(err)
	}
	return k
}

var benchSizes = []int{1000, 10000}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f under b.Loop and also reports the CPU time per operation,
// which stays meaningful when other processes compete for the cores (wall
// time per op is then inflated); on an idle machine wall time is about CPU
// time divided by the cores a parallel step can use.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start, n := cpuTime(), 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(n), "cpu-ns/op")
}

// BenchmarkTreeHashAfterPathChange measures the tree hash after one member's
// path and leaf changed, with the rest of the tree cached.
func BenchmarkTreeHashAfterPathChange(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			bt := getBigTree(b, size)
			tr := bt.tree.Clone()
			tr.TreeHash()
			l := treemath.LeafIndex(size / 3)
			path, _ := tr.FilteredDirectPath(l)
			// Two alternating versions of the path, so each round is a
			// real change.
			var versions [2][]*message.ParentNode
			var leaves [2]*message.LeafNode
			for v := range versions {
				for _, x := range path {
					p := *tr.Parent(x)
					p.ParentHash = []byte{byte(v)}
					versions[v] = append(versions[v], &p)
				}
				leaf := *tr.Leaf(l)
				leaf.Signature = []byte{byte(v)}
				leaves[v] = &leaf
			}
			i := 0
			loop(b, func() {
				v := i & 1
				for j, x := range path {
					tr.setParent(x, versions[v][j])
				}
				tr.setLeaf(l, leaves[v])
				_ = tr.TreeHash()
				i++
			})
			b.ReportMetric(float64(len(path)+1), "nodes/op")
		})
	}
}

func benchGenerate(b *testing.B, bt *bigTree, tr *Tree, from treemath.LeafIndex) *PathResult {
	template := *tr.Leaf(from)
	res, err := tr.GenerateUpdatePath(from, PathParams{
		Rand: crand.Reader, Signer: bt.signers[from], GroupID: testGroup, Leaf: &template, GroupContext: testCtx(bt.cs),
	})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkGenerateUpdatePath measures a committer refreshing its path:
// key derivation, parent hashes, signing, tree hash and encryption.
func BenchmarkGenerateUpdatePath(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			bt := getBigTree(b, size)
			tr := bt.tree.Clone()
			tr.TreeHash()
			from := treemath.LeafIndex(size / 3)
			loop(b, func() {
				res := benchGenerate(b, bt, tr, from)
				res.Destroy()
				res.Keys.Destroy()
			})
		})
	}
}

// BenchmarkProcessUpdatePath measures a member processing a commit's path:
// validating the committer's leaf node, merging, rehashing and decrypting.
// The tree clone a group makes to stay atomic is included.
func BenchmarkProcessUpdatePath(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			bt := getBigTree(b, size)
			base := bt.tree.Clone()
			base.TreeHash()
			from, me := treemath.LeafIndex(size/3), treemath.LeafIndex(size-1)
			res := benchGenerate(b, bt, base.Clone(), from)
			keys := bt.keysOf(b, me)
			loop(b, func() {
				tr := base.Clone()
				k := keys.Clone()
				if err := tr.ValidateLeafNode(&res.Path.LeafNode, LeafUse{Source: message.SourceCommit, Leaf: from}, ValidateOptions{GroupID: testGroup}); err != nil {
					b.Fatal(err)
				}
				if _, err := tr.ProcessUpdatePath(k, from, res.Path, nil, testCtx(bt.cs)); err != nil {
					b.Fatal(err)
				}
				k.Destroy()
			})
		})
	}
}

// BenchmarkDecodeValidate measures what a joiner does with a received
// tree: decode it and validate everything, including every leaf signature
// and the root tree hash.
func BenchmarkDecodeValidate(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			bt := getBigTree(b, size)
			data, err := bt.tree.Bytes()
			if err != nil {
				b.Fatal(err)
			}
			th := bt.tree.Clone().TreeHash()
			b.SetBytes(int64(len(data)))
			loop(b, func() {
				tr, err := Decode(bt.cs, data)
				if err != nil {
					b.Fatal(err)
				}
				if err := tr.Validate(ValidateOptions{GroupID: testGroup, TreeHash: th}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkClone measures the copy a group makes before applying a commit.
func BenchmarkClone(b *testing.B) {
	bt := getBigTree(b, 10000)
	tr := bt.tree.Clone()
	tr.TreeHash()
	loop(b, func() { _ = tr.Clone() })
}

func TestBigTreeValid(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1,000-member tree")
	}
	bt := getBigTree(t, 1000)
	// Every member other than the committer processes a path from it.
	base := bt.tree.Clone()
	from := treemath.LeafIndex(333)
	gen := base.Clone()
	template := *gen.Leaf(from)
	res, err := gen.GenerateUpdatePath(from, PathParams{Rand: crand.Reader, Signer: bt.signers[from], GroupID: testGroup, Leaf: &template, GroupContext: testCtx(bt.cs)})
	if err != nil {
		t.Fatal(err)
	}
	for _, me := range []treemath.LeafIndex{0, 332, 334, 500, 999} {
		tr := base.Clone()
		commit, err := tr.ProcessUpdatePath(bt.keysOf(t, me), from, res.Path, nil, testCtx(bt.cs))
		if err != nil {
			t.Fatalf("member %d: %v", me, err)
		}
		if string(commit) != string(res.CommitSecret) {
			t.Fatalf("member %d: commit secret differs", me)
		}
	}
}

// BenchmarkGenerateUpdatePathAfterMassAdd measures the worst realistic
// commit: the first path after a creator added every member without one,
// when all parent nodes are blank and the path secrets must be encrypted to
// every other member individually.
func BenchmarkGenerateUpdatePathAfterMassAdd(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
			leaf, signer, _ := newLeaf(b, cs, "creator")
			tr, err := New(cs, leaf)
			if err != nil {
				b.Fatal(err)
			}
			for range size - 1 {
				_, pub, err := cs.GenerateHPKEKey()
				if err != nil {
					b.Fatal(err)
				}
				m := *leaf
				m.EncryptionKey = pub
				if _, err := tr.AddLeaf(&m); err != nil {
					b.Fatal(err)
				}
			}
			tr.TreeHash()
			template := *leaf
			loop(b, func() {
				c := tr.Clone()
				res, err := c.GenerateUpdatePath(0, PathParams{Rand: crand.Reader, Signer: signer, GroupID: testGroup, Leaf: &template, GroupContext: testCtx(cs)})
				if err != nil {
					b.Fatal(err)
				}
				res.Destroy()
				res.Keys.Destroy()
			})
			b.ReportMetric(float64(size-1), "encryptions/op")
		})
	}
}
