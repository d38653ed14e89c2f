package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// client is one simulated member in tests.
type client struct {
	name   string
	cfg    *Config
	signer *Signer
	cred   Credential
	g      *Group
}

func newClient(t testing.TB, cfg *Config, name string) *client {
	t.Helper()
	s, err := GenerateSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &client{name: name, cfg: cfg, signer: s, cred: Credential{Identity: []byte(name)}}
}

func (c *client) keyPackage(t testing.TB) *KeyPackageBundle {
	t.Helper()
	kp, err := NewKeyPackage(c.cfg, c.cred, c.signer)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func testConfig(cs CipherSuite) *Config {
	return &Config{Suite: cs}
}

func mustAuth(t testing.TB, members ...*client) {
	t.Helper()
	want := members[0].g.EpochAuthenticator()
	for _, m := range members[1:] {
		if m.g.Epoch() != members[0].g.Epoch() {
			t.Fatalf("%s at epoch %d, %s at %d", m.name, m.g.Epoch(), members[0].name, members[0].g.Epoch())
		}
		if !bytes.Equal(m.g.EpochAuthenticator(), want) {
			t.Fatalf("%s disagrees on the epoch authenticator at epoch %d", m.name, m.g.Epoch())
		}
	}
}

func TestCoreFlow(t *testing.T) {
	for _, cs := range []CipherSuite{X25519AES128GCM, P256AES128GCM, X25519ChaCha20} {
		t.Run(fmt.Sprintf("suite%d", cs), func(t *testing.T) {
			for _, enc := range []bool{false, true} {
				cfg := testConfig(cs)
				cfg.EncryptHandshake = enc
				testCoreFlow(t, cfg)
			}
		})
	}
}

func testCoreFlow(t *testing.T, cfg *Config) {
	alice, bob, carol := newClient(t, cfg, "alice"), newClient(t, cfg, "bob"), newClient(t, cfg, "carol")
	var err error
	alice.g, err = Create(cfg, GroupID("group"), alice.cred, alice.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Alice adds Bob and Carol.
	for _, c := range []*client{bob, carol} {
		kp := c.keyPackage(t)
		opts := &CommitOptions{InlineTree: c == bob}
		if c == bob {
			opts.Add = []*KeyPackage{kp.KeyPackage}
		} else {
			prop, err := alice.g.ProposeAdd(kp.KeyPackage)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bob.g.Process(prop); err != nil {
				t.Fatal(err)
			}
		}
		res, err := alice.g.Commit(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		if c == carol {
			if _, err := bob.g.Process(res.Commit); err != nil {
				t.Fatalf("bob processing add of carol: %v", err)
			}
		}
		var jopts *JoinOptions
		if c == carol {
			tr, err := alice.g.RatchetTree()
			if err != nil {
				t.Fatal(err)
			}
			jopts = &JoinOptions{RatchetTree: tr}
		}
		c.g, err = Join(cfg, res.Welcome, kp, jopts)
		if err != nil {
			t.Fatalf("%s join: %v", c.name, err)
		}
	}
	all := []*client{alice, bob, carol}
	mustAuth(t, all...)
	// Application messages both ways.
	for _, from := range all {
		ct, err := from.g.Encrypt([]byte("hello from "+from.name), []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range all {
			if to == from {
				continue
			}
			p, err := to.g.Process(ct)
			if err != nil {
				t.Fatalf("%s decrypting %s: %v", to.name, from.name, err)
			}
			if p.Kind != KindApplication || string(p.Application) != "hello from "+from.name || p.Sender.Index != from.g.Index() {
				t.Fatalf("unexpected %+v", p)
			}
			if _, err := to.g.Process(ct); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay accepted or wrong error: %v", err)
			}
		}
	}
	// Bob proposes an update, Carol commits it.
	up, err := bob.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	// The delivery service echoes Bob's own proposal back to him.
	if p, err := bob.g.Process(up); err != nil || p.Kind != KindProposal {
		t.Fatalf("own proposal echo: %v", err)
	}
	for _, c := range []*client{alice, carol} {
		if _, err := c.g.Process(up); err != nil {
			t.Fatalf("%s processing update: %v", c.name, err)
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
			t.Fatalf("%s processing commit: %v", c.name, err)
		}
	}
	mustAuth(t, all...)
	// Alice removes Bob with an empty-proposal path commit.
	rm, err := alice.g.ProposeRemove(bob.g.Index())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.g.Process(rm); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(rm); err != nil {
		t.Fatal(err)
	}
	res, err = alice.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Own commit comes back from the delivery service.
	p, err := alice.g.Process(res.Commit)
	if err != nil || !p.Commit.Own {
		t.Fatalf("own commit: %v %+v", err, p)
	}
	if _, err := carol.g.Process(res.Commit); err != nil {
		t.Fatal(err)
	}
	p, err = bob.g.Process(res.Commit)
	if err != nil || !p.Commit.RemovedUs || bob.g.Active() {
		t.Fatalf("bob removal: %v %+v", err, p)
	}
	mustAuth(t, alice, carol)
	ct, err := alice.g.Encrypt([]byte("after"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Process(ct); err == nil {
		t.Fatal("removed member decrypted")
	}
	if p, err := carol.g.Process(ct); err != nil || string(p.Application) != "after" {
		t.Fatal(err)
	}
	// Empty commit.
	res, err = carol.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(res.Commit); err != nil {
		t.Fatal(err)
	}
	mustAuth(t, alice, carol)
}

func TestExternalJoin(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob, dave := newClient(t, cfg, "alice"), newClient(t, cfg, "bob"), newClient(t, cfg, "dave")
	var err error
	alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	gi, err := alice.g.GroupInfo(true, true)
	if err != nil {
		t.Fatal(err)
	}
	var commit []byte
	bob.g, commit, err = JoinExternal(cfg, gi, bob.cred, bob.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.g.Process(commit)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sender.Kind != SenderNewMemberCommit || p.Commit.Epoch != 1 {
		t.Fatalf("%+v", p)
	}
	mustAuth(t, alice, bob)
	// Dave joins from a GroupInfo without the tree, then Bob resyncs by
	// replacing his own leaf.
	gi, err = bob.g.GroupInfo(true, false)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := bob.g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	dave.g, commit, err = JoinExternal(cfg, gi, dave.cred, dave.signer, &ExternalJoinOptions{RatchetTree: tr})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if _, err := c.g.Process(commit); err != nil {
			t.Fatal(err)
		}
	}
	mustAuth(t, alice, bob, dave)
	gi, err = alice.g.GroupInfo(true, true)
	if err != nil {
		t.Fatal(err)
	}
	old := bob.g.Index()
	bob2 := newClient(t, cfg, "bob")
	bob2.g, commit, err = JoinExternal(cfg, gi, bob2.cred, bob2.signer, &ExternalJoinOptions{Replace: &old})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, dave} {
		if _, err := c.g.Process(commit); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := bob.g.Process(commit); err != nil || !p.Commit.RemovedUs {
		t.Fatalf("old bob: %v", err)
	}
	mustAuth(t, alice, bob2, dave)
}

func TestOutOfOrderAndGrace(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	cfg.EpochGrace = 1
	alice, bob := newClient(t, cfg, "alice"), newClient(t, cfg, "bob")
	var err error
	alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp := bob.keyPackage(t)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kp.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(cfg, res.Welcome, kp, nil); err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for i := range 4 {
		ct, err := alice.g.Encrypt([]byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, ct)
	}
	// Reverse order within the epoch, keeping the first for later.
	for i := 3; i >= 1; i-- {
		p, err := bob.g.Process(msgs[i])
		if err != nil || p.Application[0] != byte(i) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// Bob commits; Alice's first message arrives late, within the grace.
	res, err = bob.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(res.Commit); err != nil {
		t.Fatal(err)
	}
	p, err := bob.g.Process(msgs[0])
	if err != nil || p.Application[0] != 0 || p.Epoch != 1 {
		t.Fatalf("late message: %v", err)
	}
	if _, err := bob.g.Process(msgs[0]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed late message: %v", err)
	}
	late, err := alice.g.Encrypt([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two more epochs: the grace of one epoch is over.
	for range 2 {
		res, err = alice.g.Commit(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.g.Process(res.Commit); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.g.Process(late); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("message beyond the grace period: %v", err)
	}
	// Handshake messages of the past epoch are refused.
	if _, err := bob.g.Process(res.Commit); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("old commit: %v", err)
	}
}

func TestStateRoundTripInFlight(t *testing.T) {
	cfg := testConfig(P256AES128GCM)
	alice, bob, carol := threeMembers(t, cfg)
	late, err := bob.g.Encrypt([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	prop, err := carol.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if _, err := c.g.Process(prop); err != nil {
			t.Fatal(err)
		}
	}
	res, err := alice.g.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Alice and Carol persist and restore mid-flight: Alice with a pending
	// commit, Carol with a pending Update of her own.
	for _, c := range []*client{alice, carol} {
		state, err := c.g.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if c.g, err = Unmarshal(state, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{bob, carol} {
		if _, err := c.g.Process(res.Commit); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	mustAuth(t, alice, bob, carol)
	// A late message of the previous epoch still decrypts after a restore.
	state, err := alice.g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if alice.g, err = Unmarshal(state, cfg); err != nil {
		t.Fatal(err)
	}
	if p, err := alice.g.Process(late); err != nil || string(p.Application) != "late" {
		t.Fatalf("late message after restore: %v", err)
	}
	// Bad state is refused.
	if _, err := Unmarshal(state[:len(state)-1], cfg); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("truncated state: %v", err)
	}
	bad := bytes.Clone(state)
	bad[0] = 99
	if _, err := Unmarshal(bad, cfg); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("unknown version: %v", err)
	}
}
