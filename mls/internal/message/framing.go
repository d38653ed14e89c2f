package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// Sender identifies who sent a FramedContent (RFC 9420, Section 6).
// LeafIndex is set for members, SenderIndex (an index into the
// external_senders extension) for external senders.
type Sender struct {
	Type        SenderType
	LeafIndex   treemath.LeafIndex
	SenderIndex uint32
}

// Encode appends the sender to b.
func (s *Sender) Encode(b *cryptobyte.Builder) {
	b.AddUint8(uint8(s.Type))
	switch s.Type {
	case SenderMember:
		b.AddUint32(uint32(s.LeafIndex))
	case SenderExternal:
		b.AddUint32(s.SenderIndex)
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		b.SetError(fmt.Errorf("%w: sender type %d", ErrEncode, s.Type))
	}
}

// Decode reads a sender from str. Unknown sender types fail.
func (s *Sender) Decode(str *cryptobyte.String) bool {
	var t uint8
	if !str.ReadUint8(&t) {
		return false
	}
	*s = Sender{Type: SenderType(t)}
	switch s.Type {
	case SenderMember:
		var x uint32
		if !str.ReadUint32(&x) {
			return false
		}
		s.LeafIndex = treemath.LeafIndex(x)
	case SenderExternal:
		return str.ReadUint32(&s.SenderIndex)
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		return false
	}
	return true
}

// FramedContent is the content of a handshake or application message with
// its group, epoch and sender (RFC 9420, Section 6). ContentType selects
// which of ApplicationData, Proposal and Commit is meaningful.
type FramedContent struct {
	GroupID           GroupID
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

// encodeBody appends the content selected by ct.
func encodeBody(b *cryptobyte.Builder, ct ContentType, app []byte, p *Proposal, c *Commit) {
	switch {
	case ct == ContentApplication:
		codec.AddOpaque(b, app)
	case ct == ContentProposal && p != nil:
		p.Encode(b)
	case ct == ContentCommit && c != nil:
		c.Encode(b)
	default:
		b.SetError(fmt.Errorf("%w: content type %d without its content", ErrEncode, ct))
	}
}

// decodeBody reads the content selected by ct.
func decodeBody(s *cryptobyte.String, ct ContentType, app *[]byte, p **Proposal, c **Commit) bool {
	switch ct {
	case ContentApplication:
		return codec.ReadOpaque(s, app)
	case ContentProposal:
		*p = new(Proposal)
		return (*p).Decode(s)
	case ContentCommit:
		*c = new(Commit)
		return (*c).Decode(s)
	}
	return false
}

// Encode appends the content to b.
func (f *FramedContent) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, f.GroupID)
	b.AddUint64(f.Epoch)
	f.Sender.Encode(b)
	codec.AddOpaque(b, f.AuthenticatedData)
	b.AddUint8(uint8(f.ContentType))
	encodeBody(b, f.ContentType, f.ApplicationData, f.Proposal, f.Commit)
}

// Decode reads the content from s.
func (f *FramedContent) Decode(s *cryptobyte.String) bool {
	*f = FramedContent{}
	var ct uint8
	if !readBytes(s, &f.GroupID) || !s.ReadUint64(&f.Epoch) || !f.Sender.Decode(s) ||
		!codec.ReadOpaque(s, &f.AuthenticatedData) || !s.ReadUint8(&ct) {
		return false
	}
	f.ContentType = ContentType(ct)
	return decodeBody(s, f.ContentType, &f.ApplicationData, &f.Proposal, &f.Commit)
}

// FramedContentAuthData holds a content's signature and, for commits, its
// confirmation tag.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte
}

// Encode appends the auth data of content type ct to b.
func (a *FramedContentAuthData) Encode(b *cryptobyte.Builder, ct ContentType) {
	codec.AddOpaque(b, a.Signature)
	if ct == ContentCommit {
		codec.AddOpaque(b, a.ConfirmationTag)
	}
}

// Decode reads auth data of content type ct from s.
func (a *FramedContentAuthData) Decode(s *cryptobyte.String, ct ContentType) bool {
	*a = FramedContentAuthData{}
	if !codec.ReadOpaque(s, &a.Signature) {
		return false
	}
	if ct == ContentCommit {
		return codec.ReadOpaque(s, &a.ConfirmationTag)
	}
	return true
}

// AuthenticatedContent is a FramedContent with its authentication data and
// the wire format it travels in.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// Encode appends the value to b.
func (a *AuthenticatedContent) Encode(b *cryptobyte.Builder) {
	b.AddUint16(uint16(a.WireFormat))
	a.Content.Encode(b)
	a.Auth.Encode(b, a.Content.ContentType)
}

// Decode reads the value from s. The wire format must be a public or
// private message.
func (a *AuthenticatedContent) Decode(s *cryptobyte.String) bool {
	*a = AuthenticatedContent{}
	var wf uint16
	if !s.ReadUint16(&wf) || !a.Content.Decode(s) || !a.Auth.Decode(s, a.Content.ContentType) {
		return false
	}
	a.WireFormat = WireFormat(wf)
	return a.WireFormat == WireFormatPublicMessage || a.WireFormat == WireFormatPrivateMessage
}

// Bytes returns the encoded value.
func (a *AuthenticatedContent) Bytes() ([]byte, error) { return encode(a) }

// ProposalRef returns RefHash("MLS 1.0 Proposal Reference", a), the
// reference of the proposal a carries.
func (a *AuthenticatedContent) ProposalRef(cs *suite.Suite) (ProposalRef, error) {
	if err := needSuite(cs); err != nil {
		return nil, err
	}
	if a.Content.ContentType != ContentProposal {
		return nil, fmt.Errorf("%w: content type %d is not a proposal", ErrContentType, a.Content.ContentType)
	}
	data, err := a.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode proposal: %w", err)
	}
	return cs.RefHash("MLS 1.0 Proposal Reference", data), nil
}

// ConfirmedTranscriptHashInput returns the part of a that feeds the
// confirmed transcript hash.
func (a *AuthenticatedContent) ConfirmedTranscriptHashInput() *ConfirmedTranscriptHashInput {
	return &ConfirmedTranscriptHashInput{WireFormat: a.WireFormat, Content: a.Content, Signature: a.Auth.Signature}
}

// FramedContentTBS is what a FramedContent signature covers. Context is
// included only for member and new_member_commit senders, and must be set
// for them.
type FramedContentTBS struct {
	WireFormat WireFormat
	Content    *FramedContent
	Context    *GroupContext
}

// Encode appends the value to b, with version mls10.
func (t *FramedContentTBS) Encode(b *cryptobyte.Builder) {
	if t.Content == nil {
		b.SetError(fmt.Errorf("%w: FramedContentTBS without content", ErrEncode))
		return
	}
	b.AddUint16(uint16(MLS10))
	b.AddUint16(uint16(t.WireFormat))
	t.Content.Encode(b)
	switch t.Content.Sender.Type {
	case SenderMember, SenderNewMemberCommit:
		if t.Context == nil {
			b.SetError(fmt.Errorf("%w: FramedContentTBS needs the group context", ErrEncode))
			return
		}
		t.Context.Encode(b)
	}
}

// Bytes returns the encoded value.
func (t *FramedContentTBS) Bytes() ([]byte, error) { return encode(t) }

// AuthenticatedContentTBM is what a PublicMessage membership tag covers.
type AuthenticatedContentTBM struct {
	ContentTBS FramedContentTBS
	Auth       *FramedContentAuthData
}

// Encode appends the value to b.
func (t *AuthenticatedContentTBM) Encode(b *cryptobyte.Builder) {
	if t.Auth == nil || t.ContentTBS.Content == nil {
		b.SetError(fmt.Errorf("%w: AuthenticatedContentTBM without content or auth", ErrEncode))
		return
	}
	t.ContentTBS.Encode(b)
	t.Auth.Encode(b, t.ContentTBS.Content.ContentType)
}

// Bytes returns the encoded value.
func (t *AuthenticatedContentTBM) Bytes() ([]byte, error) { return encode(t) }

// PublicMessage is a signed, unencrypted message (RFC 9420, Section 6.2).
// MembershipTag is present exactly when the sender is a member.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

// Encode appends the message to b.
func (p *PublicMessage) Encode(b *cryptobyte.Builder) {
	p.Content.Encode(b)
	p.Auth.Encode(b, p.Content.ContentType)
	if p.Content.Sender.Type == SenderMember {
		codec.AddOpaque(b, p.MembershipTag)
	}
}

// Decode reads the message from s.
func (p *PublicMessage) Decode(s *cryptobyte.String) bool {
	*p = PublicMessage{}
	if !p.Content.Decode(s) || !p.Auth.Decode(s, p.Content.ContentType) {
		return false
	}
	if p.Content.Sender.Type == SenderMember {
		return codec.ReadOpaque(s, &p.MembershipTag)
	}
	return true
}

// AuthenticatedContent returns the message as an AuthenticatedContent.
func (p *PublicMessage) AuthenticatedContent() *AuthenticatedContent {
	return &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: p.Content, Auth: p.Auth}
}

// PrivateMessage is an encrypted message (RFC 9420, Section 6.3).
type PrivateMessage struct {
	GroupID             GroupID
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// Encode appends the message to b.
func (p *PrivateMessage) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, p.GroupID)
	b.AddUint64(p.Epoch)
	b.AddUint8(uint8(p.ContentType))
	codec.AddOpaque(b, p.AuthenticatedData)
	codec.AddOpaque(b, p.EncryptedSenderData)
	codec.AddOpaque(b, p.Ciphertext)
}

// Decode reads the message from s. Unknown content types fail.
func (p *PrivateMessage) Decode(s *cryptobyte.String) bool {
	*p = PrivateMessage{}
	var ct uint8
	if !readBytes(s, &p.GroupID) || !s.ReadUint64(&p.Epoch) || !s.ReadUint8(&ct) ||
		!codec.ReadOpaque(s, &p.AuthenticatedData) || !codec.ReadOpaque(s, &p.EncryptedSenderData) ||
		!codec.ReadOpaque(s, &p.Ciphertext) {
		return false
	}
	p.ContentType = ContentType(ct)
	return p.ContentType.valid()
}

// ContentAAD returns the PrivateContentAAD of the message.
func (p *PrivateMessage) ContentAAD() *PrivateContentAAD {
	return &PrivateContentAAD{GroupID: p.GroupID, Epoch: p.Epoch, ContentType: p.ContentType, AuthenticatedData: p.AuthenticatedData}
}

// SenderDataAAD returns the SenderDataAAD of the message.
func (p *PrivateMessage) SenderDataAAD() *SenderDataAAD {
	return &SenderDataAAD{GroupID: p.GroupID, Epoch: p.Epoch, ContentType: p.ContentType}
}

// PrivateMessageContent is the plaintext of a PrivateMessage's ciphertext:
// the content, its auth data and Padding zero bytes.
type PrivateMessageContent struct {
	ContentType     ContentType
	ApplicationData []byte
	Proposal        *Proposal
	Commit          *Commit
	Auth            FramedContentAuthData
	Padding         int
}

// Encode appends the plaintext to b.
func (p *PrivateMessageContent) Encode(b *cryptobyte.Builder) {
	encodeBody(b, p.ContentType, p.ApplicationData, p.Proposal, p.Commit)
	p.Auth.Encode(b, p.ContentType)
	if p.Padding < 0 || p.Padding > codec.MaxVectorLen {
		b.SetError(fmt.Errorf("%w: padding length %d", ErrEncode, p.Padding))
		return
	}
	b.AddBytes(make([]byte, p.Padding))
}

// Bytes returns the encoded plaintext.
func (p *PrivateMessageContent) Bytes() ([]byte, error) { return encode(p) }

// DecodePrivateMessageContent decodes a decrypted PrivateMessage plaintext
// of content type ct. Everything after the auth data is padding and must be
// zero.
func DecodePrivateMessageContent(data []byte, ct ContentType) (*PrivateMessageContent, error) {
	p := &PrivateMessageContent{ContentType: ct}
	err := codec.Unmarshal(data, "private message content", func(s *cryptobyte.String) bool {
		if !decodeBody(s, ct, &p.ApplicationData, &p.Proposal, &p.Commit) || !p.Auth.Decode(s, ct) {
			return false
		}
		for _, c := range *s {
			if c != 0 {
				return false
			}
		}
		p.Padding = len(*s)
		return s.Skip(len(*s))
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// PrivateContentAAD is the AAD of a PrivateMessage's content encryption.
type PrivateContentAAD struct {
	GroupID           GroupID
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte
}

// Encode appends the value to b.
func (a *PrivateContentAAD) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, a.GroupID)
	b.AddUint64(a.Epoch)
	b.AddUint8(uint8(a.ContentType))
	codec.AddOpaque(b, a.AuthenticatedData)
}

// Bytes returns the encoded value.
func (a *PrivateContentAAD) Bytes() ([]byte, error) { return encode(a) }

// SenderData identifies the sender and key generation of a PrivateMessage.
type SenderData struct {
	LeafIndex  treemath.LeafIndex
	Generation uint32
	ReuseGuard [4]byte
}

// Encode appends the value to b.
func (d *SenderData) Encode(b *cryptobyte.Builder) {
	b.AddUint32(uint32(d.LeafIndex))
	b.AddUint32(d.Generation)
	b.AddBytes(d.ReuseGuard[:])
}

// Decode reads the value from s.
func (d *SenderData) Decode(s *cryptobyte.String) bool {
	var leaf uint32
	if !s.ReadUint32(&leaf) || !s.ReadUint32(&d.Generation) || !s.CopyBytes(d.ReuseGuard[:]) {
		return false
	}
	d.LeafIndex = treemath.LeafIndex(leaf)
	return true
}

// Bytes returns the encoded value.
func (d *SenderData) Bytes() ([]byte, error) { return encode(d) }

// DecodeSenderData decodes a decrypted SenderData.
func DecodeSenderData(data []byte) (*SenderData, error) {
	d := new(SenderData)
	if err := codec.Unmarshal(data, "sender data", d.Decode); err != nil {
		return nil, err
	}
	return d, nil
}

// SenderDataAAD is the AAD of a PrivateMessage's sender data encryption.
type SenderDataAAD struct {
	GroupID     GroupID
	Epoch       uint64
	ContentType ContentType
}

// Encode appends the value to b.
func (a *SenderDataAAD) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, a.GroupID)
	b.AddUint64(a.Epoch)
	b.AddUint8(uint8(a.ContentType))
}

// Bytes returns the encoded value.
func (a *SenderDataAAD) Bytes() ([]byte, error) { return encode(a) }

// ConfirmedTranscriptHashInput is the part of a commit's AuthenticatedContent
// hashed into the confirmed transcript hash.
type ConfirmedTranscriptHashInput struct {
	WireFormat WireFormat
	Content    FramedContent
	Signature  []byte
}

// Encode appends the value to b.
func (c *ConfirmedTranscriptHashInput) Encode(b *cryptobyte.Builder) {
	b.AddUint16(uint16(c.WireFormat))
	c.Content.Encode(b)
	codec.AddOpaque(b, c.Signature)
}

// Decode reads the value from s.
func (c *ConfirmedTranscriptHashInput) Decode(s *cryptobyte.String) bool {
	var wf uint16
	if !s.ReadUint16(&wf) || !c.Content.Decode(s) || !codec.ReadOpaque(s, &c.Signature) {
		return false
	}
	c.WireFormat = WireFormat(wf)
	return c.WireFormat.valid()
}

// Bytes returns the encoded value.
func (c *ConfirmedTranscriptHashInput) Bytes() ([]byte, error) { return encode(c) }

// InterimTranscriptHashInput is the confirmation tag hashed into the
// interim transcript hash.
type InterimTranscriptHashInput struct {
	ConfirmationTag []byte
}

// Encode appends the value to b.
func (i *InterimTranscriptHashInput) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, i.ConfirmationTag)
}

// Decode reads the value from s.
func (i *InterimTranscriptHashInput) Decode(s *cryptobyte.String) bool {
	return codec.ReadOpaque(s, &i.ConfirmationTag)
}

// Bytes returns the encoded value.
func (i *InterimTranscriptHashInput) Bytes() ([]byte, error) { return encode(i) }
