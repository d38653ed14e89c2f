package framing

import (
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
)

// Errors returned by this package.
var (
	// ErrMembershipTag is returned when a PublicMessage's membership tag
	// does not verify.
	ErrMembershipTag = errors.New("mls: invalid membership tag")
	// ErrConfirmationTag is returned when a commit's confirmation tag does
	// not verify.
	ErrConfirmationTag = errors.New("mls: invalid confirmation tag")
	// ErrInvalidMessage is returned for a message whose fields contradict
	// each other or the epoch (wrong group, epoch, sender type or content
	// type for the framing).
	ErrInvalidMessage = errors.New("mls: invalid message")
	// ErrMissingKey is returned when the Epoch lacks a key an operation
	// needs.
	ErrMissingKey = errors.New("mls: epoch key not available")
)

// signatureLabel is the SignWithLabel label of FramedContent signatures.
const signatureLabel = "FramedContentTBS"

// Epoch is what framing needs to know about a group in one epoch. The keys
// are referenced, not copied: the group owns and erases them.
type Epoch struct {
	suite   *suite.Suite
	context *message.GroupContext
	encoded []byte // the encoded GroupContext

	membershipKey    []byte
	senderDataSecret []byte
	tree             *keyschedule.SecretTree
	padding          int
}

// DefaultPaddingBlock is the block PrivateMessage plaintexts are padded to a
// multiple of, unless Keys.PaddingBlock says otherwise.
const DefaultPaddingBlock = 32

// maxPaddingBlock bounds the padding block.
const maxPaddingBlock = 1 << 16

// Keys are the epoch secrets framing uses. Any of them may be nil when the
// operations that need it are not used (an external joiner, for example,
// only signs).
type Keys struct {
	MembershipKey    []byte
	SenderDataSecret []byte
	Tree             *keyschedule.SecretTree
	// PaddingBlock pads every PrivateMessage plaintext to a multiple of this
	// many bytes; 0 means DefaultPaddingBlock and 1 means no padding.
	PaddingBlock int
}

// NewEpoch returns the framing state of the epoch described by gc.
func NewEpoch(s *suite.Suite, gc *message.GroupContext, k Keys) (*Epoch, error) {
	if gc.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: group context suite 0x%04x, epoch suite 0x%04x", ErrInvalidMessage, uint16(gc.CipherSuite), uint16(s.ID()))
	}
	encoded, err := gc.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode group context: %w", err)
	}
	pad := k.PaddingBlock
	if pad == 0 {
		pad = DefaultPaddingBlock
	}
	if pad < 1 || pad > maxPaddingBlock {
		return nil, fmt.Errorf("%w: padding block %d", ErrInvalidMessage, k.PaddingBlock)
	}
	return &Epoch{
		suite: s, context: gc, encoded: encoded,
		membershipKey: k.MembershipKey, senderDataSecret: k.SenderDataSecret, tree: k.Tree,
		padding: pad,
	}, nil
}

// Suite returns the epoch's cipher suite.
func (e *Epoch) Suite() *suite.Suite { return e.suite }

// GroupContext returns the epoch's GroupContext.
func (e *Epoch) GroupContext() *message.GroupContext { return e.context }

// addTBS appends FramedContentTBS: the group context is covered for member
// and new_member_commit senders.
func (e *Epoch) addTBS(b *cryptobyte.Builder, wf message.WireFormat, c *message.FramedContent) {
	b.AddUint16(uint16(message.MLS10))
	b.AddUint16(uint16(wf))
	c.Encode(b)
	switch c.Sender.Type {
	case message.SenderMember, message.SenderNewMemberCommit:
		b.AddBytes(e.encoded)
	}
}

// tbs returns the encoded FramedContentTBS.
func (e *Epoch) tbs(wf message.WireFormat, c *message.FramedContent) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, contentSizeHint(c)+len(e.encoded)+16))
	e.addTBS(b, wf, c)
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode FramedContentTBS: %w", err)
	}
	return out, nil
}

// contentSizeHint estimates the encoded size of c, to size buffers once.
func contentSizeHint(c *message.FramedContent) int {
	return len(c.GroupID) + len(c.AuthenticatedData) + len(c.ApplicationData) + 64
}

// errNoEpoch is returned by the methods of an Epoch not made by NewEpoch.
var errNoEpoch = fmt.Errorf("%w: epoch not initialised", ErrMissingKey)

// checkContent checks that c belongs to the epoch.
func (e *Epoch) checkContent(c *message.FramedContent) error {
	if e.context == nil {
		return errNoEpoch
	}
	if string(c.GroupID) != string(e.context.GroupID) || c.Epoch != e.context.Epoch {
		return fmt.Errorf("%w: content for group %x epoch %d, expected epoch %d", ErrInvalidMessage, []byte(c.GroupID), c.Epoch, e.context.Epoch)
	}
	return nil
}

// Sign signs content for the given wire format and returns it as an
// AuthenticatedContent. A commit's confirmation tag is left for the caller,
// which can compute it only once the signature is known.
func (e *Epoch) Sign(signer *suite.Signer, wf message.WireFormat, content *message.FramedContent) (*message.AuthenticatedContent, error) {
	if wf != message.WireFormatPublicMessage && wf != message.WireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: wire format 0x%04x", ErrInvalidMessage, uint16(wf))
	}
	if err := e.checkContent(content); err != nil {
		return nil, err
	}
	tbs, err := e.tbs(wf, content)
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignWithLabel(signatureLabel, tbs)
	if err != nil {
		return nil, fmt.Errorf("failed to sign content: %w", err)
	}
	return &message.AuthenticatedContent{
		WireFormat: wf,
		Content:    *content,
		Auth:       message.FramedContentAuthData{Signature: sig},
	}, nil
}

// Verify checks the signature of ac against the sender's signature key,
// which the caller looks up from the sender (a leaf, an external sender, or
// the leaf node of a new member's Commit or KeyPackage).
func (e *Epoch) Verify(pub message.SignaturePublicKey, ac *message.AuthenticatedContent) error {
	if e.suite == nil {
		return errNoEpoch
	}
	tbs, err := e.tbs(ac.WireFormat, &ac.Content)
	if err != nil {
		return err
	}
	if err := e.suite.VerifyWithLabel(pub, signatureLabel, tbs, ac.Auth.Signature); err != nil {
		return fmt.Errorf("failed to verify content signature: %w", err)
	}
	return nil
}

// membershipTag computes MAC(membership_key, AuthenticatedContentTBM).
func (e *Epoch) membershipTag(ac *message.AuthenticatedContent) ([]byte, error) {
	if len(e.membershipKey) == 0 {
		return nil, fmt.Errorf("%w: membership key", ErrMissingKey)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, contentSizeHint(&ac.Content)+len(e.encoded)+len(ac.Auth.Signature)+64))
	e.addTBS(b, ac.WireFormat, &ac.Content)
	ac.Auth.Encode(b, ac.Content.ContentType)
	tbm, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode AuthenticatedContentTBM: %w", err)
	}
	return e.suite.MAC(e.membershipKey, tbm), nil
}

// ConfirmationTag computes MAC(confirmation_key, confirmed_transcript_hash).
func ConfirmationTag(s *suite.Suite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return s.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks, in constant time, a commit's confirmation
// tag against the new epoch's confirmation key and confirmed transcript hash.
func VerifyConfirmationTag(s *suite.Suite, confirmationKey, confirmedTranscriptHash, tag []byte) error {
	if !s.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag) {
		return ErrConfirmationTag
	}
	return nil
}

// ConfirmedTranscriptHash computes Hash(interim_transcript_hash ||
// ConfirmedTranscriptHashInput) for the commit in ac (RFC 9420, Section 8.2).
func ConfirmedTranscriptHash(s *suite.Suite, interim []byte, ac *message.AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != message.ContentCommit {
		return nil, fmt.Errorf("%w: transcript hash over content type %d", ErrInvalidMessage, ac.Content.ContentType)
	}
	input, err := codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddBytes(interim)
		b.AddUint16(uint16(ac.WireFormat))
		ac.Content.Encode(b)
		codec.AddOpaque(b, ac.Auth.Signature)
	})
	if err != nil {
		return nil, fmt.Errorf("failed to encode ConfirmedTranscriptHashInput: %w", err)
	}
	return s.Hash(input), nil
}

// InterimTranscriptHash computes Hash(confirmed_transcript_hash ||
// InterimTranscriptHashInput).
func InterimTranscriptHash(s *suite.Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	input, err := codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddBytes(confirmed)
		codec.AddOpaque(b, confirmationTag)
	})
	if err != nil {
		return nil, fmt.Errorf("failed to encode InterimTranscriptHashInput: %w", err)
	}
	return s.Hash(input), nil
}

// equalMAC compares two MACs in constant time.
func equalMAC(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
