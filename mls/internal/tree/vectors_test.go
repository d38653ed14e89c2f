package tree

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
	"github.com/parley-im/parley/mls/internal/vectors"
)

type hex = vectors.Hex

func TestTreeValidationVectors(t *testing.T) {
	var cases []struct {
		CipherSuite suite.ID   `json:"cipher_suite"`
		Tree        hex        `json:"tree"`
		GroupID     hex        `json:"group_id"`
		Resolutions [][]uint32 `json:"resolutions"`
		TreeHashes  []hex      `json:"tree_hashes"`
	}
	vectors.Load(t, "tree-validation.json", &cases)
	var c vectors.Counter
	c.Report(t, "tree-validation.json")
	for i, tc := range cases {
		cs, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		t.Run(fmt.Sprintf("%d/suite%d", i, tc.CipherSuite), func(t *testing.T) {
			tr, err := Decode(cs, tc.Tree)
			if err != nil {
				t.Fatal(err)
			}
			if int(tr.Width()) != len(tc.TreeHashes) || len(tc.Resolutions) != len(tc.TreeHashes) {
				t.Fatalf("width %d, vector has %d hashes and %d resolutions", tr.Width(), len(tc.TreeHashes), len(tc.Resolutions))
			}
			for x := range tr.Width() {
				res := tr.Resolution(treemath.NodeIndex(x))
				want := tc.Resolutions[x]
				if len(res) != len(want) {
					t.Fatalf("resolution(%d) = %v, want %v", x, res, want)
				}
				for j := range res {
					if uint32(res[j]) != want[j] {
						t.Fatalf("resolution(%d) = %v, want %v", x, res, want)
					}
				}
			}
			// Validate first so the cache is filled by the parallel
			// path, then compare every node against the vector.
			if err := tr.Validate(ValidateOptions{GroupID: message.GroupID(tc.GroupID), TreeHash: tc.TreeHashes[tr.Root()]}); err != nil {
				t.Fatalf("valid tree rejected: %v", err)
			}
			for x := range tr.Width() {
				if got := tr.NodeHash(treemath.NodeIndex(x)); !bytes.Equal(got, tc.TreeHashes[x]) {
					t.Fatalf("tree hash of node %d = %x, want %x", x, got, tc.TreeHashes[x])
				}
			}
			fresh, _ := Decode(cs, tc.Tree)
			if got := fresh.TreeHash(); !bytes.Equal(got, tc.TreeHashes[fresh.Root()]) {
				t.Fatalf("sequential tree hash = %x", got)
			}
			enc, err := tr.Bytes()
			if err != nil || !bytes.Equal(enc, tc.Tree) {
				t.Fatalf("re-encoding differs (%v)", err)
			}
			// The same tree under another group ID must fail on the
			// signatures of update and commit leaves, if there are any.
			other := append(bytes.Clone(tc.GroupID), 0)
			groupBound := false
			for _, l := range tr.Leaves() {
				groupBound = groupBound || l.Source != message.SourceKeyPackage
			}
			if err := tr.Validate(ValidateOptions{GroupID: message.GroupID(other)}); groupBound && err == nil {
				t.Fatal("tree accepted under the wrong group ID")
			}
			c.Ran++
		})
	}
}

func TestTreeOperationsVectors(t *testing.T) {
	var cases []struct {
		CipherSuite    suite.ID `json:"cipher_suite"`
		TreeBefore     hex      `json:"tree_before"`
		Proposal       hex      `json:"proposal"`
		ProposalSender uint32   `json:"proposal_sender"`
		TreeHashBefore hex      `json:"tree_hash_before"`
		TreeAfter      hex      `json:"tree_after"`
		TreeHashAfter  hex      `json:"tree_hash_after"`
	}
	vectors.Load(t, "tree-operations.json", &cases)
	var c vectors.Counter
	c.Report(t, "tree-operations.json")
	for i, tc := range cases {
		cs, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tr, err := Decode(cs, tc.TreeBefore)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.TreeHash(); !bytes.Equal(got, tc.TreeHashBefore) {
				t.Fatalf("tree hash before = %x, want %x", got, tc.TreeHashBefore)
			}
			var p message.Proposal
			if err := decodeProposal(tc.Proposal, &p); err != nil {
				t.Fatal(err)
			}
			sender := treemath.LeafIndex(tc.ProposalSender)
			switch p.Type {
			case message.ProposalAdd:
				_, err = tr.AddLeaf(&p.Add.KeyPackage.LeafNode)
			case message.ProposalUpdate:
				err = tr.UpdateLeaf(sender, &p.Update.LeafNode)
			case message.ProposalRemove:
				err = tr.RemoveLeaf(p.Remove.Removed)
			default:
				t.Fatalf("unexpected proposal type %d", p.Type)
			}
			if err != nil {
				t.Fatal(err)
			}
			after, err := tr.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, tc.TreeAfter) {
				t.Fatalf("tree after differs:\n got %x\nwant %x", after, tc.TreeAfter)
			}
			if got := tr.TreeHash(); !bytes.Equal(got, tc.TreeHashAfter) {
				t.Fatalf("tree hash after = %x, want %x", got, tc.TreeHashAfter)
			}
			checkCache(t, tr)
			c.Ran++
		})
	}
}

type treeKEMCase struct {
	CipherSuite             suite.ID `json:"cipher_suite"`
	GroupID                 hex      `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	ConfirmedTranscriptHash hex      `json:"confirmed_transcript_hash"`
	RatchetTree             hex      `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          uint32 `json:"index"`
		EncryptionPriv hex    `json:"encryption_priv"`
		SignaturePriv  hex    `json:"signature_priv"`
		PathSecrets    []struct {
			Node       uint32 `json:"node"`
			PathSecret hex    `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        uint32 `json:"sender"`
		UpdatePath    hex    `json:"update_path"`
		PathSecrets   []hex  `json:"path_secrets"`
		CommitSecret  hex    `json:"commit_secret"`
		TreeHashAfter hex    `json:"tree_hash_after"`
	} `json:"update_paths"`
}

func TestTreeKEMVectors(t *testing.T) {
	var cases []treeKEMCase
	vectors.Load(t, "treekem.json", &cases)
	var c vectors.Counter
	c.Report(t, "treekem.json")
	for i, tc := range cases {
		cs, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		t.Run(fmt.Sprintf("%d/suite%d", i, tc.CipherSuite), func(t *testing.T) {
			runTreeKEMCase(t, cs, &tc)
			c.Ran++
		})
	}
}

func runTreeKEMCase(t *testing.T, cs *suite.Suite, tc *treeKEMCase) {
	base, err := Decode(cs, tc.RatchetTree)
	if err != nil {
		t.Fatal(err)
	}
	ctxFor := func(treeHash []byte) ([]byte, error) {
		gc := message.GroupContext{
			Version: message.MLS10, CipherSuite: cs.ID(), GroupID: message.GroupID(tc.GroupID), Epoch: tc.Epoch,
			TreeHash: treeHash, ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
		}
		return gc.Bytes()
	}
	privs := map[treemath.LeafIndex]*PrivateKeys{}
	signers := map[treemath.LeafIndex]*suite.Signer{}
	for _, lp := range tc.LeavesPrivate {
		l := treemath.LeafIndex(lp.Index)
		k, err := NewPrivateKeys(cs, l, HPKEPrivateKey(lp.EncryptionPriv))
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range lp.PathSecrets {
			if err := k.SetNodeSecret(base, treemath.NodeIndex(ps.Node), ps.PathSecret); err != nil {
				t.Fatalf("leaf %d: %v", l, err)
			}
		}
		if err := k.Check(base); err != nil {
			t.Fatalf("leaf %d: private state inconsistent with the tree: %v", l, err)
		}
		privs[l] = k
		if signers[l], err = cs.NewSigner(lp.SignaturePriv); err != nil {
			t.Fatal(err)
		}
	}
	for _, up := range tc.UpdatePaths {
		sender := treemath.LeafIndex(up.Sender)
		var path message.UpdatePath
		if err := decodeUpdatePath(up.UpdatePath, &path); err != nil {
			t.Fatal(err)
		}
		merged := base.Clone()
		if err := merged.MergeUpdatePath(sender, &path, nil); err != nil {
			t.Fatalf("sender %d: path rejected: %v", sender, err)
		}
		if got := merged.TreeHash(); !bytes.Equal(got, up.TreeHashAfter) {
			t.Fatalf("sender %d: tree hash after = %x, want %x", sender, got, up.TreeHashAfter)
		}
		if err := merged.VerifyParentHashes(); err != nil {
			t.Fatalf("sender %d: merged tree not parent-hash valid: %v", sender, err)
		}
		ctx, err := ctxFor(merged.TreeHash())
		if err != nil {
			t.Fatal(err)
		}
		for j, k := range privs {
			if j == sender || base.Leaf(j) == nil {
				continue
			}
			k = k.Clone()
			ps, commit, err := merged.decryptPath(k, sender, &path, nil, ctx)
			if err != nil {
				t.Fatalf("sender %d, receiver %d: %v", sender, j, err)
			}
			if !bytes.Equal(ps, up.PathSecrets[j]) {
				t.Fatalf("sender %d, receiver %d: path secret %x, want %x", sender, j, ps, up.PathSecrets[j])
			}
			if !bytes.Equal(commit, up.CommitSecret) {
				t.Fatalf("sender %d, receiver %d: commit secret %x, want %x", sender, j, commit, up.CommitSecret)
			}
			if err := k.Check(merged); err != nil {
				t.Fatalf("sender %d, receiver %d: keys after processing: %v", sender, j, err)
			}
		}

		// Generate a new path from the same sender and have everyone
		// else process it.
		gen := base.Clone()
		template := *base.Leaf(sender)
		res, err := gen.GenerateUpdatePath(sender, PathParams{
			Rand: rand.Reader, Signer: signers[sender], GroupID: message.GroupID(tc.GroupID), Leaf: &template, GroupContext: ctxFor,
		})
		if err != nil {
			t.Fatalf("sender %d: generate: %v", sender, err)
		}
		if err := gen.VerifyParentHashes(); err != nil {
			t.Fatalf("sender %d: generated tree not parent-hash valid: %v", sender, err)
		}
		if err := res.Keys.Check(gen); err != nil {
			t.Fatalf("sender %d: committer keys: %v", sender, err)
		}
		for j, k := range privs {
			if j == sender || base.Leaf(j) == nil {
				continue
			}
			recv := base.Clone()
			commit, err := recv.ProcessUpdatePath(k.Clone(), sender, res.Path, nil, ctxFor)
			if err != nil {
				t.Fatalf("sender %d, receiver %d: generated path: %v", sender, j, err)
			}
			if !bytes.Equal(commit, res.CommitSecret) {
				t.Fatalf("sender %d, receiver %d: commit secret differs", sender, j)
			}
			if !bytes.Equal(recv.TreeHash(), gen.TreeHash()) {
				t.Fatalf("sender %d, receiver %d: tree differs from the committer's", sender, j)
			}
		}
	}
}
