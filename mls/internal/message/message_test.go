package message

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
)

func TestSamplesRoundTrip(t *testing.T) {
	s := newSamples(t)
	for _, m := range s.messages() {
		data := roundTrip(t, m, new(MLSMessage))
		got, err := DecodeMLSMessage(data)
		if err != nil || got.WireFormat != m.WireFormat {
			t.Fatalf("wire format %d: %v", m.WireFormat, err)
		}
	}
	for _, p := range s.proposals {
		roundTrip(t, p, new(Proposal))
	}
	roundTrip(t, s.commit, new(Commit))
	roundTrip(t, &Commit{}, new(Commit))
	roundTrip(t, s.path, new(UpdatePath))
	roundTrip(t, s.tree, new(RatchetTree))
	roundTrip(t, s.secrets, new(GroupSecrets))
	roundTrip(t, &GroupSecrets{JoinerSecret: []byte{1}, PathSecret: &PathSecret{}}, new(GroupSecrets))
	roundTrip(t, &s.groupInfo.GroupContext, new(GroupContext))
	roundTrip(t, &SenderData{LeafIndex: 9, Generation: 1 << 31, ReuseGuard: [4]byte{1, 2, 3, 4}}, new(SenderData))
	roundTrip(t, &PSKLabel{ID: s.proposals[4].PreSharedKey.PSK, Index: 1, Count: 2}, new(PSKLabel))
	roundTrip(t, &InterimTranscriptHashInput{ConfirmationTag: []byte{1, 2}}, new(InterimTranscriptHashInput))
	for _, p := range s.public {
		ac := p.AuthenticatedContent()
		roundTrip(t, ac, new(AuthenticatedContent))
		if p.Content.ContentType == ContentCommit {
			roundTrip(t, ac.ConfirmedTranscriptHashInput(), new(ConfirmedTranscriptHashInput))
		}
	}
	roundTrip(t, &RequiredCapabilities{Extensions: []ExtensionType{5}, Proposals: []ProposalType{0xF000}, Credentials: []CredentialType{1}}, new(RequiredCapabilities))
	roundTrip(t, &ExternalPub{PublicKey: []byte{1, 2}}, new(ExternalPub))
	roundTrip(t, ExternalSenders{{SignatureKey: []byte{1}, Credential: NewBasicCredential([]byte("ds"))}}, new(ExternalSenders))
	roundTrip(t, ApplicationID("app"), new(ApplicationID))

	// The top-level decoders agree with the methods.
	kp, _ := s.keyPackage.Bytes()
	if _, err := DecodeKeyPackage(kp); err != nil {
		t.Fatal(err)
	}
	gi, _ := s.groupInfo.Bytes()
	if _, err := DecodeGroupInfo(gi); err != nil {
		t.Fatal(err)
	}
	w, _ := s.welcome.Bytes()
	if _, err := DecodeWelcome(w); err != nil {
		t.Fatal(err)
	}
	gc, _ := s.groupInfo.GroupContext.Bytes()
	if _, err := DecodeGroupContext(gc); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"key package": kp, "group info": gi, "welcome": w, "group context": gc} {
		for _, bad := range [][]byte{append(bytes.Clone(data), 0), data[:len(data)-1], nil} {
			var err error
			switch name {
			case "key package":
				_, err = DecodeKeyPackage(bad)
			case "group info":
				_, err = DecodeGroupInfo(bad)
			case "welcome":
				_, err = DecodeWelcome(bad)
			case "group context":
				_, err = DecodeGroupContext(bad)
			}
			if !errors.Is(err, codec.ErrDecode) {
				t.Errorf("%s: malformed input gave %v", name, err)
			}
		}
	}
}

// mutate returns data with the byte at i replaced by v.
func mutate(data []byte, i int, v byte) []byte {
	out := bytes.Clone(data)
	out[i] = v
	return out
}

func TestMLSMessageRejectsUnknownSelectors(t *testing.T) {
	s := newSamples(t)
	kp, _ := NewKeyPackage(s.keyPackage).Bytes()
	pub, _ := NewPublicMessage(s.public[0]).Bytes() // member, proposal (remove)
	priv, _ := NewPrivateMessage(s.private).Bytes()

	// Offsets: version(2) wire_format(2), then the body.
	cases := map[string][]byte{
		"version 0":           mutate(kp, 1, 0),
		"version 2":           mutate(kp, 1, 2),
		"wire format 0":       mutate(kp, 3, 0),
		"wire format 6":       mutate(kp, 3, 6),
		"key package version": mutate(kp, 5, 2), // KeyPackage.version != MLSMessage.version
	}
	// PublicMessage: group_id(1+5) epoch(8) sender_type at 4+6+8 = 18.
	cases["sender type 0"] = mutate(pub, 18, 0)
	cases["sender type 5"] = mutate(pub, 18, 5)
	// sender leaf(4) authenticated_data(1+2) content_type at 19+4+3 = 26.
	cases["content type 0"] = mutate(pub, 26, 0)
	cases["content type 4"] = mutate(pub, 26, 4)
	// proposal_type at 27..28.
	cases["proposal type 8"] = mutate(pub, 28, 8)
	cases["proposal type grease"] = mutate(mutate(pub, 27, 0x0A), 28, 0x0A)
	// PrivateMessage content_type at 4+6+8 = 18.
	cases["private content type 0"] = mutate(priv, 18, 0)
	cases["private content type 4"] = mutate(priv, 18, 4)
	if pub[26] != byte(ContentProposal) || pub[28] != byte(ProposalRemove) || priv[18] != byte(ContentApplication) || kp[5] != 1 {
		t.Fatal("test offsets are wrong")
	}
	for name, data := range cases {
		if _, err := DecodeMLSMessage(data); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestLenientListsKeepUnknownValues(t *testing.T) {
	s := newSamples(t)
	data, _ := s.keyPackage.Bytes()
	kp, err := DecodeKeyPackage(data)
	if err != nil {
		t.Fatal(err)
	}
	c := kp.LeafNode.Capabilities
	if c.Versions[1] != 0x0A0A || c.CipherSuites[1] != 0x1A1A || c.Extensions[1] != 0x2A2A || c.Proposals[0] != 0x3A3A {
		t.Fatalf("GREASE values lost: %+v", c)
	}
	if !kp.Extensions.Has(0xF0F0) || string(kp.Extensions.Find(0xF0F0).Data) != "grease" || kp.Extensions.Has(0x1234) {
		t.Fatal("unknown extension not carried")
	}
}

func TestStrictEncodingRejected(t *testing.T) {
	// A non-minimal varint length prefix must be rejected.
	var r Remove
	if err := codec.Unmarshal([]byte{0, 0, 0, 1}, "remove", r.Decode); err != nil || r.Removed != 1 {
		t.Fatal(err)
	}
	var e ExternalInit
	if err := codec.Unmarshal([]byte{0x40, 0x01, 0xAA}, "external init", e.Decode); err == nil {
		t.Fatal("non-minimal varint accepted")
	}
	// A length prefix larger than the input must fail without allocating.
	if err := codec.Unmarshal([]byte{0xBF, 0xFF, 0xFF, 0xFF}, "external init", e.Decode); err == nil {
		t.Fatal("oversized length accepted")
	}
	// Optional presence bytes other than 0 and 1.
	var c Commit
	if err := codec.Unmarshal([]byte{0, 2}, "commit", c.Decode); err == nil {
		t.Fatal("optional byte 2 accepted")
	}
	// Unknown credential types cannot be parsed.
	var cr Credential
	if err := codec.Unmarshal([]byte{0x0A, 0x0A, 0}, "credential", cr.Decode); err == nil {
		t.Fatal("unknown credential type accepted")
	}
	// Unknown PSK types and resumption usages.
	var p PreSharedKeyID
	if err := codec.Unmarshal([]byte{3, 0, 0}, "psk id", p.Decode); err == nil {
		t.Fatal("PSK type 3 accepted")
	}
	if err := codec.Unmarshal([]byte{2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "psk id", p.Decode); err == nil {
		t.Fatal("resumption usage 4 accepted")
	}
	// Unknown ProposalOrRef types.
	var por ProposalOrRef
	if err := codec.Unmarshal([]byte{3, 0}, "proposal or ref", por.Decode); err == nil {
		t.Fatal("ProposalOrRef type 3 accepted")
	}
}

func TestEncodeRejectsInconsistentValues(t *testing.T) {
	bad := map[string]interface{ Encode(*cryptobyte.Builder) }{
		"proposal without body": &Proposal{Type: ProposalAdd},
		"unknown proposal":      &Proposal{Type: 0x0A0A, Remove: &Remove{}},
		"message without body":  &MLSMessage{Version: MLS10, WireFormat: WireFormatWelcome},
		"unknown credential":    &Credential{Type: 0x0A0A},
		"unknown leaf source":   &LeafNode{Credential: NewBasicCredential(nil)},
		"unknown sender":        &Sender{Type: 9},
		"commit content nil":    &FramedContent{Sender: Sender{Type: SenderMember}, ContentType: ContentCommit},
		"reference type 0":      &ProposalOrRef{},
		"psk type 0":            &PreSharedKeyID{},
		"negative padding":      &PrivateMessageContent{ContentType: ContentApplication, Padding: -1},
		"tbs without context":   &FramedContentTBS{Content: &FramedContent{Sender: Sender{Type: SenderMember}, ContentType: ContentApplication}},
		"empty node":            &Node{},
		"tbs without content":   &FramedContentTBS{},
		"tbm without auth":      &AuthenticatedContentTBM{ContentTBS: FramedContentTBS{Content: &FramedContent{}}},
		"node with both":        &Node{Leaf: &LeafNode{}, Parent: &ParentNode{}},
	}
	for name, v := range bad {
		if _, err := codec.Marshal(v.Encode); !errors.Is(err, ErrEncode) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestLeafNodeSourceDecoding(t *testing.T) {
	// An update-source leaf with every field empty: keys, basic credential,
	// five capability lists, source, extensions, signature.
	leaf := []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, byte(SourceUpdate), 0, 0}
	var l LeafNode
	if err := codec.Unmarshal(leaf, "leaf", l.Decode); err != nil || l.Source != SourceUpdate {
		t.Fatalf("minimal leaf: %v", err)
	}
	for _, src := range []byte{0, 4, 255} {
		if err := codec.Unmarshal(mutate(leaf, 10, src), "leaf", l.Decode); err == nil {
			t.Errorf("source %d accepted", src)
		}
	}
}

func TestClonesAreDeep(t *testing.T) {
	s := newSamples(t)
	l := s.leaf.Clone()
	if !l.Equal(s.leaf) {
		t.Fatal("clone differs")
	}
	l.EncryptionKey[0] ^= 1
	l.Credential.Certificates[0][0] ^= 1
	l.Capabilities.Versions[0] = 9
	l.ParentHash[0] ^= 1
	if s.leaf.EncryptionKey[0] == l.EncryptionKey[0] || s.leaf.Credential.Certificates[0][0] == l.Credential.Certificates[0][0] ||
		s.leaf.Capabilities.Versions[0] == 9 || s.leaf.ParentHash[0] == l.ParentHash[0] || l.Equal(s.leaf) {
		t.Fatal("leaf clone shares memory")
	}
	g := s.groupInfo.GroupContext.Clone()
	g.GroupID[0] ^= 1
	g.Extensions[0].Data[0] ^= 1
	if s.groupInfo.GroupContext.GroupID[0] == g.GroupID[0] || s.groupInfo.GroupContext.Extensions[0].Data[0] == g.Extensions[0].Data[0] {
		t.Fatal("group context clone shares memory")
	}
	p := s.tree[1].Parent.Clone()
	p.UnmergedLeaves[0] = 7
	if s.tree[1].Parent.UnmergedLeaves[0] == 7 {
		t.Fatal("parent clone shares memory")
	}
}

func TestKeyPackageValidate(t *testing.T) {
	s := newSamples(t)
	now := time.Unix(1_700_000_000, 0)
	if err := s.keyPackage.Validate(s.cs, LeafNodeCheck{Now: now}); err != nil {
		t.Fatalf("valid key package rejected: %v", err)
	}
	other, _ := suite.Get(suite.X25519ChaCha20Poly1305SHA256Ed25519)
	resign := func(k *KeyPackage) {
		if err := k.LeafNode.Sign(s.signer, nil, 0); err != nil {
			t.Fatal(err)
		}
		if err := k.Sign(s.signer); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		modify func(*KeyPackage)
		cs     *suite.Suite
		want   error
	}{
		{"version", func(k *KeyPackage) { k.Version = 2; resign(k) }, s.cs, ErrVersion},
		{"suite", func(k *KeyPackage) {}, other, suite.ErrUnsupported},
		{"init key", func(k *KeyPackage) { k.InitKey = []byte{1}; resign(k) }, s.cs, suite.ErrInvalidKey},
		{"signature", func(k *KeyPackage) { k.Signature[0] ^= 1 }, s.cs, suite.ErrInvalidSignature},
		{"leaf signature", func(k *KeyPackage) { k.LeafNode.Signature[0] ^= 1; _ = k.Sign(s.signer) }, s.cs, suite.ErrInvalidSignature},
		{"unsigned change", func(k *KeyPackage) { k.Extensions = nil }, s.cs, suite.ErrInvalidSignature},
		{"leaf source", func(k *KeyPackage) { k.LeafNode.Source = SourceUpdate; resign(k) }, s.cs, ErrLeafNodeSource},
		{"expired", func(k *KeyPackage) { k.LeafNode.Lifetime.NotAfter = 10; resign(k) }, s.cs, ErrLifetime},
		{"init equals encryption", func(k *KeyPackage) { k.InitKey = k.LeafNode.EncryptionKey; resign(k) }, s.cs, ErrInitKeyReuse},
		{"unlisted extension", func(k *KeyPackage) { k.Extensions = Extensions{{Type: 0xF111}}; resign(k) }, s.cs, ErrCapabilities},
		{"duplicate extension", func(k *KeyPackage) { k.Extensions = Extensions{{Type: 0xF0F0}, {Type: 0xF0F0}}; resign(k) }, s.cs, ErrDuplicateExtension},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := s.keyPackage.Bytes()
			k, err := DecodeKeyPackage(data)
			if err != nil {
				t.Fatal(err)
			}
			tc.modify(k)
			if err := k.Validate(tc.cs, LeafNodeCheck{Now: now}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRefs(t *testing.T) {
	s := newSamples(t)
	ref, err := s.keyPackage.Ref(s.cs)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := s.keyPackage.Bytes()
	if !bytes.Equal(ref, s.cs.RefHash("MLS 1.0 KeyPackage Reference", data)) || len(ref) != 32 {
		t.Fatal("key package ref")
	}
	ac := s.public[0].AuthenticatedContent()
	pref, err := ac.ProposalRef(s.cs)
	if err != nil {
		t.Fatal(err)
	}
	acData, _ := ac.Bytes()
	if !bytes.Equal(pref, s.cs.RefHash("MLS 1.0 Proposal Reference", acData)) || bytes.Equal(pref, ref) {
		t.Fatal("proposal ref")
	}
	if _, err := s.public[1].AuthenticatedContent().ProposalRef(s.cs); !errors.Is(err, ErrContentType) {
		t.Fatalf("commit gave a proposal ref: %v", err)
	}
}

func TestGroupInfoSignVerify(t *testing.T) {
	s := newSamples(t)
	pub := SignaturePublicKey(s.signer.Public())
	if err := s.groupInfo.Verify(s.cs, pub); err != nil {
		t.Fatal(err)
	}
	gi := *s.groupInfo
	gi.GroupContext.Epoch++
	if err := gi.Verify(s.cs, pub); !errors.Is(err, suite.ErrInvalidSignature) {
		t.Fatalf("changed epoch verified: %v", err)
	}
}

func TestWelcomeSealOpen(t *testing.T) {
	s := newSamples(t)
	ref, _ := s.keyPackage.Ref(s.cs)
	gs, err := s.welcome.OpenGroupSecrets(s.cs, ref, s.initPriv)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.secrets.Bytes()
	got, _ := gs.Bytes()
	if !bytes.Equal(got, want) {
		t.Fatal("group secrets differ")
	}
	gs.Erase()
	if !bytes.Equal(gs.JoinerSecret, make([]byte, 32)) || !bytes.Equal(gs.PathSecret.PathSecret, make([]byte, 32)) {
		t.Fatal("Erase left secrets")
	}
	gi, err := s.welcome.OpenGroupInfo(s.cs, bytes.Repeat([]byte{6}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if err := gi.Verify(s.cs, s.signer.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.welcome.OpenGroupInfo(s.cs, bytes.Repeat([]byte{7}, 32)); !errors.Is(err, suite.ErrDecrypt) {
		t.Fatalf("wrong welcome secret: %v", err)
	}
	if _, err := s.welcome.OpenGroupSecrets(s.cs, ref, bytes.Repeat([]byte{9}, 32)); !errors.Is(err, suite.ErrDecrypt) {
		t.Fatalf("wrong init key: %v", err)
	}
	if _, err := s.welcome.OpenGroupSecrets(s.cs, KeyPackageRef{1}, s.initPriv); !errors.Is(err, ErrNoGroupSecrets) {
		t.Fatalf("unknown ref: %v", err)
	}
	// The group secrets are bound to the encrypted group info.
	w := *s.welcome
	w.EncryptedGroupInfo = append(bytes.Clone(w.EncryptedGroupInfo), 0)
	if _, err := w.OpenGroupSecrets(s.cs, ref, s.initPriv); !errors.Is(err, suite.ErrDecrypt) {
		t.Fatalf("context not bound: %v", err)
	}
}

func TestPrivateMessageContent(t *testing.T) {
	s := newSamples(t)
	for _, tc := range []PrivateMessageContent{
		{ContentType: ContentApplication, ApplicationData: []byte("hi"), Auth: FramedContentAuthData{Signature: []byte{1}}, Padding: 0},
		{ContentType: ContentProposal, Proposal: s.proposals[0], Auth: FramedContentAuthData{Signature: []byte{1}}, Padding: 17},
		{ContentType: ContentCommit, Commit: s.commit, Auth: FramedContentAuthData{Signature: []byte{1}, ConfirmationTag: []byte{2}}, Padding: 3},
	} {
		data, err := tc.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodePrivateMessageContent(data, tc.ContentType)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := got.Bytes()
		if got.Padding != tc.Padding || !bytes.Equal(again, data) {
			t.Fatalf("content type %d: padding %d, want %d", tc.ContentType, got.Padding, tc.Padding)
		}
		if tc.Padding > 0 {
			if _, err := DecodePrivateMessageContent(mutate(data, len(data)-1, 1), tc.ContentType); err == nil {
				t.Fatal("non-zero padding accepted")
			}
		}
		if _, err := DecodePrivateMessageContent(data, ContentType(9)); err == nil {
			t.Fatal("unknown content type accepted")
		}
	}
}

func TestFramedContentTBS(t *testing.T) {
	s := newSamples(t)
	ctx := &s.groupInfo.GroupContext
	member := &FramedContentTBS{WireFormat: WireFormatPublicMessage, Content: &s.public[0].Content, Context: ctx}
	ext := &FramedContentTBS{WireFormat: WireFormatPublicMessage, Content: &s.public[2].Content}
	m, err := member.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := codec.Marshal(s.public[0].Content.Encode)
	g, _ := ctx.Bytes()
	want := append(append([]byte{0, 1, 0, 1}, c...), g...)
	if !bytes.Equal(m, want) {
		t.Fatal("member TBS layout")
	}
	e, err := ext.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	c, _ = codec.Marshal(s.public[2].Content.Encode)
	if !bytes.Equal(e, append([]byte{0, 1, 0, 1}, c...)) {
		t.Fatal("external TBS layout")
	}
	tbm := &AuthenticatedContentTBM{ContentTBS: *member, Auth: &s.public[0].Auth}
	b, err := tbm.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := codec.Marshal(func(b *cryptobyte.Builder) { s.public[0].Auth.Encode(b, ContentProposal) })
	if !bytes.Equal(b, append(bytes.Clone(m), a...)) {
		t.Fatal("TBM layout")
	}
	aad, _ := s.private.ContentAAD().Bytes()
	sdAAD, _ := s.private.SenderDataAAD().Bytes()
	if !bytes.HasPrefix(aad, sdAAD) || len(aad) != len(sdAAD)+3 {
		t.Fatal("AAD layouts")
	}
}

func TestExtensionPayloads(t *testing.T) {
	rc := &RequiredCapabilities{Extensions: []ExtensionType{0xF001, ExtensionRatchetTree}, Proposals: []ProposalType{ProposalAdd}, Credentials: []CredentialType{CredentialBasic}}
	ext, err := NewExtension(ExtensionRequiredCapabilities, rc)
	if err != nil {
		t.Fatal(err)
	}
	es := Extensions{{Type: 0x0A0A}, ext}
	var got RequiredCapabilities
	if ok, err := DecodeExtension(es, ExtensionRequiredCapabilities, &got); !ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	caps := Capabilities{Extensions: []ExtensionType{0xF001}, Credentials: []CredentialType{CredentialBasic}}
	if err := got.SatisfiedBy(&caps); err != nil {
		t.Fatal(err)
	}
	caps.Extensions = nil
	if err := got.SatisfiedBy(&caps); !errors.Is(err, ErrCapabilities) {
		t.Fatalf("missing extension: %v", err)
	}
	if ok, _ := DecodeExtension(es, ExtensionExternalPub, new(ExternalPub)); ok {
		t.Fatal("absent extension found")
	}
	es[0] = Extension{Type: ExtensionExternalPub, Data: []byte{5, 1}}
	if ok, err := DecodeExtension(es, ExtensionExternalPub, new(ExternalPub)); !ok || !errors.Is(err, codec.ErrDecode) {
		t.Fatalf("malformed payload: ok=%v err=%v", ok, err)
	}
	if err := (Extensions{{Type: 1}, {Type: 2}, {Type: 1}}).Validate(); !errors.Is(err, ErrDuplicateExtension) {
		t.Fatal(err)
	}
	if !ExtensionExternalSenders.IsDefault() || ExtensionType(6).IsDefault() || !ProposalGroupContextExtensions.IsDefault() || ProposalType(8).IsDefault() {
		t.Fatal("IsDefault")
	}
}

func TestNilSuiteAndSigner(t *testing.T) {
	s := newSamples(t)
	ac := s.public[0].AuthenticatedContent()
	errs := []error{
		s.leaf.Sign(nil, nil, 0),
		s.leaf.Verify(nil, nil, 0),
		s.keyPackage.Sign(nil),
		s.keyPackage.Verify(nil),
		s.keyPackage.Validate(nil, LeafNodeCheck{}),
		s.groupInfo.Sign(nil),
		s.groupInfo.Verify(nil, nil),
		s.welcome.SealGroupInfo(nil, nil, s.groupInfo),
		s.welcome.SealGroupSecrets(nil, nil, nil, s.secrets),
		s.welcome.SealGroupInfo(s.cs, make([]byte, 32), nil),
		s.welcome.SealGroupSecrets(s.cs, nil, s.keyPackage.InitKey, nil),
	}
	_, err := s.keyPackage.Ref(nil)
	errs = append(errs, err)
	_, err = ac.ProposalRef(nil)
	errs = append(errs, err)
	_, err = s.welcome.OpenGroupInfo(nil, nil)
	errs = append(errs, err)
	_, err = s.welcome.OpenGroupSecrets(nil, nil, nil)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: no error", i)
		}
	}
}
