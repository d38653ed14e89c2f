package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// GroupInfo describes a group to joiners (RFC 9420, Section 12.4.3).
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag []byte
	Signer          treemath.LeafIndex
	Signature       []byte
}

// encodeContent appends the GroupInfoTBS fields.
func (g *GroupInfo) encodeContent(b *cryptobyte.Builder) {
	g.GroupContext.Encode(b)
	g.Extensions.Encode(b)
	codec.AddOpaque(b, g.ConfirmationTag)
	b.AddUint32(uint32(g.Signer))
}

// Encode appends the group info to b.
func (g *GroupInfo) Encode(b *cryptobyte.Builder) {
	g.encodeContent(b)
	codec.AddOpaque(b, g.Signature)
}

// Decode reads a group info from s.
func (g *GroupInfo) Decode(s *cryptobyte.String) bool {
	*g = GroupInfo{}
	var signer uint32
	if !g.GroupContext.Decode(s) || !g.Extensions.Decode(s) || !codec.ReadOpaque(s, &g.ConfirmationTag) ||
		!s.ReadUint32(&signer) || !codec.ReadOpaque(s, &g.Signature) {
		return false
	}
	g.Signer = treemath.LeafIndex(signer)
	return true
}

// Bytes returns the encoded group info.
func (g *GroupInfo) Bytes() ([]byte, error) { return encode(g) }

// DecodeGroupInfo decodes a complete GroupInfo.
func DecodeGroupInfo(data []byte) (*GroupInfo, error) {
	g := new(GroupInfo)
	if err := codec.Unmarshal(data, "group info", g.Decode); err != nil {
		return nil, err
	}
	return g, nil
}

// ToBeSigned returns the GroupInfoTBS encoding.
func (g *GroupInfo) ToBeSigned() ([]byte, error) { return codec.Marshal(g.encodeContent) }

// Sign sets the signature with label "GroupInfoTBS".
func (g *GroupInfo) Sign(signer *suite.Signer) error {
	if err := needSigner(signer); err != nil {
		return err
	}
	tbs, err := g.ToBeSigned()
	if err != nil {
		return fmt.Errorf("failed to encode group info: %w", err)
	}
	sig, err := signer.SignWithLabel("GroupInfoTBS", tbs)
	if err != nil {
		return fmt.Errorf("failed to sign group info: %w", err)
	}
	g.Signature = sig
	return nil
}

// Verify checks the signature with pub, the signature key of the leaf at
// g.Signer.
func (g *GroupInfo) Verify(cs *suite.Suite, pub SignaturePublicKey) error {
	if err := needSuite(cs); err != nil {
		return err
	}
	tbs, err := g.ToBeSigned()
	if err != nil {
		return fmt.Errorf("failed to encode group info: %w", err)
	}
	if err := cs.VerifyWithLabel(pub, "GroupInfoTBS", tbs, g.Signature); err != nil {
		return fmt.Errorf("failed to verify group info signature: %w", err)
	}
	return nil
}
