package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// MLSMessage is the outer envelope of everything MLS sends (RFC 9420,
// Section 6). WireFormat selects which one of the pointer fields is set.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// body returns the field selected by WireFormat, or nil.
func (m *MLSMessage) body() codecBody {
	switch m.WireFormat {
	case WireFormatPublicMessage:
		return nilIfNil(m.PublicMessage)
	case WireFormatPrivateMessage:
		return nilIfNil(m.PrivateMessage)
	case WireFormatWelcome:
		return nilIfNil(m.Welcome)
	case WireFormatGroupInfo:
		return nilIfNil(m.GroupInfo)
	case WireFormatKeyPackage:
		return nilIfNil(m.KeyPackage)
	}
	return nil
}

// Encode appends the message to b.
func (m *MLSMessage) Encode(b *cryptobyte.Builder) {
	body := m.body()
	if body == nil {
		b.SetError(fmt.Errorf("%w: wire format 0x%04x without its body", ErrEncode, uint16(m.WireFormat)))
		return
	}
	b.AddUint16(uint16(m.Version))
	b.AddUint16(uint16(m.WireFormat))
	body.Encode(b)
}

// Decode reads a message from s. The version must be mls10 (no other
// version's layout is known), the wire format one of the five defined, and
// a carried KeyPackage must have the envelope's version.
func (m *MLSMessage) Decode(s *cryptobyte.String) bool {
	var v, wf uint16
	if !s.ReadUint16(&v) || !s.ReadUint16(&wf) || ProtocolVersion(v) != MLS10 {
		return false
	}
	*m = MLSMessage{Version: ProtocolVersion(v), WireFormat: WireFormat(wf)}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = new(PublicMessage)
	case WireFormatPrivateMessage:
		m.PrivateMessage = new(PrivateMessage)
	case WireFormatWelcome:
		m.Welcome = new(Welcome)
	case WireFormatGroupInfo:
		m.GroupInfo = new(GroupInfo)
	case WireFormatKeyPackage:
		m.KeyPackage = new(KeyPackage)
	default:
		return false
	}
	if !m.body().Decode(s) {
		return false
	}
	return m.KeyPackage == nil || m.KeyPackage.Version == m.Version
}

// Bytes returns the encoded message.
func (m *MLSMessage) Bytes() ([]byte, error) { return encode(m) }

// DecodeMLSMessage decodes a complete MLSMessage.
func DecodeMLSMessage(data []byte) (*MLSMessage, error) {
	m := new(MLSMessage)
	if err := codec.Unmarshal(data, "MLS message", m.Decode); err != nil {
		return nil, err
	}
	return m, nil
}

// NewPublicMessage wraps p in an mls10 MLSMessage.
func NewPublicMessage(p *PublicMessage) *MLSMessage {
	return &MLSMessage{Version: MLS10, WireFormat: WireFormatPublicMessage, PublicMessage: p}
}

// NewPrivateMessage wraps p in an mls10 MLSMessage.
func NewPrivateMessage(p *PrivateMessage) *MLSMessage {
	return &MLSMessage{Version: MLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: p}
}

// NewWelcome wraps w in an mls10 MLSMessage.
func NewWelcome(w *Welcome) *MLSMessage {
	return &MLSMessage{Version: MLS10, WireFormat: WireFormatWelcome, Welcome: w}
}

// NewGroupInfo wraps g in an mls10 MLSMessage.
func NewGroupInfo(g *GroupInfo) *MLSMessage {
	return &MLSMessage{Version: MLS10, WireFormat: WireFormatGroupInfo, GroupInfo: g}
}

// NewKeyPackage wraps k in an mls10 MLSMessage.
func NewKeyPackage(k *KeyPackage) *MLSMessage {
	return &MLSMessage{Version: MLS10, WireFormat: WireFormatKeyPackage, KeyPackage: k}
}
