package mls

import (
	"errors"
	"testing"
)

// threeMembers returns a group of alice, bob and carol.
func threeMembers(t *testing.T, cfg *Config) (alice, bob, carol *client) {
	alice, bob, carol = newClient(t, cfg, "alice"), newClient(t, cfg, "bob"), newClient(t, cfg, "carol")
	var err error
	alice.g, err = Create(cfg, GroupID("old"), alice.cred, alice.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	kb, kc := bob.keyPackage(t), carol.keyPackage(t)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kb.KeyPackage, kc.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(cfg, res.Welcome, kb, nil); err != nil {
		t.Fatal(err)
	}
	if carol.g, err = Join(cfg, res.Welcome, kc, nil); err != nil {
		t.Fatal(err)
	}
	return alice, bob, carol
}

func TestReInit(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob, carol := threeMembers(t, cfg)
	// Bob proposes moving to suite 3; Alice commits.
	prop, err := bob.g.ProposeReInit(GroupID("new"), X25519ChaCha20, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, carol} {
		if _, err := c.g.Process(prop); err != nil {
			t.Fatal(err)
		}
	}
	res, err := alice.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{bob, carol} {
		p, err := c.g.Process(res.Commit)
		if err != nil || !p.Commit.ReInit {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	if _, err := bob.g.Encrypt([]byte("x"), nil); !errors.Is(err, ErrInactive) {
		t.Fatalf("old group still usable: %v", err)
	}
	// Alice creates the new group with new key packages of suite 3.
	cfg3 := testConfig(X25519ChaCha20)
	a3, b3, c3 := newClient(t, cfg3, "alice"), newClient(t, cfg3, "bob"), newClient(t, cfg3, "carol")
	kb, kc := b3.keyPackage(t), c3.keyPackage(t)
	var w []byte
	a3.g, w, err = alice.g.ReInit(cfg3, a3.signer, []*KeyPackage{kb.KeyPackage, kc.KeyPackage}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b3.g, err = Join(cfg3, w, kb, &JoinOptions{Resume: []*Group{bob.g}}); err != nil {
		t.Fatalf("bob joining the reinitialised group: %v", err)
	}
	if c3.g, err = Join(cfg3, w, kc, &JoinOptions{Resume: []*Group{carol.g}}); err != nil {
		t.Fatalf("carol joining: %v", err)
	}
	// Without the old group the resumption PSK is missing.
	if _, err := Join(cfg3, w, kc, nil); !errors.Is(err, ErrMissingPSK) {
		t.Fatalf("join without the old group: %v", err)
	}
	if b3.g.CipherSuite() != X25519ChaCha20 || string(b3.g.ID()) != "new" {
		t.Fatal("wrong parameters")
	}
	mustAuth(t, a3, b3, c3)
}

func TestBranch(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob, carol := threeMembers(t, cfg)
	kb := bob.keyPackage(t)
	sub, w, err := alice.g.Branch(GroupID("sub"), []*KeyPackage{kb.KeyPackage}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bsub, err := Join(cfg, w, kb, &JoinOptions{Resume: []*Group{bob.g}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bsub.Members()) != 2 || sub.Epoch() != 1 {
		t.Fatal("wrong subgroup")
	}
	a := &client{name: "a", g: sub}
	b := &client{name: "b", g: bsub}
	mustAuth(t, a, b)
	// Someone who is not in the parent group cannot be branched in.
	d := newClient(t, cfg, "dave")
	if _, _, err := alice.g.Branch(GroupID("x"), []*KeyPackage{d.keyPackage(t).KeyPackage}, nil); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("branch with a stranger: %v", err)
	}
	_ = carol
}

func TestExternalSenders(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	ds, err := GenerateSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := newClient(t, cfg, "alice"), newClient(t, cfg, "bob")
	alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, &GroupOptions{
		ExternalSenders: []ExternalSender{{SignatureKey: ds.PublicKey(), Credential: Credential{Identity: []byte("server")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Bob asks to be added himself; Alice commits.
	kb := bob.keyPackage(t)
	prop, err := NewMemberProposal(kb, alice.g.ID(), alice.g.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.g.Process(prop)
	if err != nil || p.Sender.Kind != SenderNewMemberProposal {
		t.Fatalf("new member proposal: %v", err)
	}
	res, err := alice.g.Commit(&CommitOptions{InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(cfg, res.Welcome, kb, nil); err != nil {
		t.Fatal(err)
	}
	// The server removes Bob.
	idx := bob.g.Index()
	rm, err := ExternalSenderProposal(ds, 0, &ExternalProposal{GroupID: alice.g.ID(), Epoch: alice.g.Epoch(), Remove: &idx})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if p, err := c.g.Process(rm); err != nil || p.Sender.Kind != SenderExternal {
			t.Fatalf("%s: external proposal: %v", c.name, err)
		}
	}
	// An unknown external sender is refused.
	bad, err := ExternalSenderProposal(ds, 1, &ExternalProposal{GroupID: alice.g.ID(), Epoch: alice.g.Epoch(), Remove: &idx})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(bad); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("unknown external sender: %v", err)
	}
	res, err = alice.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := bob.g.Process(res.Commit); err != nil || !p.Commit.RemovedUs {
		t.Fatalf("bob: %v", err)
	}
}

func TestPSKAndGroupContextExtensions(t *testing.T) {
	psk := []byte("0123456789abcdef0123456789abcdef")
	cfg := testConfig(X25519AES128GCM)
	cfg.PSK = func(id []byte) ([]byte, bool) { return psk, string(id) == "shared" }
	alice, bob, carol := threeMembers(t, cfg)
	// An external PSK and a resumption PSK, committed together with an
	// Add: the joiner gets the PSK ids in its GroupSecrets.
	p1, err := alice.g.ProposePSK([]byte("shared"))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := bob.g.ProposeResumptionPSK(bob.g.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.ProposePSK([]byte("unknown")); !errors.Is(err, ErrMissingPSK) {
		t.Fatalf("unknown PSK: %v", err)
	}
	for _, c := range []*client{alice, bob, carol} {
		for _, p := range [][]byte{p1, p2} {
			if _, err := c.g.Process(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := carol.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if _, err := c.g.Process(res.Commit); err != nil {
			t.Fatal(err)
		}
	}
	mustAuth(t, alice, bob, carol)
	// A newcomer joins with an external PSK in the same commit.
	p1, err = alice.g.ProposePSK([]byte("shared"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{bob, carol} {
		if _, err := c.g.Process(p1); err != nil {
			t.Fatal(err)
		}
	}
	dave := newClient(t, cfg, "dave")
	kd := dave.keyPackage(t)
	res, err = carol.g.Commit(&CommitOptions{Add: []*KeyPackage{kd.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if _, err := c.g.Process(res.Commit); err != nil {
			t.Fatal(err)
		}
	}
	if dave.g, err = Join(cfg, res.Welcome, kd, nil); err != nil {
		t.Fatal(err)
	}
	mustAuth(t, alice, bob, carol, dave)
	// Group context extensions: add an external sender.
	ds := mustSigner(t, cfg)
	prop, err := dave.g.ProposeGroupContextExtensions(&GroupOptions{ExternalSenders: []ExternalSender{{SignatureKey: ds.PublicKey(), Credential: Credential{Identity: []byte("ds")}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob, carol} {
		if _, err := c.g.Process(prop); err != nil {
			t.Fatal(err)
		}
	}
	res, err = alice.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{bob, carol, dave} {
		if _, err := c.g.Process(res.Commit); err != nil {
			t.Fatal(err)
		}
	}
	mustAuth(t, alice, bob, carol, dave)
	idx := bob.g.Index()
	rm, err := ExternalSenderProposal(ds, 0, &ExternalProposal{GroupID: alice.g.ID(), Epoch: alice.g.Epoch(), Remove: &idx})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.g.Process(rm); err != nil {
		t.Fatalf("external sender added by extensions: %v", err)
	}
}

func TestCommitByValue(t *testing.T) {
	psk := []byte("0123456789abcdef0123456789abcdef")
	cfg := testConfig(X25519AES128GCM)
	cfg.PSK = func(id []byte) ([]byte, bool) { return psk, string(id) == "k" }
	alice, bob, carol := threeMembers(t, cfg)
	ds := mustSigner(t, cfg)
	res, err := alice.g.Commit(&CommitOptions{
		ExternalPSKs: [][]byte{[]byte("k")}, ResumptionPSKs: []uint64{alice.g.Epoch()},
		Extensions: &GroupOptions{ExternalSenders: []ExternalSender{{SignatureKey: ds.PublicKey(), Credential: Credential{Identity: []byte("ds")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{bob, carol} {
		if _, err := c.g.Process(res.Commit); err != nil {
			t.Fatal(err)
		}
	}
	mustAuth(t, alice, bob, carol)
}
