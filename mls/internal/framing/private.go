package framing

import (
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// reuseGuardSize is the length of a SenderData reuse guard.
const reuseGuardSize = 4

// aeadOverhead is the tag length of every suite's AEAD.
const aeadOverhead = 16

// KeyUse names the ratchet key that opened a PrivateMessage, so that the
// caller can consume it (with [Epoch.Consume]) once it accepts the message.
type KeyUse struct {
	Leaf       treemath.LeafIndex
	Type       keyschedule.RatchetType
	Generation uint32
}

// SignatureKeyFunc returns the signature key of the member at leaf. It must
// fail for a blank or unknown leaf (RFC 9420, Section 6.3.2).
type SignatureKeyFunc func(leaf treemath.LeafIndex) (message.SignaturePublicKey, error)

func ratchetType(ct message.ContentType) keyschedule.RatchetType {
	if ct == message.ContentApplication {
		return keyschedule.Application
	}
	return keyschedule.Handshake
}

// contentAAD encodes PrivateContentAAD.
func contentAAD(groupID message.GroupID, epoch uint64, ct message.ContentType, authData []byte) ([]byte, error) {
	a := message.PrivateContentAAD{GroupID: groupID, Epoch: epoch, ContentType: ct, AuthenticatedData: authData}
	b := cryptobyte.NewBuilder(make([]byte, 0, len(groupID)+len(authData)+24))
	a.Encode(b)
	return b.Bytes()
}

// senderDataAAD encodes SenderDataAAD.
func senderDataAAD(groupID message.GroupID, epoch uint64, ct message.ContentType) ([]byte, error) {
	a := message.SenderDataAAD{GroupID: groupID, Epoch: epoch, ContentType: ct}
	b := cryptobyte.NewBuilder(make([]byte, 0, len(groupID)+16))
	a.Encode(b)
	return b.Bytes()
}

// xorGuard applies the reuse guard to the first bytes of a nonce.
func xorGuard(nonce []byte, guard [reuseGuardSize]byte) {
	for i := range guard {
		nonce[i] ^= guard[i]
	}
}

// ProtectPrivate encrypts a signed AuthenticatedContent from a member as a
// PrivateMessage: it takes the next key of the sender's handshake or
// application ratchet (erasing it after use), applies a fresh reuse guard
// drawn from rand, pads the plaintext to the epoch's padding block and
// encrypts the sender data.
func (e *Epoch) ProtectPrivate(rand io.Reader, ac *message.AuthenticatedContent) (*message.PrivateMessage, error) {
	c := &ac.Content
	if ac.WireFormat != message.WireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: content signed for wire format 0x%04x", ErrInvalidMessage, uint16(ac.WireFormat))
	}
	if c.Sender.Type != message.SenderMember {
		return nil, fmt.Errorf("%w: PrivateMessage from sender type %d", ErrInvalidMessage, c.Sender.Type)
	}
	if err := e.checkContent(c); err != nil {
		return nil, err
	}
	if err := checkAuth(ac); err != nil {
		return nil, err
	}
	if e.tree == nil || len(e.senderDataSecret) == 0 {
		return nil, fmt.Errorf("%w: secret tree and sender data secret", ErrMissingKey)
	}

	// The plaintext is sealed in place, so size the buffer for padding and
	// the AEAD tag at once.
	pmc := message.PrivateMessageContent{
		ContentType: c.ContentType, ApplicationData: c.ApplicationData,
		Proposal: c.Proposal, Commit: c.Commit, Auth: ac.Auth,
	}
	size := len(c.ApplicationData) + len(ac.Auth.Signature) + len(ac.Auth.ConfirmationTag) + 16
	b := cryptobyte.NewBuilder(make([]byte, 0, size+e.padding+aeadOverhead))
	pmc.Encode(b)
	pt, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode PrivateMessageContent: %w", err)
	}
	if rem := len(pt) % e.padding; rem != 0 {
		pt = append(pt, make([]byte, e.padding-rem)...)
	}
	aad, err := contentAAD(c.GroupID, c.Epoch, c.ContentType, c.AuthenticatedData)
	if err != nil {
		return nil, fmt.Errorf("failed to encode PrivateContentAAD: %w", err)
	}

	var guard [reuseGuardSize]byte
	if _, err := io.ReadFull(rand, guard[:]); err != nil {
		return nil, fmt.Errorf("failed to draw reuse guard: %w", err)
	}
	typ := ratchetType(c.ContentType)
	key, err := e.tree.Next(c.Sender.LeafIndex, typ)
	if err != nil {
		return nil, fmt.Errorf("failed to take %s key: %w", typ, err)
	}
	defer key.Erase()
	xorGuard(key.Nonce, guard)
	ciphertext, err := e.suite.Seal(pt[:0], key.Key, key.Nonce, aad, pt)
	if err != nil {
		return nil, fmt.Errorf("failed to encrypt content: %w", err)
	}

	sd := message.SenderData{LeafIndex: c.Sender.LeafIndex, Generation: key.Generation, ReuseGuard: guard}
	sdb := cryptobyte.NewBuilder(make([]byte, 0, 12+aeadOverhead))
	sd.Encode(sdb)
	sdPlain, err := sdb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode SenderData: %w", err)
	}
	sdKey, sdNonce, err := keyschedule.SenderDataKeyNonce(e.suite, e.senderDataSecret, ciphertext)
	if err != nil {
		return nil, err
	}
	defer clear(sdKey)
	sdAAD, err := senderDataAAD(c.GroupID, c.Epoch, c.ContentType)
	if err != nil {
		return nil, fmt.Errorf("failed to encode SenderDataAAD: %w", err)
	}
	encSenderData, err := e.suite.Seal(sdPlain[:0], sdKey, sdNonce, sdAAD, sdPlain)
	if err != nil {
		return nil, fmt.Errorf("failed to encrypt sender data: %w", err)
	}
	return &message.PrivateMessage{
		GroupID:             c.GroupID,
		Epoch:               c.Epoch,
		ContentType:         c.ContentType,
		AuthenticatedData:   c.AuthenticatedData,
		EncryptedSenderData: encSenderData,
		Ciphertext:          ciphertext,
	}, nil
}

// OpenPrivate decrypts a PrivateMessage of this epoch and verifies its
// signature with the key sigKey returns for the sender's leaf, without
// changing any state: the ratchet key stays available. The caller passes the
// returned KeyUse to [Epoch.Consume] once it accepts the message, or uses
// [Epoch.UnprotectPrivate], which does both.
func (e *Epoch) OpenPrivate(pm *message.PrivateMessage, sigKey SignatureKeyFunc) (*message.AuthenticatedContent, KeyUse, error) {
	if e.context == nil {
		return nil, KeyUse{}, errNoEpoch
	}
	if string(pm.GroupID) != string(e.context.GroupID) || pm.Epoch != e.context.Epoch {
		return nil, KeyUse{}, fmt.Errorf("%w: message for epoch %d, expected epoch %d", ErrInvalidMessage, pm.Epoch, e.context.Epoch)
	}
	if e.tree == nil || len(e.senderDataSecret) == 0 {
		return nil, KeyUse{}, fmt.Errorf("%w: secret tree and sender data secret", ErrMissingKey)
	}
	sd, err := e.openSenderData(pm)
	if err != nil {
		return nil, KeyUse{}, err
	}
	use := KeyUse{Leaf: sd.LeafIndex, Type: ratchetType(pm.ContentType), Generation: sd.Generation}
	key, err := e.tree.Key(use.Leaf, use.Type, use.Generation)
	if err != nil {
		return nil, KeyUse{}, fmt.Errorf("failed to find %s key: %w", use.Type, err)
	}
	defer key.Erase()
	xorGuard(key.Nonce, sd.ReuseGuard)
	aad, err := contentAAD(pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData)
	if err != nil {
		return nil, KeyUse{}, fmt.Errorf("failed to encode PrivateContentAAD: %w", err)
	}
	pt, err := e.suite.Open(make([]byte, 0, len(pm.Ciphertext)), key.Key, key.Nonce, aad, pm.Ciphertext)
	if err != nil {
		return nil, KeyUse{}, fmt.Errorf("failed to decrypt content: %w", err)
	}
	pmc, err := message.DecodePrivateMessageContent(pt, pm.ContentType)
	if err != nil {
		return nil, KeyUse{}, fmt.Errorf("failed to decode PrivateMessageContent: %w", err)
	}
	ac := &message.AuthenticatedContent{
		WireFormat: message.WireFormatPrivateMessage,
		Content: message.FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            message.Sender{Type: message.SenderMember, LeafIndex: sd.LeafIndex},
			AuthenticatedData: pm.AuthenticatedData,
			ContentType:       pm.ContentType,
			ApplicationData:   pmc.ApplicationData,
			Proposal:          pmc.Proposal,
			Commit:            pmc.Commit,
		},
		Auth: pmc.Auth,
	}
	if err := checkAuth(ac); err != nil {
		return nil, KeyUse{}, err
	}
	pub, err := sigKey(sd.LeafIndex)
	if err != nil {
		return nil, KeyUse{}, fmt.Errorf("failed to find the signature key of leaf %d: %w", sd.LeafIndex, err)
	}
	if err := e.Verify(pub, ac); err != nil {
		return nil, KeyUse{}, err
	}
	return ac, use, nil
}

// openSenderData decrypts and decodes a PrivateMessage's sender data.
func (e *Epoch) openSenderData(pm *message.PrivateMessage) (*message.SenderData, error) {
	sdKey, sdNonce, err := keyschedule.SenderDataKeyNonce(e.suite, e.senderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	defer clear(sdKey)
	sdAAD, err := senderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if err != nil {
		return nil, fmt.Errorf("failed to encode SenderDataAAD: %w", err)
	}
	plain, err := e.suite.Open(nil, sdKey, sdNonce, sdAAD, pm.EncryptedSenderData)
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt sender data: %w", err)
	}
	sd, err := message.DecodeSenderData(plain)
	if err != nil {
		return nil, fmt.Errorf("failed to decode sender data: %w", err)
	}
	if uint32(sd.LeafIndex) >= uint32(e.tree.LeafCount()) {
		return nil, fmt.Errorf("%w: sender leaf %d outside the tree", ErrInvalidMessage, sd.LeafIndex)
	}
	return sd, nil
}

// Consume erases the ratchet key a message accepted after
// [Epoch.OpenPrivate] was opened with.
func (e *Epoch) Consume(use KeyUse) error {
	if e.tree == nil {
		return fmt.Errorf("%w: secret tree", ErrMissingKey)
	}
	if err := e.tree.Consume(use.Leaf, use.Type, use.Generation); err != nil {
		return fmt.Errorf("failed to consume %s key: %w", use.Type, err)
	}
	return nil
}

// UnprotectPrivate decrypts and verifies a PrivateMessage like
// [Epoch.OpenPrivate] and, if it is valid, consumes its ratchet key. When it
// fails, no state has changed.
func (e *Epoch) UnprotectPrivate(pm *message.PrivateMessage, sigKey SignatureKeyFunc) (*message.AuthenticatedContent, error) {
	ac, use, err := e.OpenPrivate(pm, sigKey)
	if err != nil {
		return nil, err
	}
	if err := e.Consume(use); err != nil {
		return nil, err
	}
	return ac, nil
}
