package message

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// testLeaf returns a signed key-package leaf node for suite id and its
// signer.
func testLeaf(t *testing.T, id suite.ID) (*LeafNode, *suite.Signer) {
	t.Helper()
	cs, err := suite.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	priv, _, err := cs.GenerateSignatureKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cs.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	_, encPub, err := cs.GenerateHPKEKey()
	if err != nil {
		t.Fatal(err)
	}
	l := &LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.Public(),
		Credential:    NewBasicCredential([]byte("alice")),
		Capabilities: Capabilities{
			Versions:     []ProtocolVersion{MLS10},
			CipherSuites: []suite.ID{id, 0x0A0A},
			Extensions:   []ExtensionType{0x0A0A, 0xF001},
			Proposals:    []ProposalType{0x1A1A},
			Credentials:  []CredentialType{CredentialBasic, 0x2A2A},
		},
		Source:     SourceKeyPackage,
		Lifetime:   Lifetime{NotBefore: 1000, NotAfter: 2000},
		Extensions: Extensions{{Type: 0xF001, Data: []byte{1, 2, 3}}, {Type: ExtensionApplicationID, Data: []byte("app")}},
	}
	if err := l.Sign(signer, nil, 0); err != nil {
		t.Fatal(err)
	}
	return l, signer
}

func TestLeafNodeSignVerify(t *testing.T) {
	for _, id := range suite.IDs() {
		cs, _ := suite.Get(id)
		l, signer := testLeaf(t, id)
		if err := l.Verify(cs, nil, 0); err != nil {
			t.Fatalf("suite %d: key package leaf: %v", id, err)
		}
		roundTrip(t, l, new(LeafNode))

		// Group-bound sources sign the group id and leaf index.
		l.Source = SourceCommit
		l.ParentHash = []byte{9, 9}
		group := GroupID("group")
		if err := l.Sign(signer, group, 3); err != nil {
			t.Fatal(err)
		}
		if err := l.Verify(cs, group, 3); err != nil {
			t.Fatalf("suite %d: commit leaf: %v", id, err)
		}
		if err := l.Verify(cs, group, 4); !errors.Is(err, suite.ErrInvalidSignature) {
			t.Fatalf("suite %d: wrong leaf index verified: %v", id, err)
		}
		if err := l.Verify(cs, GroupID("other"), 3); !errors.Is(err, suite.ErrInvalidSignature) {
			t.Fatalf("suite %d: wrong group verified: %v", id, err)
		}
		l.Capabilities.Versions = append(l.Capabilities.Versions, 0x0B0B)
		if err := l.Verify(cs, group, 3); !errors.Is(err, suite.ErrInvalidSignature) {
			t.Fatalf("suite %d: modified leaf verified: %v", id, err)
		}
		roundTrip(t, l, new(LeafNode))
	}
}

func TestLeafNodeTBSIncludesGroupOnlyInGroupSources(t *testing.T) {
	l, _ := testLeaf(t, suite.X25519AES128GCMSHA256Ed25519)
	a, _ := l.ToBeSigned(GroupID("a"), 1)
	b, _ := l.ToBeSigned(GroupID("b"), 2)
	if !bytes.Equal(a, b) {
		t.Fatal("key package TBS depends on the group")
	}
	l.Source = SourceUpdate
	a, _ = l.ToBeSigned(GroupID("a"), 1)
	b, _ = l.ToBeSigned(GroupID("a"), 2)
	if bytes.Equal(a, b) {
		t.Fatal("update TBS does not depend on the leaf index")
	}
}

func TestLeafNodeValidate(t *testing.T) {
	base, _ := testLeaf(t, suite.X25519AES128GCMSHA256Ed25519)
	now := time.Unix(1500, 0)
	ok := LeafNodeCheck{Source: SourceKeyPackage, Now: now, MaxLifetime: time.Hour}
	if err := base.Validate(ok); err != nil {
		t.Fatalf("valid leaf rejected: %v", err)
	}
	cases := []struct {
		name   string
		modify func(*LeafNode, *LeafNodeCheck)
		want   error
	}{
		{"wrong source", func(l *LeafNode, c *LeafNodeCheck) { c.Source = SourceUpdate }, ErrLeafNodeSource},
		{"too early", func(l *LeafNode, c *LeafNodeCheck) { c.Now = time.Unix(999, 0) }, ErrLifetime},
		{"too late", func(l *LeafNode, c *LeafNodeCheck) { c.Now = time.Unix(2001, 0) }, ErrLifetime},
		{"before epoch", func(l *LeafNode, c *LeafNodeCheck) { c.Now = time.Unix(-5, 0) }, ErrLifetime},
		{"inverted", func(l *LeafNode, c *LeafNodeCheck) { l.Lifetime = Lifetime{2000, 1000} }, ErrLifetime},
		{"too long", func(l *LeafNode, c *LeafNodeCheck) { c.MaxLifetime = time.Minute }, ErrLifetime},
		{"credential", func(l *LeafNode, c *LeafNodeCheck) { l.Capabilities.Credentials = []CredentialType{CredentialX509} }, ErrCapabilities},
		{"extension", func(l *LeafNode, c *LeafNodeCheck) { l.Extensions = append(l.Extensions, Extension{Type: 0xF002}) }, ErrCapabilities},
		{"empty x509", func(l *LeafNode, c *LeafNodeCheck) { l.Credential = Credential{Type: CredentialX509} }, ErrCredential},
		{"duplicate", func(l *LeafNode, c *LeafNodeCheck) { l.Extensions = append(l.Extensions, Extension{Type: 0xF001}) }, ErrDuplicateExtension},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := *base
			l.Extensions = base.Extensions.Clone()
			l.Capabilities = base.Capabilities
			c := ok
			tc.modify(&l, &c)
			if err := l.Validate(c); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Without a time the lifetime is not checked; other sources skip it.
	if err := base.Validate(LeafNodeCheck{Source: SourceKeyPackage}); err != nil {
		t.Fatal(err)
	}
	u := *base
	u.Source = SourceUpdate
	u.Lifetime = Lifetime{5, 1}
	if err := u.Validate(LeafNodeCheck{Source: SourceUpdate, Now: now}); err != nil {
		t.Fatal(err)
	}
}

func TestNodeAndTreeStructure(t *testing.T) {
	l, _ := testLeaf(t, suite.X25519AES128GCMSHA256Ed25519)
	p := &ParentNode{EncryptionKey: []byte{1}, ParentHash: []byte{2}, UnmergedLeaves: []treemath.LeafIndex{0, 2}}
	tree := RatchetTree{{Leaf: l}, {Parent: p}, nil, nil, {Leaf: l}}
	data, err := tree.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRatchetTree(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.Bytes()
	if !bytes.Equal(again, data) || len(got) != 5 || got[2] != nil || got[1].Parent == nil {
		t.Fatal("tree did not round-trip")
	}
	bad := map[string]RatchetTree{
		"blank last":     {{Leaf: l}, nil, nil},
		"parent at leaf": {{Parent: p}},
		"leaf at parent": {{Leaf: l}, {Leaf: l}, {Leaf: l}},
		"empty":          {},
		"unsorted":       {{Leaf: l}, {Parent: &ParentNode{UnmergedLeaves: []treemath.LeafIndex{1, 0}}}, {Leaf: l}},
		"repeated":       {{Leaf: l}, {Parent: &ParentNode{UnmergedLeaves: []treemath.LeafIndex{1, 1}}}, {Leaf: l}},
	}
	for name, tr := range bad {
		data, err := tr.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRatchetTree(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := (RatchetTree{{}}).Bytes(); err == nil {
		t.Error("empty node encoded")
	}
}
