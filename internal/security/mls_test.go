package security

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-im/parley/mls"
)

// party is one MLS member in these tests.
type party struct {
	cred   mls.Credential
	signer *mls.Signer
	group  *mls.Group
	kp     *mls.KeyPackageBundle
}

func newParty(t *testing.T, cfg *mls.Config, name string) *party {
	t.Helper()
	s, err := mls.GenerateSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &party{cred: mls.Credential{Identity: []byte(name)}, signer: s}
	p.kp, err = mls.NewKeyPackage(cfg, p.cred, s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// trio makes a group of alice, bob and carol (alice created it).
func trio(t *testing.T, cfg *mls.Config) (alice, bob, carol *party) {
	t.Helper()
	alice, bob, carol = newParty(t, cfg, "alice"), newParty(t, cfg, "bob"), newParty(t, cfg, "carol")
	var err error
	alice.group, err = mls.Create(cfg, mls.GroupID("security-suite"), alice.cred, alice.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.group.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{bob.kp.KeyPackage, carol.kp.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.group.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*party{bob, carol} {
		if p.group, err = mls.Join(cfg, res.Welcome, p.kp, nil); err != nil {
			t.Fatal(err)
		}
	}
	return alice, bob, carol
}

func state(t *testing.T, g *mls.Group) []byte {
	t.Helper()
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refused processes data, wants an error matching want (any error if want
// is nil), and checks the group state did not change.
func refused(t *testing.T, g *mls.Group, data []byte, want ...error) error {
	t.Helper()
	before := state(t, g)
	_, err := g.Process(data)
	if err == nil {
		t.Fatal("the group accepted the message")
	}
	if len(want) > 0 {
		ok := false
		for _, w := range want {
			ok = ok || errors.Is(err, w)
		}
		if !ok {
			t.Fatalf("got error %v, want one of %v", err, want)
		}
	}
	if !bytes.Equal(before, state(t, g)) {
		t.Fatalf("the refused message changed the group state (error %v)", err)
	}
	return err
}

var cfg = &mls.Config{Suite: mls.X25519AES128GCM}

func TestReplayedApplicationMessage(t *testing.T) {
	alice, bob, _ := trio(t, cfg)
	ct, err := alice.group.Encrypt([]byte("pay bob 10"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := bob.group.Process(ct); err != nil || string(p.Application) != "pay bob 10" {
		t.Fatalf("first delivery: %v", err)
	}
	// A consumed generation is a replay, told apart from garbage.
	if err := refused(t, bob.group, ct, mls.ErrReplay); errors.Is(err, mls.ErrDecrypt) {
		t.Fatalf("a replay is reported as undecryptable too: %v", err)
	}
}

func TestReplayedCommit(t *testing.T) {
	alice, bob, carol := trio(t, cfg)
	res, err := alice.group.Commit(&mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.group.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.group.Process(res.Commit); err != nil {
		t.Fatal(err)
	}
	refused(t, bob.group, res.Commit, mls.ErrWrongEpoch)
	// A commit replayed into the epoch after it, by a member who did not
	// see it yet and then did, is refused as well.
	if _, err := carol.group.Process(res.Commit); err != nil {
		t.Fatal(err)
	}
	refused(t, carol.group, res.Commit, mls.ErrWrongEpoch)
	if !bytes.Equal(bob.group.EpochAuthenticator(), alice.group.EpochAuthenticator()) {
		t.Fatal("members disagree after the replay")
	}
}

// flipped returns data with one byte inverted.
func flipped(data []byte, at int) []byte {
	out := bytes.Clone(data)
	out[at] ^= 0xff
	return out
}

func TestForgedApplicationMessage(t *testing.T) {
	alice, bob, _ := trio(t, cfg)
	ct, err := alice.group.Encrypt([]byte("forge me"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(ct) - 1, len(ct) - 20, len(ct) / 2} {
		refused(t, bob.group, flipped(ct, at))
	}
	if p, err := bob.group.Process(ct); err != nil || string(p.Application) != "forge me" {
		t.Fatalf("the genuine message after forgeries: %v", err)
	}
}

func TestForgedCommitSignatureOrMembershipTag(t *testing.T) {
	alice, bob, _ := trio(t, cfg)
	res, err := alice.group.Commit(&mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The PublicMessage ends with the signature and the membership tag.
	c := res.Commit
	refused(t, bob.group, flipped(c, len(c)-1), mls.ErrInvalidMAC, mls.ErrInvalidSignature, mls.ErrMalformed)
	refused(t, bob.group, flipped(c, len(c)-40), mls.ErrInvalidMAC, mls.ErrInvalidSignature, mls.ErrMalformed)
	// A commit signed by a key outside the group (mallory's own group with
	// the same id and epoch) is refused.
	mallory := newParty(t, cfg, "mallory")
	mg, err := mls.Create(cfg, mls.GroupID("security-suite"), mallory.cred, mallory.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mg.Commit(&mls.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := mg.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	mres, err := mg.Commit(&mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refused(t, bob.group, mres.Commit)
	if _, err := bob.group.Process(res.Commit); err != nil {
		t.Fatalf("the genuine commit after forgeries: %v", err)
	}
}

func TestRemovedMemberCannotDecryptNewMessages(t *testing.T) {
	alice, bob, carol := trio(t, cfg)
	res, err := alice.group.Commit(&mls.CommitOptions{Remove: []mls.LeafIndex{carol.group.Index()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.group.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*party{bob, carol} {
		if _, err := p.group.Process(res.Commit); err != nil {
			t.Fatal(err)
		}
	}
	if carol.group.Active() {
		t.Fatal("carol still active after her removal")
	}
	ct, err := alice.group.Encrypt([]byte("after carol left"), nil)
	if err != nil {
		t.Fatal(err)
	}
	refused(t, carol.group, ct)
	// And carol can no longer post: her group refuses to encrypt, and a
	// message she made before the removal is for an epoch the members left.
	if _, err := carol.group.Encrypt([]byte("still here"), nil); err == nil {
		t.Fatal("a removed member could still encrypt")
	}
	if _, err := bob.group.Process(ct); err != nil {
		t.Fatalf("bob: %v", err)
	}
}

func TestDowngradedCipherSuite(t *testing.T) {
	alice, bob, _ := trio(t, cfg)
	other := &mls.Config{Suite: mls.X25519ChaCha20}
	dave := newParty(t, other, "dave")
	before := state(t, alice.group)
	if _, err := alice.group.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{dave.kp.KeyPackage}}); err == nil {
		t.Fatal("a key package of another suite was committed")
	}
	if !bytes.Equal(before, state(t, alice.group)) {
		t.Fatal("the refused add changed the group")
	}
	// A Welcome into a ChaCha group is refused by an AES key package.
	eve := newParty(t, other, "eve")
	eg, err := mls.Create(other, mls.GroupID("chacha"), eve.cred, eve.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := eg.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{dave.kp.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	frank := newParty(t, cfg, "frank")
	if _, err := mls.Join(cfg, res.Welcome, frank.kp, nil); err == nil {
		t.Fatal("a Welcome of another suite was accepted")
	}
	// A member's own group refuses a commit of a group in another suite.
	refused(t, bob.group, res.Commit)
}

// TestWelcomeForAnotherKeyPackage: a Welcome is usable only with the key
// package it was made for; a server redirecting it to another device, or
// a device trying another bundle, is refused.
func TestWelcomeForAnotherKeyPackage(t *testing.T) {
	alice, bob, _ := trio(t, cfg)
	mallory := newParty(t, cfg, "mallory")
	mg, err := mls.Create(cfg, mls.GroupID("other"), mallory.cred, mallory.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh := newParty(t, cfg, "alice-2")
	res, err := mg.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{fresh.kp.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, kp := range []*mls.KeyPackageBundle{bob.kp, alice.kp} {
		if _, err := mls.Join(cfg, res.Welcome, kp, nil); err == nil {
			t.Fatal("joined with a key package the Welcome was not made for")
		}
	}
	if _, err := mls.Join(cfg, res.Welcome, fresh.kp, nil); err != nil {
		t.Fatalf("the right key package: %v", err)
	}
}
