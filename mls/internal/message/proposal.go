package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// Add proposes adding the client of a KeyPackage.
type Add struct {
	KeyPackage KeyPackage
}

// Encode appends the proposal body to b.
func (a *Add) Encode(b *cryptobyte.Builder) { a.KeyPackage.Encode(b) }

// Decode reads the proposal body from s.
func (a *Add) Decode(s *cryptobyte.String) bool { return a.KeyPackage.Decode(s) }

// Update proposes replacing the sender's leaf node.
type Update struct {
	LeafNode LeafNode
}

// Encode appends the proposal body to b.
func (u *Update) Encode(b *cryptobyte.Builder) { u.LeafNode.Encode(b) }

// Decode reads the proposal body from s.
func (u *Update) Decode(s *cryptobyte.String) bool { return u.LeafNode.Decode(s) }

// Remove proposes removing the member at a leaf.
type Remove struct {
	Removed treemath.LeafIndex
}

// Encode appends the proposal body to b.
func (r *Remove) Encode(b *cryptobyte.Builder) { b.AddUint32(uint32(r.Removed)) }

// Decode reads the proposal body from s.
func (r *Remove) Decode(s *cryptobyte.String) bool {
	var x uint32
	if !s.ReadUint32(&x) {
		return false
	}
	r.Removed = treemath.LeafIndex(x)
	return true
}

// PreSharedKey proposes injecting a PSK into the next epoch.
type PreSharedKey struct {
	PSK PreSharedKeyID
}

// Encode appends the proposal body to b.
func (p *PreSharedKey) Encode(b *cryptobyte.Builder) { p.PSK.Encode(b) }

// Decode reads the proposal body from s.
func (p *PreSharedKey) Decode(s *cryptobyte.String) bool { return p.PSK.Decode(s) }

// ReInit proposes closing the group and restarting it with new parameters.
type ReInit struct {
	GroupID     GroupID
	Version     ProtocolVersion
	CipherSuite suite.ID
	Extensions  Extensions
}

// Encode appends the proposal body to b.
func (r *ReInit) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, r.GroupID)
	b.AddUint16(uint16(r.Version))
	b.AddUint16(uint16(r.CipherSuite))
	r.Extensions.Encode(b)
}

// Decode reads the proposal body from s.
func (r *ReInit) Decode(s *cryptobyte.String) bool {
	var v, cs uint16
	if !readBytes(s, &r.GroupID) || !s.ReadUint16(&v) || !s.ReadUint16(&cs) || !r.Extensions.Decode(s) {
		return false
	}
	r.Version, r.CipherSuite = ProtocolVersion(v), suite.ID(cs)
	return true
}

// ExternalInit carries the KEM output of an external joiner.
type ExternalInit struct {
	KEMOutput []byte
}

// Encode appends the proposal body to b.
func (e *ExternalInit) Encode(b *cryptobyte.Builder) { codec.AddOpaque(b, e.KEMOutput) }

// Decode reads the proposal body from s.
func (e *ExternalInit) Decode(s *cryptobyte.String) bool { return codec.ReadOpaque(s, &e.KEMOutput) }

// GroupContextExtensions proposes replacing the group context extensions.
type GroupContextExtensions struct {
	Extensions Extensions
}

// Encode appends the proposal body to b.
func (g *GroupContextExtensions) Encode(b *cryptobyte.Builder) { g.Extensions.Encode(b) }

// Decode reads the proposal body from s.
func (g *GroupContextExtensions) Decode(s *cryptobyte.String) bool { return g.Extensions.Decode(s) }

// Proposal is one proposed change (RFC 9420, Section 12.1). Type selects
// which one of the pointer fields is set.
type Proposal struct {
	Type                   ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

// body returns the field selected by Type, or nil.
func (p *Proposal) body() codecBody {
	switch p.Type {
	case ProposalAdd:
		return nilIfNil(p.Add)
	case ProposalUpdate:
		return nilIfNil(p.Update)
	case ProposalRemove:
		return nilIfNil(p.Remove)
	case ProposalPSK:
		return nilIfNil(p.PreSharedKey)
	case ProposalReInit:
		return nilIfNil(p.ReInit)
	case ProposalExternalInit:
		return nilIfNil(p.ExternalInit)
	case ProposalGroupContextExtensions:
		return nilIfNil(p.GroupContextExtensions)
	}
	return nil
}

// codecBody is a structure that can be encoded and decoded.
type codecBody interface {
	Encode(*cryptobyte.Builder)
	Decode(*cryptobyte.String) bool
}

// nilIfNil turns a typed nil pointer into a nil interface.
func nilIfNil[T any, P interface {
	*T
	codecBody
}](p P) codecBody {
	if p == nil {
		return nil
	}
	return p
}

// Encode appends the proposal to b.
func (p *Proposal) Encode(b *cryptobyte.Builder) {
	body := p.body()
	if body == nil {
		b.SetError(fmt.Errorf("%w: type 0x%04x without its body", ErrEncode, uint16(p.Type)))
		return
	}
	b.AddUint16(uint16(p.Type))
	body.Encode(b)
}

// Decode reads a proposal from s. Unknown proposal types fail, since their
// body cannot be parsed.
func (p *Proposal) Decode(s *cryptobyte.String) bool {
	var t uint16
	if !s.ReadUint16(&t) {
		return false
	}
	*p = Proposal{Type: ProposalType(t)}
	switch p.Type {
	case ProposalAdd:
		p.Add = new(Add)
	case ProposalUpdate:
		p.Update = new(Update)
	case ProposalRemove:
		p.Remove = new(Remove)
	case ProposalPSK:
		p.PreSharedKey = new(PreSharedKey)
	case ProposalReInit:
		p.ReInit = new(ReInit)
	case ProposalExternalInit:
		p.ExternalInit = new(ExternalInit)
	case ProposalGroupContextExtensions:
		p.GroupContextExtensions = new(GroupContextExtensions)
	default:
		return false
	}
	return p.body().Decode(s)
}

// Bytes returns the encoded proposal.
func (p *Proposal) Bytes() ([]byte, error) { return encode(p) }

// ProposalOrRefType says whether a commit carries a proposal or a reference.
type ProposalOrRefType uint8

// ProposalOrRef types.
const (
	ProposalOrRefProposal  ProposalOrRefType = 1
	ProposalOrRefReference ProposalOrRefType = 2
)

// ProposalOrRef is a proposal in a commit, by value or by reference.
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal
	Reference ProposalRef
}

// Encode appends the value to b.
func (p *ProposalOrRef) Encode(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Type))
	switch p.Type {
	case ProposalOrRefProposal:
		if p.Proposal == nil {
			b.SetError(fmt.Errorf("%w: by-value proposal missing", ErrEncode))
			return
		}
		p.Proposal.Encode(b)
	case ProposalOrRefReference:
		codec.AddOpaque(b, p.Reference)
	default:
		b.SetError(fmt.Errorf("%w: ProposalOrRef type %d", ErrEncode, p.Type))
	}
}

// Decode reads the value from s.
func (p *ProposalOrRef) Decode(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	*p = ProposalOrRef{Type: ProposalOrRefType(t)}
	switch p.Type {
	case ProposalOrRefProposal:
		p.Proposal = new(Proposal)
		return p.Proposal.Decode(s)
	case ProposalOrRefReference:
		return readBytes(s, &p.Reference)
	default:
		return false
	}
}

// Commit applies a list of proposals and optionally updates the
// committer's path (RFC 9420, Section 12.4).
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// Encode appends the commit to b.
func (c *Commit) Encode(b *cryptobyte.Builder) {
	addList(b, c.Proposals, func(b *cryptobyte.Builder, p ProposalOrRef) { p.Encode(b) })
	codec.AddOptional(b, c.Path != nil, func(b *cryptobyte.Builder) { c.Path.Encode(b) })
}

// Decode reads a commit from s.
func (c *Commit) Decode(s *cryptobyte.String) bool {
	*c = Commit{}
	var present bool
	if !readList(s, &c.Proposals, func(s *cryptobyte.String, p *ProposalOrRef) bool { return p.Decode(s) }) ||
		!codec.ReadOptional(s, &present) {
		return false
	}
	if present {
		c.Path = new(UpdatePath)
		return c.Path.Decode(s)
	}
	return true
}

// Bytes returns the encoded commit.
func (c *Commit) Bytes() ([]byte, error) { return encode(c) }

// PreSharedKeyID identifies a PSK (RFC 9420, Section 8.4). PSKID is set for
// external PSKs; Usage, PSKGroupID and PSKEpoch for resumption PSKs.
type PreSharedKeyID struct {
	Type       PSKType
	PSKID      []byte
	Usage      ResumptionPSKUsage
	PSKGroupID GroupID
	PSKEpoch   uint64
	Nonce      []byte
}

// Encode appends the id to b.
func (p *PreSharedKeyID) Encode(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Type))
	switch p.Type {
	case PSKExternal:
		codec.AddOpaque(b, p.PSKID)
	case PSKResumption:
		b.AddUint8(uint8(p.Usage))
		codec.AddOpaque(b, p.PSKGroupID)
		b.AddUint64(p.PSKEpoch)
	default:
		b.SetError(fmt.Errorf("%w: PSK type %d", ErrEncode, p.Type))
		return
	}
	codec.AddOpaque(b, p.Nonce)
}

// Decode reads the id from s. Unknown PSK types and resumption usages fail.
func (p *PreSharedKeyID) Decode(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	*p = PreSharedKeyID{Type: PSKType(t)}
	switch p.Type {
	case PSKExternal:
		if !codec.ReadOpaque(s, &p.PSKID) {
			return false
		}
	case PSKResumption:
		var u uint8
		if !s.ReadUint8(&u) || u < uint8(ResumptionApplication) || u > uint8(ResumptionBranch) ||
			!readBytes(s, &p.PSKGroupID) || !s.ReadUint64(&p.PSKEpoch) {
			return false
		}
		p.Usage = ResumptionPSKUsage(u)
	default:
		return false
	}
	return codec.ReadOpaque(s, &p.Nonce)
}

// Bytes returns the encoded id.
func (p *PreSharedKeyID) Bytes() ([]byte, error) { return encode(p) }

// PSKLabel is the context of one PSK in the PSK secret derivation (RFC
// 9420, Section 8.4).
type PSKLabel struct {
	ID    PreSharedKeyID
	Index uint16
	Count uint16
}

// Encode appends the label to b.
func (l *PSKLabel) Encode(b *cryptobyte.Builder) {
	l.ID.Encode(b)
	b.AddUint16(l.Index)
	b.AddUint16(l.Count)
}

// Decode reads the label from s.
func (l *PSKLabel) Decode(s *cryptobyte.String) bool {
	return l.ID.Decode(s) && s.ReadUint16(&l.Index) && s.ReadUint16(&l.Count)
}
