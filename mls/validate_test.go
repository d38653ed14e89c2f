package mls

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// craftCommit signs and protects an arbitrary commit from g's member, with
// a dummy confirmation tag: it passes framing, so that the group's own
// commit checks are what rejects it.
func craftCommit(t *testing.T, g *Group, c *message.Commit) []byte {
	t.Helper()
	ac, err := g.ep.fr.Sign(g.signer.s, message.WireFormatPublicMessage, &message.FramedContent{
		GroupID: g.ep.ctx.GroupID, Epoch: g.ep.ctx.Epoch,
		Sender:      message.Sender{Type: message.SenderMember, LeafIndex: g.self},
		ContentType: message.ContentCommit, Commit: c,
	})
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = make([]byte, g.cs.HashSize())
	msg, err := g.protect(ac)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// expectReject processes msg at c and checks the error and that the state
// did not change.
func expectReject(t *testing.T, c *client, msg []byte, want error) {
	t.Helper()
	before, err := c.g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.g.Process(msg)
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	after, err := c.g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("rejected message changed the state")
	}
}

func TestCommitValidation(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob, carol := threeMembers(t, cfg)
	remove := func(l treemath.LeafIndex) message.ProposalOrRef {
		return message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: l}}}
	}
	gce := message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalGroupContextExtensions, GroupContextExtensions: &message.GroupContextExtensions{}}}
	reinit := message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalReInit, ReInit: &message.ReInit{GroupID: []byte("n"), Version: message.MLS10, CipherSuite: 1}}}
	extInit := message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalExternalInit, ExternalInit: &message.ExternalInit{KEMOutput: make([]byte, 32)}}}
	dk := newClient(t, cfg, "dave").keyPackage(t)
	add := message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *dk.KeyPackage.kp}}}
	bobAgain := bob.keyPackage(t)
	addBob := message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *bobAgain.KeyPackage.kp}}}
	var many []message.ProposalOrRef
	for range 5 {
		k := newClient(t, cfg, "x").keyPackage(t)
		many = append(many, message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *k.KeyPackage.kp}}})
	}
	self := alice.g.self
	cases := []struct {
		name string
		c    *message.Commit
		want error
	}{
		{"path missing with a remove", &message.Commit{Proposals: []message.ProposalOrRef{remove(bob.g.self)}}, ErrInvalidCommit},
		{"empty commit without path", &message.Commit{}, ErrInvalidCommit},
		{"remove twice", &message.Commit{Proposals: []message.ProposalOrRef{remove(bob.g.self), remove(bob.g.self)}}, ErrInvalidProposalList},
		{"remove the committer", &message.Commit{Proposals: []message.ProposalOrRef{remove(self)}}, ErrInvalidProposalList},
		{"remove a blank leaf", &message.Commit{Proposals: []message.ProposalOrRef{remove(7)}}, ErrInvalidProposal},
		{"two group context extensions", &message.Commit{Proposals: []message.ProposalOrRef{gce, gce}}, ErrInvalidProposalList},
		{"reinit with others", &message.Commit{Proposals: []message.ProposalOrRef{reinit, add}}, ErrInvalidProposalList},
		{"external init from a member", &message.Commit{Proposals: []message.ProposalOrRef{extInit}}, ErrInvalidProposal},
		{"same key package twice", &message.Commit{Proposals: []message.ProposalOrRef{add, add}}, ErrInvalidProposalList},
		{"add an existing member", &message.Commit{Proposals: []message.ProposalOrRef{addBob}}, ErrInvalidProposalList},
		{"same key package twice among many", &message.Commit{Proposals: append(append([]message.ProposalOrRef{add}, many...), add)}, ErrInvalidProposalList},
		{"an existing member among many", &message.Commit{Proposals: append(append([]message.ProposalOrRef{}, many...), addBob)}, ErrInvalidProposalList},
		{"many valid adds, bad tag", &message.Commit{Proposals: many}, ErrInvalidMAC},
		{"unknown reference", &message.Commit{Proposals: []message.ProposalOrRef{{Type: message.ProposalOrRefReference, Reference: make([]byte, 32)}}}, ErrUnknownProposal},
		{"bad confirmation tag", &message.Commit{Proposals: []message.ProposalOrRef{add}}, ErrInvalidMAC},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectReject(t, bob, craftCommit(t, alice.g, tc.c), tc.want)
		})
	}
	// Framing-level rejections.
	res, err := carol.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	carol.g.ClearPendingCommit()
	bad := bytes.Clone(res.Commit)
	bad[len(bad)-1] ^= 1 // membership tag
	expectReject(t, bob, bad, ErrInvalidMAC)
	other := newClient(t, cfg, "other")
	if other.g, err = Create(cfg, GroupID("other"), other.cred, other.signer, nil); err != nil {
		t.Fatal(err)
	}
	expectReject(t, bob, craftCommit(t, other.g, &message.Commit{}), ErrWrongGroup)
	if _, err := bob.g.Process(res.Commit); err != nil {
		t.Fatal(err)
	}
	expectReject(t, bob, res.Commit, ErrWrongEpoch)
}

func TestProposalValidation(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	cfg.CredentialValidator = func(c Credential) error {
		if string(c.Identity) == "mallory" {
			return errors.New("not allowed")
		}
		return nil
	}
	alice, bob, _ := threeMembers(t, cfg)
	// A credential the application rejects.
	m := newClient(t, cfg, "mallory")
	open := *cfg
	open.CredentialValidator = nil
	kp, err := NewKeyPackage(&open, m.cred, m.signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKeyPackage(cfg, kp.KeyPackage.Bytes()); !errors.Is(err, ErrCredentialRejected) {
		t.Fatalf("parse: %v", err)
	}
	if _, err := alice.g.ProposeAdd(kp.KeyPackage); !errors.Is(err, ErrCredentialRejected) {
		t.Fatalf("propose: %v", err)
	}
	// Another suite's key package.
	cfg3 := testConfig(X25519ChaCha20)
	k3, err := NewKeyPackage(cfg3, Credential{Identity: []byte("x")}, mustSigner(t, cfg3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.ProposeAdd(k3.KeyPackage); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("wrong suite: %v", err)
	}
	// A tampered key package signature.
	tk := *kp.KeyPackage.kp
	tk.Signature = bytes.Clone(tk.Signature)
	tk.Signature[0] ^= 1
	data, err := message.NewKeyPackage(&tk).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKeyPackage(&open, data); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("tampered: %v", err)
	}
	// An expired key package is refused for what we send.
	fresh := newClient(t, cfg, "fresh").keyPackage(t)
	cfg.Now = func() time.Time { return time.Now().Add(10 * DefaultKeyPackageExpiry) }
	if _, err := alice.g.ProposeAdd(fresh.KeyPackage); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("expired key package: %v", err)
	}
	if _, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{fresh.KeyPackage}}); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("expired key package by value: %v", err)
	}
	cfg.Now = nil
	// Pending state rules.
	if _, err := alice.g.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Commit(nil); !errors.Is(err, ErrPendingCommit) {
		t.Fatalf("second commit: %v", err)
	}
	alice.g.ClearPendingCommit()
	if _, err := alice.g.ProposeRemove(bob.g.Index()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Encrypt([]byte("x"), nil); !errors.Is(err, ErrPendingProposals) {
		t.Fatalf("encrypt with pending proposals: %v", err)
	}
	if err := alice.g.MergePendingCommit(); !errors.Is(err, ErrPendingCommit) {
		t.Fatalf("merge without commit: %v", err)
	}
}

func mustSigner(t *testing.T, cfg *Config) *Signer {
	s, err := GenerateSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJoinValidation(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob := newClient(t, cfg, "alice"), newClient(t, cfg, "bob")
	var err error
	if alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, nil); err != nil {
		t.Fatal(err)
	}
	kb := bob.keyPackage(t)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kb.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	// No tree in the welcome and none given.
	if _, err := Join(cfg, res.Welcome, kb, nil); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("no tree: %v", err)
	}
	// A key package the welcome is not for.
	other := bob.keyPackage(t)
	if _, err := Join(cfg, res.Welcome, other, nil); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("other key package: %v", err)
	}
	// The tree of another group (alice's current epoch: Bob is not in it).
	tr, err := alice.g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(cfg, res.Welcome, kb, &JoinOptions{RatchetTree: tr}); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("stale tree: %v", err)
	}
	// Tampered welcome.
	bad := bytes.Clone(res.Welcome)
	bad[len(bad)-5] ^= 1
	if _, err := Join(cfg, bad, kb, nil); err == nil {
		t.Fatal("tampered welcome accepted")
	}
	// Not a welcome at all.
	if _, err := Join(cfg, res.Commit, kb, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("commit as welcome: %v", err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	tr, err = alice.g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(cfg, res.Welcome, kb, &JoinOptions{RatchetTree: tr}); err != nil {
		t.Fatalf("valid join: %v", err)
	}
	// An application's credential policy applies to every member.
	strict := *cfg
	strict.CredentialValidator = func(c Credential) error {
		if string(c.Identity) == "alice" {
			return errors.New("no")
		}
		return nil
	}
	if _, err := Join(&strict, res.Welcome, kb, &JoinOptions{RatchetTree: tr}); !errors.Is(err, ErrInvalidTree) || !errors.Is(err, ErrCredentialRejected) {
		t.Fatalf("rejected member credential: %v", err)
	}
}
