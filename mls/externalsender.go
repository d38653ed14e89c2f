package mls

import (
	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// ExternalProposal is a proposal sent from outside the group: by an
// external sender listed in the group's external_senders extension
// (RFC 9420, Section 12.1.8), or by a client asking to be added.
type ExternalProposal struct {
	// GroupID and Epoch say which group and epoch the proposal is for.
	GroupID GroupID
	Epoch   uint64
	// Add proposes adding the owner of a key package. Remove proposes
	// removing a member. Exactly one must be set.
	Add    *KeyPackage
	Remove *LeafIndex
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
	var prop *message.Proposal
	switch {
	case p.Add != nil && p.Remove == nil:
		prop = &message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *p.Add.kp}}
	case p.Remove != nil && p.Add == nil && sender.Type == message.SenderExternal:
		prop = &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: treemath.LeafIndex(*p.Remove)}}
	default:
		return nil, wrapf(ErrInvalidProposal, "an external proposal needs exactly one of Add and Remove")
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
