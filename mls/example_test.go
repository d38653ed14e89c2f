package mls_test

import (
	"fmt"
	"log"

	"github.com/parley-im/parley/mls"
)

// member bundles what each client holds in these examples.
type member struct {
	cred   mls.Credential
	signer *mls.Signer
	group  *mls.Group
}

func newMember(cfg *mls.Config, name string) *member {
	s, err := mls.GenerateSigner(cfg)
	if err != nil {
		log.Fatal(err)
	}
	return &member{cred: mls.Credential{Identity: []byte(name)}, signer: s}
}

// Alice creates a group, adds Bob with a commit and a Welcome, and they
// exchange an application message.
func Example() {
	cfg := &mls.Config{Suite: mls.X25519AES128GCM}
	alice, bob := newMember(cfg, "alice"), newMember(cfg, "bob")

	// Bob publishes a key package and keeps the bundle.
	bundle, err := mls.NewKeyPackage(cfg, bob.cred, bob.signer)
	if err != nil {
		log.Fatal(err)
	}
	published := bundle.KeyPackage.Bytes()

	// Alice creates the group and adds Bob.
	alice.group, err = mls.Create(cfg, mls.GroupID("family"), alice.cred, alice.signer, nil)
	if err != nil {
		log.Fatal(err)
	}
	kp, err := mls.ParseKeyPackage(cfg, published)
	if err != nil {
		log.Fatal(err)
	}
	res, err := alice.group.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{kp}, InlineTree: true})
	if err != nil {
		log.Fatal(err)
	}
	// The delivery service accepted the commit: Alice enters the new epoch.
	if err := alice.group.MergePendingCommit(); err != nil {
		log.Fatal(err)
	}

	// Bob joins from the Welcome.
	bob.group, err = mls.Join(cfg, res.Welcome, bundle, nil)
	if err != nil {
		log.Fatal(err)
	}

	// Application messages.
	ct, err := alice.group.Encrypt([]byte("hi Bob"), nil)
	if err != nil {
		log.Fatal(err)
	}
	msg, err := bob.group.Process(ct)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s says %q in epoch %d\n", msg.Sender.Credential.Identity, msg.Application, bob.group.Epoch())
	fmt.Println("members:", len(bob.group.Members()))
	// Output:
	// alice says "hi Bob" in epoch 1
	// members: 2
}

// A member proposes removing another, a third member commits, and everyone
// processes the commit.
func ExampleGroup_ProposeRemove() {
	cfg := &mls.Config{Suite: mls.X25519AES128GCM}
	alice, bob, carol := newMember(cfg, "alice"), newMember(cfg, "bob"), newMember(cfg, "carol")
	var err error
	alice.group, err = mls.Create(cfg, mls.GroupID("team"), alice.cred, alice.signer, nil)
	if err != nil {
		log.Fatal(err)
	}
	bb, _ := mls.NewKeyPackage(cfg, bob.cred, bob.signer)
	cb, _ := mls.NewKeyPackage(cfg, carol.cred, carol.signer)
	res, err := alice.group.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{bb.KeyPackage, cb.KeyPackage}, InlineTree: true})
	if err != nil {
		log.Fatal(err)
	}
	_ = alice.group.MergePendingCommit()
	bob.group, _ = mls.Join(cfg, res.Welcome, bb, nil)
	carol.group, _ = mls.Join(cfg, res.Welcome, cb, nil)

	// Carol proposes removing Bob; everyone caches the proposal.
	prop, err := carol.group.ProposeRemove(bob.group.Index())
	if err != nil {
		log.Fatal(err)
	}
	_, _ = alice.group.Process(prop)
	_, _ = bob.group.Process(prop)

	// Alice commits every pending proposal.
	res, err = alice.group.Commit(nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = alice.group.MergePendingCommit()
	if _, err := carol.group.Process(res.Commit); err != nil {
		log.Fatal(err)
	}
	out, _ := bob.group.Process(res.Commit)
	fmt.Println("bob removed:", out.Commit.RemovedUs, "active:", bob.group.Active())
	fmt.Println("agree:", string(alice.group.EpochAuthenticator()) == string(carol.group.EpochAuthenticator()))
	// Output:
	// bob removed: true active: false
	// agree: true
}

// A client joins by itself from a GroupInfo with an external commit.
func ExampleJoinExternal() {
	cfg := &mls.Config{Suite: mls.X25519AES128GCM}
	alice, dave := newMember(cfg, "alice"), newMember(cfg, "dave")
	var err error
	alice.group, err = mls.Create(cfg, mls.GroupID("open"), alice.cred, alice.signer, nil)
	if err != nil {
		log.Fatal(err)
	}
	gi, err := alice.group.GroupInfo(true, true)
	if err != nil {
		log.Fatal(err)
	}
	var commit []byte
	dave.group, commit, err = mls.JoinExternal(cfg, gi, dave.cred, dave.signer, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := alice.group.Process(commit); err != nil {
		log.Fatal(err)
	}
	fmt.Println("epoch", alice.group.Epoch(), "members", len(alice.group.Members()))
	// Output: epoch 1 members 2
}

// Group state is saved and restored with Marshal and Unmarshal.
func ExampleUnmarshal() {
	cfg := &mls.Config{Suite: mls.X25519AES128GCM}
	alice := newMember(cfg, "alice")
	g, err := mls.Create(cfg, mls.GroupID("g"), alice.cred, alice.signer, nil)
	if err != nil {
		log.Fatal(err)
	}
	state, err := g.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	restored, err := mls.Unmarshal(state, cfg)
	if err != nil {
		log.Fatal(err)
	}
	a, _ := g.Export("chat key", nil, 16)
	b, _ := restored.Export("chat key", nil, 16)
	fmt.Println(string(a) == string(b))
	// Output: true
}

// Alice moves a two-member group to another cipher suite: she commits a
// ReInit, Bob learns the new suite from the closed group and publishes a
// key package for it, and Alice creates the successor group.
func ExampleGroup_ReInitParams() {
	cfg := &mls.Config{Suite: mls.X25519AES128GCM}
	alice, bob := newMember(cfg, "alice"), newMember(cfg, "bob")
	bundle, err := mls.NewKeyPackage(cfg, bob.cred, bob.signer)
	if err != nil {
		log.Fatal(err)
	}
	alice.group, err = mls.Create(cfg, mls.GroupID("g"), alice.cred, alice.signer, nil)
	if err != nil {
		log.Fatal(err)
	}
	res, err := alice.group.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{bundle.KeyPackage}, InlineTree: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := alice.group.MergePendingCommit(); err != nil {
		log.Fatal(err)
	}
	if bob.group, err = mls.Join(cfg, res.Welcome, bundle, nil); err != nil {
		log.Fatal(err)
	}

	// Alice commits a ReInit by value; Bob processes it.
	res, err = alice.group.Commit(&mls.CommitOptions{ReInit: &mls.ReInit{ID: mls.GroupID("g2"), Suite: mls.X25519ChaCha20}})
	if err != nil {
		log.Fatal(err)
	}
	if err := alice.group.MergePendingCommit(); err != nil {
		log.Fatal(err)
	}
	if _, err := bob.group.Process(res.Commit); err != nil {
		log.Fatal(err)
	}

	// Bob makes a key package for the successor's suite.
	params, ok := bob.group.ReInitParams()
	if !ok {
		log.Fatal("not reinitialised")
	}
	newCfg := &mls.Config{Suite: params.Suite}
	bob2 := newMember(newCfg, "bob")
	bundle2, err := mls.NewKeyPackage(newCfg, bob2.cred, bob2.signer)
	if err != nil {
		log.Fatal(err)
	}

	// Alice creates the successor; Bob joins it, resuming the old group.
	alice2 := newMember(newCfg, "alice")
	g2, welcome, err := alice.group.ReInit(newCfg, alice2.signer, []*mls.KeyPackage{bundle2.KeyPackage}, nil)
	if err != nil {
		log.Fatal(err)
	}
	bob2.group, err = mls.Join(newCfg, welcome, bundle2, &mls.JoinOptions{Resume: []*mls.Group{bob.group}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: suite 0x%04x, %d members, epoch %d\n", bob2.group.ID(), uint16(bob2.group.CipherSuite()), len(g2.Members()), bob2.group.Epoch())
	// Output:
	// g2: suite 0x0003, 2 members, epoch 1
}
