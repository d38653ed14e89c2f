package framing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// group is a small in-memory group of members sharing one epoch, each with
// its own copy of the secret tree.
type group struct {
	suite   *suite.Suite
	gc      *message.GroupContext
	signers []*suite.Signer
	secret  []byte
	sds     []byte
	mk      []byte
}

func newGroup(t testing.TB, id suite.ID, members int) *group {
	t.Helper()
	s, err := suite.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	g := &group{
		suite: s,
		gc: &message.GroupContext{
			Version: message.MLS10, CipherSuite: id, GroupID: message.GroupID("group-1"), Epoch: 7,
			TreeHash: bytes.Repeat([]byte{1}, 32), ConfirmedTranscriptHash: bytes.Repeat([]byte{2}, 32),
		},
		secret: bytes.Repeat([]byte{3}, s.HashSize()),
		sds:    bytes.Repeat([]byte{4}, s.HashSize()),
		mk:     bytes.Repeat([]byte{5}, s.HashSize()),
	}
	for i := range members {
		seed := bytes.Repeat([]byte{byte(i + 10)}, 32)
		signer, err := s.NewSigner(seed)
		if err != nil {
			t.Fatal(err)
		}
		g.signers = append(g.signers, signer)
	}
	return g
}

// member returns a fresh framing epoch for one member.
func (g *group) member(t testing.TB, keys Keys) *Epoch {
	t.Helper()
	tree, err := keyschedule.NewSecretTree(g.suite, g.secret, treemath.LeafCount(len(g.signers)), keyschedule.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys.Tree, keys.SenderDataSecret, keys.MembershipKey = tree, g.sds, g.mk
	e, err := NewEpoch(g.suite, g.gc, keys)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (g *group) sigKey(leaf treemath.LeafIndex) (message.SignaturePublicKey, error) {
	if int(leaf) >= len(g.signers) {
		return nil, fmt.Errorf("leaf %d is blank", leaf)
	}
	return g.signers[leaf].Public(), nil
}

func (g *group) application(from treemath.LeafIndex, data []byte) *message.FramedContent {
	return &message.FramedContent{
		GroupID: g.gc.GroupID, Epoch: g.gc.Epoch,
		Sender:      message.Sender{Type: message.SenderMember, LeafIndex: from},
		ContentType: message.ContentApplication, ApplicationData: data,
		AuthenticatedData: []byte("ad"),
	}
}

func (g *group) sendApp(t testing.TB, e *Epoch, from treemath.LeafIndex, data []byte) *message.PrivateMessage {
	t.Helper()
	ac, err := e.Sign(g.signers[from], message.WireFormatPrivateMessage, g.application(from, data))
	if err != nil {
		t.Fatal(err)
	}
	pm, err := e.ProtectPrivate(rand.Reader, ac)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func treeState(t *testing.T, e *Epoch) []byte {
	t.Helper()
	b, err := e.tree.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOutOfOrderDelivery(t *testing.T) {
	for _, id := range suite.IDs() {
		g := newGroup(t, id, 3)
		alice, bob := g.member(t, Keys{}), g.member(t, Keys{})
		var msgs []*message.PrivateMessage
		for i := range 6 {
			msgs = append(msgs, g.sendApp(t, alice, 2, []byte{byte(i)}))
		}
		for _, i := range []int{3, 0, 5, 1, 4, 2} {
			ac, err := bob.UnprotectPrivate(msgs[i], g.sigKey)
			if err != nil {
				t.Fatalf("suite %d message %d: %v", id, i, err)
			}
			if !bytes.Equal(ac.Content.ApplicationData, []byte{byte(i)}) || ac.Content.Sender.LeafIndex != 2 {
				t.Fatalf("message %d: wrong content or sender", i)
			}
			if string(ac.Content.AuthenticatedData) != "ad" {
				t.Fatal("authenticated data lost")
			}
		}
	}
}

// TestFailedUnprotectChangesNothing tampers with every part of a message and
// checks that the receiver's state is untouched and the genuine message still
// opens afterwards.
func TestFailedUnprotectChangesNothing(t *testing.T) {
	g := newGroup(t, suite.X25519AES128GCMSHA256Ed25519, 2)
	alice, bob := g.member(t, Keys{}), g.member(t, Keys{})
	pm := g.sendApp(t, alice, 0, []byte("hello"))
	before := treeState(t, bob)

	tamper := func(f func(*message.PrivateMessage)) *message.PrivateMessage {
		c := *pm
		c.Ciphertext = bytes.Clone(pm.Ciphertext)
		c.EncryptedSenderData = bytes.Clone(pm.EncryptedSenderData)
		c.AuthenticatedData = bytes.Clone(pm.AuthenticatedData)
		f(&c)
		return &c
	}
	// Signed by the wrong member: the AEAD opens, the signature fails.
	ac, err := alice.Sign(g.signers[1], message.WireFormatPrivateMessage, g.application(0, []byte("forged")))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := alice.ProtectPrivate(rand.Reader, ac)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		pm   *message.PrivateMessage
		want error
	}{
		"ciphertext":    {tamper(func(m *message.PrivateMessage) { m.Ciphertext[len(m.Ciphertext)-1] ^= 1 }), suite.ErrDecrypt},
		"sender data":   {tamper(func(m *message.PrivateMessage) { m.EncryptedSenderData[0] ^= 1 }), suite.ErrDecrypt},
		"auth data":     {tamper(func(m *message.PrivateMessage) { m.AuthenticatedData = []byte("xx") }), suite.ErrDecrypt},
		"content type":  {tamper(func(m *message.PrivateMessage) { m.ContentType = message.ContentProposal }), suite.ErrDecrypt},
		"epoch":         {tamper(func(m *message.PrivateMessage) { m.Epoch++ }), ErrInvalidMessage},
		"group":         {tamper(func(m *message.PrivateMessage) { m.GroupID = message.GroupID("other") }), ErrInvalidMessage},
		"wrong signer":  {forged, suite.ErrInvalidSignature},
		"short sender":  {tamper(func(m *message.PrivateMessage) { m.EncryptedSenderData = m.EncryptedSenderData[:3] }), suite.ErrDecrypt},
		"empty content": {tamper(func(m *message.PrivateMessage) { m.Ciphertext = nil }), suite.ErrDecrypt},
	}
	for name, c := range cases {
		if _, err := bob.UnprotectPrivate(c.pm, g.sigKey); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if !bytes.Equal(before, treeState(t, bob)) {
			t.Fatalf("%s: a rejected message changed the secret tree", name)
		}
	}
	if _, err := bob.UnprotectPrivate(pm, g.sigKey); err != nil {
		t.Fatalf("genuine message after rejections: %v", err)
	}
	if bytes.Equal(before, treeState(t, bob)) {
		t.Fatal("an accepted message did not consume its key")
	}
}

func TestOpenPrivateThenConsume(t *testing.T) {
	g := newGroup(t, suite.X25519ChaCha20Poly1305SHA256Ed25519, 2)
	alice, bob := g.member(t, Keys{}), g.member(t, Keys{})
	pm := g.sendApp(t, alice, 1, []byte("x"))
	_, use, err := bob.OpenPrivate(pm, g.sigKey)
	if err != nil {
		t.Fatal(err)
	}
	if use != (KeyUse{Leaf: 1, Type: keyschedule.Application, Generation: 0}) {
		t.Fatalf("key use %+v", use)
	}
	// Not consumed yet: the message opens again.
	if _, _, err := bob.OpenPrivate(pm, g.sigKey); err != nil {
		t.Fatal(err)
	}
	if err := bob.Consume(use); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.OpenPrivate(pm, g.sigKey); !errors.Is(err, keyschedule.ErrGenerationConsumed) {
		t.Fatalf("after Consume: %v, want ErrGenerationConsumed", err)
	}
}

func TestPadding(t *testing.T) {
	g := newGroup(t, suite.X25519AES128GCMSHA256Ed25519, 2)
	for _, block := range []int{0, 1, 100} {
		sender := g.member(t, Keys{PaddingBlock: block})
		want := block
		if want == 0 {
			want = DefaultPaddingBlock
		}
		for _, n := range []int{0, 1, 31, 32, 33, 1000} {
			pm := g.sendApp(t, sender, 0, make([]byte, n))
			if pt := len(pm.Ciphertext) - aeadOverhead; pt%want != 0 {
				t.Errorf("block %d, %d bytes of data: plaintext of %d bytes", block, n, pt)
			}
		}
	}
	if _, err := NewEpoch(g.suite, g.gc, Keys{PaddingBlock: -1}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("negative padding block: %v", err)
	}
}

// TestNonZeroPaddingRejected builds a PrivateMessage by hand, independently
// of ProtectPrivate, whose padding holds a non-zero byte.
func TestNonZeroPaddingRejected(t *testing.T) {
	g := newGroup(t, suite.X25519AES128GCMSHA256Ed25519, 2)
	alice, bob := g.member(t, Keys{}), g.member(t, Keys{})
	seal := func(padding []byte) *message.PrivateMessage {
		ac, err := alice.Sign(g.signers[0], message.WireFormatPrivateMessage, g.application(0, []byte("hi")))
		if err != nil {
			t.Fatal(err)
		}
		b := cryptobyte.NewBuilder(nil)
		(&message.PrivateMessageContent{ContentType: message.ContentApplication, ApplicationData: []byte("hi"), Auth: ac.Auth}).Encode(b)
		pt := append(b.BytesOrPanic(), padding...)
		key, err := alice.tree.Next(0, keyschedule.Application)
		if err != nil {
			t.Fatal(err)
		}
		aad, _ := contentAAD(g.gc.GroupID, g.gc.Epoch, message.ContentApplication, []byte("ad"))
		ct, err := g.suite.Seal(nil, key.Key, key.Nonce, aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		sd := cryptobyte.NewBuilder(nil)
		(&message.SenderData{LeafIndex: 0, Generation: key.Generation}).Encode(sd)
		k, n, err := keyschedule.SenderDataKeyNonce(g.suite, g.sds, ct)
		if err != nil {
			t.Fatal(err)
		}
		sdAAD, _ := senderDataAAD(g.gc.GroupID, g.gc.Epoch, message.ContentApplication)
		esd, err := g.suite.Seal(nil, k, n, sdAAD, sd.BytesOrPanic())
		if err != nil {
			t.Fatal(err)
		}
		return &message.PrivateMessage{GroupID: g.gc.GroupID, Epoch: g.gc.Epoch, ContentType: message.ContentApplication,
			AuthenticatedData: []byte("ad"), EncryptedSenderData: esd, Ciphertext: ct}
	}
	if _, err := bob.UnprotectPrivate(seal(make([]byte, 7)), g.sigKey); err != nil {
		t.Fatalf("zero padding: %v", err)
	}
	before := treeState(t, bob)
	if _, err := bob.UnprotectPrivate(seal([]byte{0, 0, 1, 0}), g.sigKey); err == nil {
		t.Fatal("non-zero padding accepted")
	}
	if !bytes.Equal(before, treeState(t, bob)) {
		t.Fatal("rejected padding consumed a key")
	}
}

func TestSenderChecks(t *testing.T) {
	g := newGroup(t, suite.X25519AES128GCMSHA256Ed25519, 2)
	e := g.member(t, Keys{})
	ext := g.application(0, []byte("x"))
	ext.Sender = message.Sender{Type: message.SenderExternal}
	ac, err := e.Sign(g.signers[0], message.WireFormatPrivateMessage, ext)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ProtectPrivate(rand.Reader, ac); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("external sender in a PrivateMessage: %v", err)
	}
	wrongEpoch := g.application(0, []byte("x"))
	wrongEpoch.Epoch = 3
	if _, err := e.Sign(g.signers[0], message.WireFormatPrivateMessage, wrongEpoch); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("content of another epoch: %v", err)
	}
	// Sender leaf outside the tree (a third member the tree has no leaf for).
	big := newGroup(t, suite.X25519AES128GCMSHA256Ed25519, 3)
	bigE := big.member(t, Keys{})
	pm := big.sendApp(t, bigE, 2, []byte("x"))
	small := g.member(t, Keys{})
	if _, err := small.UnprotectPrivate(pm, g.sigKey); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("sender outside the tree: %v", err)
	}
	noKeys, err := NewEpoch(g.suite, g.gc, Keys{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noKeys.UnprotectPrivate(pm, g.sigKey); !errors.Is(err, ErrMissingKey) {
		t.Errorf("epoch without keys: %v", err)
	}
}

func TestPublicMessages(t *testing.T) {
	g := newGroup(t, suite.P256AES128GCMSHA256P256, 2)
	e := g.member(t, Keys{})
	remove := &message.FramedContent{
		GroupID: g.gc.GroupID, Epoch: g.gc.Epoch,
		Sender:      message.Sender{Type: message.SenderMember, LeafIndex: 1},
		ContentType: message.ContentProposal,
		Proposal:    &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: 0}},
	}
	ac, err := e.Sign(g.signers[1], message.WireFormatPublicMessage, remove)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := e.ProtectPublic(ac)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.UnprotectPublic(pm, g.signers[1].Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.UnprotectPublic(pm, g.signers[0].Public()); !errors.Is(err, suite.ErrInvalidSignature) {
		t.Errorf("wrong signature key: %v", err)
	}
	bad := *pm
	bad.MembershipTag = bytes.Clone(pm.MembershipTag)
	bad.MembershipTag[3] ^= 1
	if _, err := e.UnprotectPublic(&bad, g.signers[1].Public()); !errors.Is(err, ErrMembershipTag) {
		t.Errorf("altered membership tag: %v", err)
	}
	// A commit must carry a confirmation tag, a proposal must not.
	ac.Auth.ConfirmationTag = []byte{1}
	if _, err := e.ProtectPublic(ac); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("proposal with confirmation tag: %v", err)
	}

	// An external sender's proposal has no membership tag and its signature
	// does not cover the group context.
	external := *remove
	external.Sender = message.Sender{Type: message.SenderExternal, SenderIndex: 0}
	extAC, err := e.Sign(g.signers[0], message.WireFormatPublicMessage, &external)
	if err != nil {
		t.Fatal(err)
	}
	extPM, err := e.ProtectPublic(extAC)
	if err != nil {
		t.Fatal(err)
	}
	if extPM.MembershipTag != nil {
		t.Error("membership tag on an external sender's message")
	}
	other := *g.gc
	other.TreeHash = bytes.Repeat([]byte{9}, 32)
	otherEpoch, err := NewEpoch(g.suite, &other, Keys{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherEpoch.UnprotectPublic(extPM, g.signers[0].Public()); err != nil {
		t.Errorf("external proposal with a different group context: %v", err)
	}
	// A member's signature does cover it.
	if err := otherEpoch.Verify(g.signers[1].Public(), ac); !errors.Is(err, suite.ErrInvalidSignature) {
		t.Errorf("member signature under another group context: %v", err)
	}
}

// TestRetainedKeySurvivesRejection checks that a rejected message for a
// retained (skipped) generation does not spoil the retained key, for
// example by applying its reuse guard to the stored nonce.
func TestRetainedKeySurvivesRejection(t *testing.T) {
	g := newGroup(t, suite.X25519AES128GCMSHA256Ed25519, 2)
	alice, bob := g.member(t, Keys{}), g.member(t, Keys{})
	forger := &Epoch{suite: alice.suite, context: alice.context, encoded: alice.encoded,
		membershipKey: alice.membershipKey, senderDataSecret: alice.senderDataSecret,
		tree: alice.tree.Clone(), padding: alice.padding}
	m0 := g.sendApp(t, alice, 0, []byte("zero"))
	m1 := g.sendApp(t, alice, 0, []byte("one"))
	if _, err := bob.UnprotectPrivate(m1, g.sigKey); err != nil {
		t.Fatal(err)
	}
	// Generation 0 from the same ratchet, but signed with the wrong key.
	ac, err := forger.Sign(g.signers[1], message.WireFormatPrivateMessage, g.application(0, []byte("forged")))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forger.ProtectPrivate(rand.Reader, ac)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := bob.UnprotectPrivate(forged, g.sigKey); !errors.Is(err, suite.ErrInvalidSignature) {
			t.Fatalf("forged generation 0: %v, want ErrInvalidSignature", err)
		}
	}
	ac0, err := bob.UnprotectPrivate(m0, g.sigKey)
	if err != nil {
		t.Fatalf("genuine generation 0 after rejections: %v", err)
	}
	if string(ac0.Content.ApplicationData) != "zero" {
		t.Fatal("wrong content")
	}
}

// TestZeroEpoch checks that an Epoch not made by NewEpoch fails with errors.
func TestZeroEpoch(t *testing.T) {
	g := newGroup(t, suite.X25519AES128GCMSHA256Ed25519, 2)
	live := g.member(t, Keys{})
	pm := g.sendApp(t, live, 0, []byte("x"))
	ac, err := live.Sign(g.signers[0], message.WireFormatPublicMessage, &message.FramedContent{
		GroupID: g.gc.GroupID, Epoch: g.gc.Epoch, Sender: message.Sender{Type: message.SenderMember},
		ContentType: message.ContentProposal,
		Proposal:    &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var e Epoch
	if _, err := e.Sign(g.signers[0], message.WireFormatPrivateMessage, g.application(0, nil)); !errors.Is(err, ErrMissingKey) {
		t.Errorf("Sign: %v", err)
	}
	if err := e.Verify(g.signers[0].Public(), ac); !errors.Is(err, ErrMissingKey) {
		t.Errorf("Verify: %v", err)
	}
	if _, err := e.ProtectPublic(ac); !errors.Is(err, ErrMissingKey) {
		t.Errorf("ProtectPublic: %v", err)
	}
	if _, err := e.UnprotectPublic(&message.PublicMessage{Content: ac.Content, Auth: ac.Auth}, g.signers[0].Public()); !errors.Is(err, ErrMissingKey) {
		t.Errorf("UnprotectPublic: %v", err)
	}
	if _, err := e.UnprotectPrivate(pm, g.sigKey); !errors.Is(err, ErrMissingKey) {
		t.Errorf("UnprotectPrivate: %v", err)
	}
	if err := e.Consume(KeyUse{}); !errors.Is(err, ErrMissingKey) {
		t.Errorf("Consume: %v", err)
	}
}
