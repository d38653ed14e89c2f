package message

import (
	"bytes"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
)

// GroupContext summarises the state of a group in one epoch (RFC 9420,
// Section 8.1).
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             suite.ID
	GroupID                 GroupID
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

// Encode appends the group context to b.
func (g *GroupContext) Encode(b *cryptobyte.Builder) {
	b.AddUint16(uint16(g.Version))
	b.AddUint16(uint16(g.CipherSuite))
	codec.AddOpaque(b, g.GroupID)
	b.AddUint64(g.Epoch)
	codec.AddOpaque(b, g.TreeHash)
	codec.AddOpaque(b, g.ConfirmedTranscriptHash)
	g.Extensions.Encode(b)
}

// Decode reads a group context from s.
func (g *GroupContext) Decode(s *cryptobyte.String) bool {
	*g = GroupContext{}
	var v, cs uint16
	if !s.ReadUint16(&v) || !s.ReadUint16(&cs) || !readBytes(s, &g.GroupID) || !s.ReadUint64(&g.Epoch) ||
		!codec.ReadOpaque(s, &g.TreeHash) || !codec.ReadOpaque(s, &g.ConfirmedTranscriptHash) ||
		!g.Extensions.Decode(s) {
		return false
	}
	g.Version, g.CipherSuite = ProtocolVersion(v), suite.ID(cs)
	return true
}

// Bytes returns the encoded group context.
func (g *GroupContext) Bytes() ([]byte, error) { return encode(g) }

// Clone returns a deep copy of g.
func (g *GroupContext) Clone() *GroupContext {
	c := *g
	c.GroupID = bytes.Clone(g.GroupID)
	c.TreeHash = bytes.Clone(g.TreeHash)
	c.ConfirmedTranscriptHash = bytes.Clone(g.ConfirmedTranscriptHash)
	c.Extensions = g.Extensions.Clone()
	return &c
}

// DecodeGroupContext decodes a complete GroupContext.
func DecodeGroupContext(data []byte) (*GroupContext, error) {
	g := new(GroupContext)
	if err := codec.Unmarshal(data, "group context", g.Decode); err != nil {
		return nil, err
	}
	return g, nil
}
