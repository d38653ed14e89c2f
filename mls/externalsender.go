package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// ExternalProposal is a proposal sent from outside the group: by an
// external sender listed in the group's external_senders extension
// (RFC 9420, Section 12.1.8.1), or by a client asking to be added.
type ExternalProposal struct {
	// GroupID and Epoch say which group and epoch the proposal is for.
	GroupID GroupID
	Epoch   uint64
	// Exactly one of the following must be set. Add proposes adding the
	// owner of a key package and Remove removing a member. PSK proposes
	// injecting the external pre-shared key with that id, ResumptionPSK
	// the resumption secret of that epoch of the group. Extensions
	// proposes replacing the group context extensions, ReInit
	// reinitialising the group.
	Add           *KeyPackage
	Remove        *LeafIndex
	PSK           []byte
	ResumptionPSK *uint64
	Extensions    *GroupOptions
	ReInit        *ReInit
	// Rand is the source of a PSK proposal's nonce; nil means
	// crypto/rand.
	Rand io.Reader
}

// proposal returns the proposal p describes.
func (p *ExternalProposal) proposal(cs *suite.Suite) (*message.Proposal, error) {
	n := 0
	for _, set := range []bool{p.Add != nil, p.Remove != nil, p.PSK != nil, p.ResumptionPSK != nil, p.Extensions != nil, p.ReInit != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, wrapf(ErrInvalidProposal, "an external proposal needs exactly one kind, got %d", n)
	}
	psk := func(id message.PreSharedKeyID) (*message.Proposal, error) {
		r := p.Rand
		if r == nil {
			r = rand.Reader
		}
		id.Nonce = make([]byte, cs.HashSize())
		if _, err := io.ReadFull(r, id.Nonce); err != nil {
			return nil, fmt.Errorf("failed to read randomness: %w", err)
		}
		return &message.Proposal{Type: message.ProposalPSK, PreSharedKey: &message.PreSharedKey{PSK: id}}, nil
	}
	switch {
	case p.Add != nil:
		return &message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *p.Add.kp}}, nil
	case p.Remove != nil:
		return &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: treemath.LeafIndex(*p.Remove)}}, nil
	case p.PSK != nil:
		return psk(message.PreSharedKeyID{Type: message.PSKExternal, PSKID: bytes.Clone(p.PSK)})
	case p.ResumptionPSK != nil:
		return psk(message.PreSharedKeyID{Type: message.PSKResumption, Usage: message.ResumptionApplication,
			PSKGroupID: bytes.Clone(p.GroupID), PSKEpoch: *p.ResumptionPSK})
	case p.Extensions != nil:
		exts, err := groupExtensions(p.Extensions)
		if err != nil {
			return nil, err
		}
		return &message.Proposal{Type: message.ProposalGroupContextExtensions,
			GroupContextExtensions: &message.GroupContextExtensions{Extensions: exts}}, nil
	}
	return p.ReInit.proposal()
}

// ExternalSenderProposal signs p as the external sender at index
// senderIndex of the group's external_senders list and returns the
// MLSMessage (a PublicMessage) to send to the group.
func ExternalSenderProposal(signer *Signer, senderIndex uint32, p *ExternalProposal) ([]byte, error) {
	return externalProposal(signer, message.Sender{Type: message.SenderExternal, SenderIndex: senderIndex}, p)
}

// NewMemberProposal asks to be added to a group: it proposes adding kp's
// owner, signed by kp's own key (RFC 9420, new_member_proposal sender). A
// member then commits it or not.
func NewMemberProposal(kp *KeyPackageBundle, groupID GroupID, epoch uint64) ([]byte, error) {
	return externalProposal(kp.signer, message.Sender{Type: message.SenderNewMemberProposal},
		&ExternalProposal{GroupID: groupID, Epoch: epoch, Add: kp.KeyPackage})
}

func externalProposal(signer *Signer, sender message.Sender, p *ExternalProposal) ([]byte, error) {
	cs, err := suite.Get(suite.ID(signer.suite))
	if err != nil {
		return nil, wrapf(ErrUnsupported, "suite 0x%04x", uint16(signer.suite))
	}
	if sender.Type == message.SenderNewMemberProposal && p.Add == nil {
		return nil, wrapf(ErrInvalidProposal, "a new member can only propose its own Add")
	}
	prop, err := p.proposal(cs)
	if err != nil {
		return nil, err
	}
	ctx := &message.GroupContext{Version: message.MLS10, CipherSuite: cs.ID(), GroupID: message.GroupID(p.GroupID), Epoch: p.Epoch}
	fr, err := framing.NewEpoch(cs, ctx, framing.Keys{PaddingBlock: 1})
	if err != nil {
		return nil, err
	}
	ac, err := fr.Sign(signer.s, message.WireFormatPublicMessage, &message.FramedContent{
		GroupID: ctx.GroupID, Epoch: p.Epoch, Sender: sender, ContentType: message.ContentProposal, Proposal: prop,
	})
	if err != nil {
		return nil, err
	}
	pm, err := fr.ProtectPublic(ac)
	if err != nil {
		return nil, err
	}
	return message.NewPublicMessage(pm).Bytes()
}
