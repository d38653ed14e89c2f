package message

import (
	"bytes"
	"testing"

	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// sampleSet is a deterministic collection of valid structures of every
// kind, used by the round-trip tests and as fuzz seeds.
type sampleSet struct {
	cs         *suite.Suite
	signer     *suite.Signer
	initPriv   []byte
	keyPackage *KeyPackage
	leaf       *LeafNode // source commit, signed for group "group" leaf 1
	path       *UpdatePath
	proposals  []*Proposal
	commit     *Commit
	groupInfo  *GroupInfo
	tree       RatchetTree
	public     []*PublicMessage
	private    *PrivateMessage
	welcome    *Welcome
	secrets    *GroupSecrets
}

// newSamples builds the sample set for the Ed25519/X25519 suite from fixed
// key material.
func newSamples(tb testing.TB) *sampleSet {
	tb.Helper()
	fail := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	cs, err := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	fail(err)
	signer, err := cs.NewSigner(bytes.Repeat([]byte{7}, 32))
	fail(err)
	initPriv, initPub, err := cs.DeriveHPKEKeyPair(bytes.Repeat([]byte{1}, 32))
	fail(err)
	_, encPub, err := cs.DeriveHPKEKeyPair(bytes.Repeat([]byte{2}, 32))
	fail(err)
	s := &sampleSet{cs: cs, signer: signer, initPriv: initPriv}

	caps := Capabilities{
		Versions:     []ProtocolVersion{MLS10, 0x0A0A},
		CipherSuites: []suite.ID{cs.ID(), 0x1A1A},
		Extensions:   []ExtensionType{0xF0F0, 0x2A2A},
		Proposals:    []ProposalType{0x3A3A},
		Credentials:  []CredentialType{CredentialBasic, CredentialX509},
	}
	kpLeaf := LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.Public(),
		Credential:    NewBasicCredential([]byte("alice@example")),
		Capabilities:  caps,
		Source:        SourceKeyPackage,
		Lifetime:      Lifetime{NotBefore: 0, NotAfter: 1 << 40},
		Extensions:    Extensions{{Type: ExtensionApplicationID, Data: []byte{3, 'a', 'p', 'p'}}},
	}
	fail(kpLeaf.Sign(signer, nil, 0))
	s.keyPackage = &KeyPackage{
		Version: MLS10, CipherSuite: cs.ID(), InitKey: initPub, LeafNode: kpLeaf,
		Extensions: Extensions{{Type: 0xF0F0, Data: []byte("grease")}},
	}
	fail(s.keyPackage.Sign(signer))

	s.leaf = &LeafNode{
		EncryptionKey: bytes.Repeat([]byte{4}, 32),
		SignatureKey:  signer.Public(),
		Credential:    Credential{Type: CredentialX509, Certificates: [][]byte{{0x30, 1}, {0x30, 2}}},
		Capabilities:  caps,
		Source:        SourceCommit,
		ParentHash:    bytes.Repeat([]byte{5}, 32),
	}
	fail(s.leaf.Sign(signer, GroupID("group"), 1))
	s.path = &UpdatePath{LeafNode: *s.leaf, Nodes: []UpdatePathNode{
		{EncryptionKey: bytes.Repeat([]byte{6}, 32), EncryptedPathSecret: []HPKECiphertext{{KEMOutput: []byte{1}, Ciphertext: []byte{2}}}},
		{EncryptionKey: bytes.Repeat([]byte{8}, 32)},
	}}

	update := *s.leaf
	update.Source = SourceUpdate
	update.ParentHash = nil
	s.proposals = []*Proposal{
		{Type: ProposalAdd, Add: &Add{KeyPackage: *s.keyPackage}},
		{Type: ProposalUpdate, Update: &Update{LeafNode: update}},
		{Type: ProposalRemove, Remove: &Remove{Removed: 3}},
		{Type: ProposalPSK, PreSharedKey: &PreSharedKey{PSK: PreSharedKeyID{Type: PSKExternal, PSKID: []byte("psk"), Nonce: []byte{9}}}},
		{Type: ProposalPSK, PreSharedKey: &PreSharedKey{PSK: PreSharedKeyID{Type: PSKResumption, Usage: ResumptionBranch, PSKGroupID: GroupID("old"), PSKEpoch: 7, Nonce: []byte{9}}}},
		{Type: ProposalReInit, ReInit: &ReInit{GroupID: GroupID("new"), Version: MLS10, CipherSuite: 3, Extensions: Extensions{{Type: 0xF0F0}}}},
		{Type: ProposalExternalInit, ExternalInit: &ExternalInit{KEMOutput: bytes.Repeat([]byte{1}, 32)}},
		{Type: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: Extensions{{Type: ExtensionExternalSenders, Data: []byte{0}}}}},
	}
	s.commit = &Commit{Path: s.path}
	for _, p := range s.proposals {
		s.commit.Proposals = append(s.commit.Proposals, ProposalOrRef{Type: ProposalOrRefProposal, Proposal: p})
	}
	s.commit.Proposals = append(s.commit.Proposals, ProposalOrRef{Type: ProposalOrRefReference, Reference: bytes.Repeat([]byte{0xAB}, 32)})

	ctx := GroupContext{
		Version: MLS10, CipherSuite: cs.ID(), GroupID: GroupID("group"), Epoch: 5,
		TreeHash: bytes.Repeat([]byte{1}, 32), ConfirmedTranscriptHash: bytes.Repeat([]byte{2}, 32),
		Extensions: Extensions{{Type: ExtensionRequiredCapabilities, Data: []byte{0, 0, 0}}},
	}
	s.groupInfo = &GroupInfo{
		GroupContext:    ctx,
		Extensions:      Extensions{{Type: ExtensionExternalPub, Data: append([]byte{32}, initPub...)}},
		ConfirmationTag: bytes.Repeat([]byte{3}, 32),
		Signer:          1,
	}
	fail(s.groupInfo.Sign(signer))

	parent := &ParentNode{EncryptionKey: bytes.Repeat([]byte{9}, 32), ParentHash: []byte{}, UnmergedLeaves: []treemath.LeafIndex{1}}
	s.tree = RatchetTree{{Leaf: &kpLeaf}, {Parent: parent}, {Leaf: s.leaf}, nil, {Leaf: &kpLeaf}}

	content := func(sender Sender, ct ContentType) FramedContent {
		f := FramedContent{GroupID: GroupID("group"), Epoch: 5, Sender: sender, AuthenticatedData: []byte("ad"), ContentType: ct}
		switch ct {
		case ContentApplication:
			f.ApplicationData = []byte("hello")
		case ContentProposal:
			f.Proposal = s.proposals[2]
		case ContentCommit:
			f.Commit = s.commit
		}
		return f
	}
	s.public = []*PublicMessage{
		{Content: content(Sender{Type: SenderMember, LeafIndex: 1}, ContentProposal), Auth: FramedContentAuthData{Signature: []byte{1}}, MembershipTag: []byte{2}},
		{Content: content(Sender{Type: SenderMember, LeafIndex: 1}, ContentCommit), Auth: FramedContentAuthData{Signature: []byte{1}, ConfirmationTag: []byte{3}}, MembershipTag: []byte{2}},
		{Content: content(Sender{Type: SenderExternal, SenderIndex: 4}, ContentProposal), Auth: FramedContentAuthData{Signature: []byte{1}}},
		{Content: content(Sender{Type: SenderNewMemberProposal}, ContentProposal), Auth: FramedContentAuthData{Signature: []byte{1}}},
		{Content: content(Sender{Type: SenderNewMemberCommit}, ContentCommit), Auth: FramedContentAuthData{Signature: []byte{1}, ConfirmationTag: []byte{3}}},
		{Content: content(Sender{Type: SenderMember, LeafIndex: 0}, ContentApplication), Auth: FramedContentAuthData{Signature: []byte{1}}, MembershipTag: []byte{2}},
	}
	s.private = &PrivateMessage{GroupID: GroupID("group"), Epoch: 5, ContentType: ContentApplication,
		AuthenticatedData: []byte("ad"), EncryptedSenderData: bytes.Repeat([]byte{1}, 28), Ciphertext: bytes.Repeat([]byte{2}, 40)}

	s.secrets = &GroupSecrets{JoinerSecret: bytes.Repeat([]byte{4}, 32), PathSecret: &PathSecret{PathSecret: bytes.Repeat([]byte{5}, 32)},
		PSKs: []PreSharedKeyID{s.proposals[3].PreSharedKey.PSK}}
	s.welcome = &Welcome{CipherSuite: cs.ID()}
	fail(s.welcome.SealGroupInfo(cs, bytes.Repeat([]byte{6}, 32), s.groupInfo))
	ref, err := s.keyPackage.Ref(cs)
	fail(err)
	fail(s.welcome.SealGroupSecrets(cs, ref, s.keyPackage.InitKey, s.secrets))
	return s
}

// messages returns every sample wrapped as an MLSMessage.
func (s *sampleSet) messages() []*MLSMessage {
	out := []*MLSMessage{NewKeyPackage(s.keyPackage), NewGroupInfo(s.groupInfo), NewWelcome(s.welcome), NewPrivateMessage(s.private)}
	for _, p := range s.public {
		out = append(out, NewPublicMessage(p))
	}
	return out
}
