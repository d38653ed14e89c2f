package mls

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/parley-im/parley/mls/internal/treemath"
)

func extensionsMatch(a, b []Extension) bool {
	return slices.EqualFunc(a, b, func(x, y Extension) bool { return x.Type == y.Type && bytes.Equal(x.Data, y.Data) })
}

// emptyExts are an empty required_capabilities and an empty
// external_senders list, as the interop runner sends them.
var emptyExts = []Extension{{Type: 3, Data: []byte{0, 0, 0}}, {Type: 5, Data: []byte{0}}}

func TestReInitByValueAndParams(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob, carol := threeMembers(t, cfg)
	if _, ok := bob.g.ReInitParams(); ok {
		t.Fatal("ReInitParams of an active group")
	}
	ri := &ReInit{ID: GroupID("new"), Suite: X25519ChaCha20, Options: &GroupOptions{Extensions: emptyExts}}
	// A ReInit must be committed alone.
	dave := newClient(t, cfg, "dave")
	if _, err := alice.g.Commit(&CommitOptions{ReInit: ri, Add: []*KeyPackage{dave.keyPackage(t).KeyPackage}}); !errors.Is(err, ErrInvalidProposalList) {
		t.Fatalf("ReInit with an Add: %v", err)
	}
	if _, err := alice.g.Commit(&CommitOptions{ReInit: &ReInit{Suite: X25519ChaCha20}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("ReInit without an id: %v", err)
	}
	res, err := alice.g.Commit(&CommitOptions{ReInit: ri})
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
	// Every member learns the new parameters, also after a restart.
	restored, err := Unmarshal(mustMarshal(t, carol.g), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{alice.g, bob.g, carol.g, restored} {
		got, ok := g.ReInitParams()
		if !ok || string(got.ID) != "new" || got.Suite != X25519ChaCha20 || got.Options == nil || !extensionsMatch(got.Options.Extensions, emptyExts) {
			t.Fatalf("ReInitParams = %+v, %v", got, ok)
		}
	}
	// Bob and Carol make key packages for the new suite from the
	// parameters alone; Alice creates the new group.
	params, _ := bob.g.ReInitParams()
	cfg3 := testConfig(params.Suite)
	a3, b3, c3 := newClient(t, cfg3, "alice"), newClient(t, cfg3, "bob"), newClient(t, cfg3, "carol")
	kb, kc := b3.keyPackage(t), c3.keyPackage(t)
	if _, _, err := alice.g.ReInit(cfg3, a3.signer, nil, &ResumeOptions{Extensions: &GroupOptions{}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("ReInit with extensions of its own: %v", err)
	}
	var w []byte
	a3.g, w, err = alice.g.ReInit(cfg3, a3.signer, []*KeyPackage{kb.KeyPackage, kc.KeyPackage}, &ResumeOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if !extensionsMatch(a3.g.Extensions(), emptyExts) {
		t.Fatalf("new group extensions %v", a3.g.Extensions())
	}
	if b3.g, err = Join(cfg3, w, kb, &JoinOptions{Resume: []*Group{bob.g}}); err != nil {
		t.Fatal(err)
	}
	if c3.g, err = Join(cfg3, w, kc, &JoinOptions{Resume: []*Group{restored}}); err != nil {
		t.Fatal(err)
	}
	mustAuth(t, a3, b3, c3)
}

func mustMarshal(t *testing.T, g *Group) []byte {
	t.Helper()
	data, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGroupExtensionsVerbatim(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob := newClient(t, cfg, "alice"), newClient(t, cfg, "bob")
	var err error
	alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, &GroupOptions{Extensions: emptyExts})
	if err != nil {
		t.Fatal(err)
	}
	if !extensionsMatch(alice.g.Extensions(), emptyExts) {
		t.Fatalf("extensions %v", alice.g.Extensions())
	}
	for name, bad := range map[string]struct {
		exts []Extension
		want error
	}{
		"duplicate":          {[]Extension{{Type: 5, Data: []byte{0}}, {Type: 5, Data: []byte{0}}}, ErrInvalidProposal},
		"ratchet tree":       {[]Extension{{Type: 2, Data: []byte{0}}}, ErrInvalidProposal},
		"external pub":       {[]Extension{{Type: 4, Data: []byte{0}}}, ErrInvalidProposal},
		"bad senders":        {[]Extension{{Type: 5, Data: []byte{5}}}, ErrMalformed},
		"bad required caps":  {[]Extension{{Type: 3, Data: []byte{0}}}, ErrMalformed},
		"unsupported by all": {[]Extension{{Type: 0xff00}}, ErrUnsupported},
		"duplicate of field": {[]Extension{{Type: 5, Data: []byte{0}}}, ErrInvalidProposal},
	} {
		opts := &GroupOptions{Extensions: bad.exts}
		if name == "duplicate of field" {
			opts.ExternalSenders = []ExternalSender{{SignatureKey: alice.signer.PublicKey(), Credential: alice.cred}}
		}
		if _, err := Create(cfg, GroupID("x"), alice.cred, alice.signer, opts); !errors.Is(err, bad.want) {
			t.Errorf("%s: Create: %v, want %v", name, err, bad.want)
		}
		if name == "unsupported by all" {
			continue
		}
		if _, err := alice.g.ProposeGroupContextExtensions(opts); !errors.Is(err, bad.want) {
			t.Errorf("%s: propose: %v, want %v", name, err, bad.want)
		}
	}
	// A GroupContextExtensions commit replaces them verbatim, for every
	// member.
	kb := bob.keyPackage(t)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kb.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(cfg, res.Welcome, kb, nil); err != nil {
		t.Fatal(err)
	}
	ds := mustSigner(t, cfg)
	next := []Extension{{Type: 3, Data: []byte{2, 0, 5, 0, 0}}}
	res, err = bob.g.Commit(&CommitOptions{Extensions: &GroupOptions{
		ExternalSenders: []ExternalSender{{SignatureKey: ds.PublicKey(), Credential: Credential{Identity: []byte("ds")}}},
		Extensions:      next,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(res.Commit); err != nil {
		t.Fatal(err)
	}
	got := alice.g.Extensions()
	if len(got) != 2 || got[0].Type != 5 || !extensionsMatch(got[1:], next) || !extensionsMatch(got, bob.g.Extensions()) {
		t.Fatalf("extensions after the commit: %v", got)
	}
	mustAuth(t, alice, bob)
}

func TestBranchOptions(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	alice, bob, _ := threeMembers(t, cfg)
	kb := bob.keyPackage(t)
	sub, w, err := alice.g.Branch(GroupID("sub"), []*KeyPackage{kb.KeyPackage}, &ResumeOptions{
		Extensions: &GroupOptions{Extensions: emptyExts}, ForcePath: true, ExternalTree: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !extensionsMatch(sub.Extensions(), emptyExts) {
		t.Fatalf("branch extensions %v", sub.Extensions())
	}
	// The tree is not in the Welcome: joining needs it given.
	if _, err := Join(cfg, w, kb, &JoinOptions{Resume: []*Group{bob.g}}); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("join without the tree: %v", err)
	}
	tree, err := sub.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	bsub, err := Join(cfg, w, kb, &JoinOptions{Resume: []*Group{bob.g}, RatchetTree: tree})
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, &client{name: "a", g: sub}, &client{name: "b", g: bsub})
	// ForcePath: the creator's leaf was refreshed by a commit path, so
	// its source is commit and Bob holds a path secret: his view of the
	// tree has a non-blank root.
	if leafSource(sub, sub.Index()) != 3 {
		t.Fatal("no path in the branch commit")
	}
	// Without options the current extensions are copied and the tree is
	// inline.
	kb2 := bob.keyPackage(t)
	sub2, w2, err := alice.g.Branch(GroupID("sub2"), []*KeyPackage{kb2.KeyPackage}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub2.Extensions()) != 0 || leafSource(sub2, sub2.Index()) != 1 {
		t.Fatal("default branch options")
	}
	if _, err := Join(cfg, w2, kb2, &JoinOptions{Resume: []*Group{bob.g}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.g.Branch(GroupID("x"), nil, &ResumeOptions{Extensions: &GroupOptions{Extensions: []Extension{{Type: 2}}}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("branch with a ratchet_tree extension: %v", err)
	}
}

// leafSource returns the leaf node source (1 key package, 2 update,
// 3 commit) of leaf i.
func leafSource(g *Group, i LeafIndex) uint8 { return uint8(g.tree.Leaf(treemath.LeafIndex(i)).Source) }

func TestExternalSenderProposalKinds(t *testing.T) {
	psk := []byte("0123456789abcdef0123456789abcdef")
	cfg := testConfig(X25519AES128GCM)
	cfg.PSK = func(id []byte) ([]byte, bool) { return psk, string(id) == "k" }
	ds := mustSigner(t, cfg)
	senders := []ExternalSender{{SignatureKey: ds.PublicKey(), Credential: Credential{Identity: []byte("ds")}}}
	alice, bob := newClient(t, cfg, "alice"), newClient(t, cfg, "bob")
	var err error
	if alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, &GroupOptions{ExternalSenders: senders}); err != nil {
		t.Fatal(err)
	}
	kb := bob.keyPackage(t)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kb.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(cfg, res.Welcome, kb, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ExternalSenderProposal(ds, 0, &ExternalProposal{GroupID: alice.g.ID(), PSK: []byte("k"), Extensions: &GroupOptions{}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("two kinds: %v", err)
	}
	if _, err := ExternalSenderProposal(ds, 0, &ExternalProposal{GroupID: alice.g.ID()}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("no kind: %v", err)
	}
	resEpoch := bob.g.Epoch()
	kinds := []struct {
		name string
		p    ExternalProposal
		typ  uint16
	}{
		{"external PSK", ExternalProposal{PSK: []byte("k")}, 4},
		{"resumption PSK", ExternalProposal{ResumptionPSK: &resEpoch}, 4},
		{"extensions", ExternalProposal{Extensions: &GroupOptions{ExternalSenders: senders, Extensions: emptyExts[:1]}}, 7},
		{"reinit", ExternalProposal{ReInit: &ReInit{ID: GroupID("g2"), Suite: X25519ChaCha20}}, 5},
	}
	for _, k := range kinds {
		k.p.GroupID, k.p.Epoch = alice.g.ID(), alice.g.Epoch()
		msg, err := ExternalSenderProposal(ds, 0, &k.p)
		if err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
		for _, c := range []*client{alice, bob} {
			p, err := c.g.Process(msg)
			if err != nil || p.Sender.Kind != SenderExternal || p.Proposal.Type != k.typ {
				t.Fatalf("%s: %s: %v", k.name, c.name, err)
			}
		}
		res, err := bob.g.Commit(nil)
		if err != nil {
			t.Fatalf("%s: commit: %v", k.name, err)
		}
		if err := bob.g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		p, err := alice.g.Process(res.Commit)
		if err != nil {
			t.Fatalf("%s: processing the commit: %v", k.name, err)
		}
		mustAuth(t, alice, bob)
		switch k.name {
		case "extensions":
			if got := alice.g.Extensions(); len(got) != 2 || got[1].Type != 3 {
				t.Fatalf("extensions %v", got)
			}
		case "reinit":
			if r, ok := alice.g.ReInitParams(); !p.Commit.ReInit || !ok || string(r.ID) != "g2" || r.Suite != X25519ChaCha20 {
				t.Fatalf("reinit params %+v %v", r, ok)
			}
		}
	}
}

func TestExternalJoinWithPSK(t *testing.T) {
	psk := []byte("0123456789abcdef0123456789abcdef")
	cfg := testConfig(X25519AES128GCM)
	cfg.PSK = func(id []byte) ([]byte, bool) { return psk, string(id) == "k" }
	alice, bob, _ := threeMembers(t, cfg)
	// Bob restarts without the PSK: he cannot follow the commit.
	bobCfg := testConfig(X25519AES128GCM)
	bobNoPSK, err := Unmarshal(mustMarshal(t, bob.g), bobCfg)
	if err != nil {
		t.Fatal(err)
	}
	gi, err := alice.g.GroupInfo(true, true)
	if err != nil {
		t.Fatal(err)
	}
	dave := newClient(t, cfg, "dave")
	if _, _, err := JoinExternal(cfg, gi, dave.cred, dave.signer, &ExternalJoinOptions{PSKs: [][]byte{[]byte("nope")}}); !errors.Is(err, ErrMissingPSK) {
		t.Fatalf("unknown PSK: %v", err)
	}
	var commit []byte
	dave.g, commit, err = JoinExternal(cfg, gi, dave.cred, dave.signer, &ExternalJoinOptions{PSKs: [][]byte{[]byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if _, err := c.g.Process(commit); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	mustAuth(t, alice, bob, dave)
	before := mustMarshal(t, bobNoPSK)
	if _, err := bobNoPSK.Process(commit); !errors.Is(err, ErrMissingPSK) {
		t.Fatalf("member without the PSK: %v", err)
	}
	if !bytes.Equal(before, mustMarshal(t, bobNoPSK)) {
		t.Fatal("rejected commit changed the state")
	}
}

func TestKeyPackagePrivateKeys(t *testing.T) {
	for _, cs := range []CipherSuite{X25519AES128GCM, P256AES128GCM, X25519ChaCha20} {
		cfg := testConfig(cs)
		kb := newClient(t, cfg, "bob").keyPackage(t)
		s, err := cfg.suite()
		if err != nil {
			t.Fatal(err)
		}
		initPriv, encPriv := kb.InitPrivateKey(), kb.EncryptionPrivateKey()
		for _, c := range []struct {
			priv HPKEPrivateKey
			pub  []byte
		}{{initPriv, kb.KeyPackage.kp.InitKey}, {encPriv, kb.KeyPackage.kp.LeafNode.EncryptionKey}} {
			pub, err := s.HPKEPublicKey(c.priv)
			if err != nil || !bytes.Equal(pub, c.pub) {
				t.Fatalf("suite %d: private key does not match the key package: %v", cs, err)
			}
		}
		// The bundle hands out copies.
		clear(initPriv)
		if bytes.Equal(kb.InitPrivateKey(), initPriv) {
			t.Fatal("InitPrivateKey returned the bundle's own slice")
		}
	}
}

func TestParseGroupInfoAndPendingTree(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	ds := mustSigner(t, cfg)
	alice, bob, carol := newClient(t, cfg, "alice"), newClient(t, cfg, "bob"), newClient(t, cfg, "carol")
	var err error
	alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, &GroupOptions{
		ExternalSenders: []ExternalSender{{SignatureKey: ds.PublicKey(), Credential: Credential{Identity: []byte("ds")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.PendingRatchetTree(); !errors.Is(err, ErrPendingCommit) {
		t.Fatalf("no pending commit: %v", err)
	}
	// The Welcome does not carry the tree: the new members get the
	// pending epoch's tree.
	kb, kc := bob.keyPackage(t), carol.keyPackage(t)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kb.KeyPackage, kc.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := alice.g.PendingRatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(cfg, res.Welcome, kb, &JoinOptions{RatchetTree: tree}); err != nil {
		t.Fatal(err)
	}
	mustAuth(t, alice, bob)

	gi, err := bob.g.GroupInfo(true, false)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseGroupInfo(nil, gi, tree)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.GroupID) != "g" || v.Epoch != 1 || v.CipherSuite != X25519AES128GCM || !v.ExternalPub ||
		len(v.Members) != 3 || string(v.Members[2].Credential.Identity) != "carol" || v.Members[2].Index != 2 ||
		len(v.ExternalSenders) != 1 || string(v.ExternalSenders[0].Credential.Identity) != "ds" ||
		!bytes.Equal(v.ExternalSenders[0].SignatureKey, ds.PublicKey()) || !extensionsMatch(v.Extensions, bob.g.Extensions()) {
		t.Fatalf("view %+v", v)
	}
	if _, err := ParseGroupInfo(cfg, gi, nil); err == nil {
		t.Fatal("group info without a tree parsed")
	}
	// A tree of another epoch does not match the group context.
	stale, err := alice.g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Commit(&CommitOptions{ForcePath: true}); err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	newGI, _ := alice.g.GroupInfo(false, false)
	if _, err := ParseGroupInfo(cfg, newGI, stale); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("stale tree: %v", err)
	}
	tampered := bytes.Clone(gi)
	tampered[len(tampered)-1] ^= 1
	if _, err := ParseGroupInfo(cfg, tampered, tree); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("tampered signature: %v", err)
	}
	reject := &Config{Suite: X25519AES128GCM, CredentialValidator: func(c Credential) error {
		if string(c.Identity) == "carol" {
			return errors.New("no carol")
		}
		return nil
	}}
	if _, err := ParseGroupInfo(reject, gi, tree); !errors.Is(err, ErrInvalidTree) {
		t.Fatalf("credential policy: %v", err)
	}
}

func TestExternalSendersExtension(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	ds1, ds2 := mustSigner(t, cfg), mustSigner(t, cfg)
	senders := []ExternalSender{
		{SignatureKey: ds1.PublicKey(), Credential: Credential{Identity: []byte("one")}},
		{SignatureKey: ds2.PublicKey(), Credential: Credential{Identity: []byte("two")}},
	}
	e, err := ExternalSendersExtension(senders)
	if err != nil || e.Type != 5 {
		t.Fatalf("%v %v", e, err)
	}
	back, err := e.ExternalSenders()
	if err != nil || len(back) != 2 || !bytes.Equal(back[1].SignatureKey, ds2.PublicKey()) || !back[1].Credential.Equal(senders[1].Credential) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if _, err := (Extension{Type: 3, Data: e.Data}).ExternalSenders(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong type: %v", err)
	}
	if _, err := (Extension{Type: 5, Data: e.Data[:len(e.Data)-1]}).ExternalSenders(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	// Adding a sender while keeping the order of the other extensions.
	alice := newClient(t, cfg, "alice")
	if alice.g, err = Create(cfg, GroupID("g"), alice.cred, alice.signer, &GroupOptions{Extensions: []Extension{emptyExts[0], {Type: 5, Data: []byte{0}}}}); err != nil {
		t.Fatal(err)
	}
	exts := alice.g.Extensions()
	cur, err := exts[1].ExternalSenders()
	if err != nil || len(cur) != 0 {
		t.Fatalf("current senders %v %v", cur, err)
	}
	if exts[1], err = ExternalSendersExtension(append(cur, senders[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Commit(&CommitOptions{Extensions: &GroupOptions{Extensions: exts}}); err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if got := alice.g.Extensions(); !extensionsMatch(got, exts) || got[0].Type != 3 {
		t.Fatalf("extensions %v", got)
	}
}
