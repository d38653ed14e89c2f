package framing

import (
	"fmt"

	"github.com/parley-im/parley/mls/internal/message"
)

// checkAuth checks the confirmation tag is present exactly for commits.
func checkAuth(ac *message.AuthenticatedContent) error {
	hasTag := len(ac.Auth.ConfirmationTag) != 0
	if hasTag != (ac.Content.ContentType == message.ContentCommit) {
		return fmt.Errorf("%w: confirmation tag with content type %d", ErrInvalidMessage, ac.Content.ContentType)
	}
	return nil
}

// ProtectPublic encodes a signed AuthenticatedContent as a PublicMessage,
// adding the membership tag for member senders. Application data cannot
// travel in a PublicMessage.
func (e *Epoch) ProtectPublic(ac *message.AuthenticatedContent) (*message.PublicMessage, error) {
	if ac.WireFormat != message.WireFormatPublicMessage {
		return nil, fmt.Errorf("%w: content signed for wire format 0x%04x", ErrInvalidMessage, uint16(ac.WireFormat))
	}
	if ac.Content.ContentType == message.ContentApplication {
		return nil, fmt.Errorf("%w: application data in a PublicMessage", ErrInvalidMessage)
	}
	if err := e.checkContent(&ac.Content); err != nil {
		return nil, err
	}
	if err := checkAuth(ac); err != nil {
		return nil, err
	}
	pm := &message.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.Type == message.SenderMember {
		tag, err := e.membershipTag(ac)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = tag
	}
	return pm, nil
}

// UnprotectPublic checks a PublicMessage of this epoch: the membership tag
// for member senders and the signature against pub, the sender's signature
// key. The confirmation tag of a commit is checked later, against the new
// epoch's confirmation key.
func (e *Epoch) UnprotectPublic(pm *message.PublicMessage, pub message.SignaturePublicKey) (*message.AuthenticatedContent, error) {
	if pm.Content.ContentType == message.ContentApplication {
		return nil, fmt.Errorf("%w: application data in a PublicMessage", ErrInvalidMessage)
	}
	if err := e.checkContent(&pm.Content); err != nil {
		return nil, err
	}
	ac := pm.AuthenticatedContent()
	if err := checkAuth(ac); err != nil {
		return nil, err
	}
	if pm.Content.Sender.Type == message.SenderMember {
		tag, err := e.membershipTag(ac)
		if err != nil {
			return nil, err
		}
		if !equalMAC(tag, pm.MembershipTag) {
			return nil, ErrMembershipTag
		}
	}
	if err := e.Verify(pub, ac); err != nil {
		return nil, err
	}
	return ac, nil
}
