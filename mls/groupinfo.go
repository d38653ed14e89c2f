package mls

import (
	"bytes"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
)

// GroupInfo is a read-only view of a verified GroupInfo and the group's
// ratchet tree, as [ParseGroupInfo] returns it: what an outsider (a
// delivery service, a client about to join) may learn of a group.
type GroupInfo struct {
	GroupID     GroupID
	Epoch       uint64
	CipherSuite CipherSuite
	// Extensions are the group context extensions.
	Extensions []Extension
	// Members lists the members in leaf order.
	Members []Member
	// ExternalSenders are the parties the group's external_senders
	// extension lists, in order: a sender's position is its index for
	// [ExternalSenderProposal].
	ExternalSenders []ExternalSender
	// ExternalPub reports whether the GroupInfo carries an external_pub
	// extension, which [JoinExternal] needs.
	ExternalPub bool
}

// ParseGroupInfo decodes a GroupInfo (an MLSMessage, as
// [Group.GroupInfo] returns) and verifies it: the ratchet tree, from its
// ratchet_tree extension or else from ratchetTree, is validated against
// the group context as a joiner would (RFC 9420, Section 12.4.3.1), and
// the signature is checked with the signer's leaf. cfg supplies the
// CredentialValidator; nil means none.
func ParseGroupInfo(cfg *Config, groupInfo, ratchetTree []byte) (*GroupInfo, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	m, err := message.DecodeMLSMessage(groupInfo)
	if err != nil {
		return nil, wrapf(ErrMalformed, "group info: %v", err)
	}
	if m.WireFormat != message.WireFormatGroupInfo || m.GroupInfo == nil {
		return nil, wrapf(ErrMalformed, "not a group info but wire format %d", m.WireFormat)
	}
	gi := m.GroupInfo
	cs, err := suite.Get(gi.GroupContext.CipherSuite)
	if err != nil || gi.GroupContext.Version != message.MLS10 {
		return nil, wrapf(ErrUnsupported, "group suite 0x%04x version %d", uint16(gi.GroupContext.CipherSuite), gi.GroupContext.Version)
	}
	g := &Group{cfg: cfg, cs: cs}
	t, err := g.receivedTree(gi, ratchetTree)
	if err != nil {
		return nil, err
	}
	if err := g.verifyGroupInfo(gi, t); err != nil {
		return nil, err
	}
	es, err := externalSenders(gi.GroupContext.Extensions)
	if err != nil {
		return nil, err
	}
	v := &GroupInfo{
		GroupID: bytes.Clone(gi.GroupContext.GroupID), Epoch: gi.GroupContext.Epoch, CipherSuite: CipherSuite(cs.ID()),
		Extensions:  publicExtensions(gi.GroupContext.Extensions),
		ExternalPub: gi.Extensions.Has(message.ExtensionExternalPub),
	}
	for i, leaf := range t.Leaves() {
		if leaf != nil {
			v.Members = append(v.Members, memberOf(i, leaf))
		}
	}
	for _, s := range es {
		v.ExternalSenders = append(v.ExternalSenders, ExternalSender{
			SignatureKey: SignaturePublicKey(bytes.Clone(s.SignatureKey)), Credential: Credential{Identity: bytes.Clone(s.Credential.Identity)},
		})
	}
	return v, nil
}

// PendingRatchetTree returns the ratchet tree of the epoch our pending
// commit starts, in its wire form: what members added by that commit need
// when its Welcome does not carry the tree. It fails with
// [ErrPendingCommit] when no commit is pending.
func (g *Group) PendingRatchetTree() ([]byte, error) {
	if g.pending == nil {
		return nil, wrapf(ErrPendingCommit, "no commit pending")
	}
	return g.pending.next.RatchetTree()
}
