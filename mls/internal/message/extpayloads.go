package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// RequiredCapabilities is the required_capabilities group context
// extension: what every member must support.
type RequiredCapabilities struct {
	Extensions  []ExtensionType
	Proposals   []ProposalType
	Credentials []CredentialType
}

// Encode appends the value to b.
func (r *RequiredCapabilities) Encode(b *cryptobyte.Builder) {
	addU16List(b, r.Extensions)
	addU16List(b, r.Proposals)
	addU16List(b, r.Credentials)
}

// Decode reads the value from s.
func (r *RequiredCapabilities) Decode(s *cryptobyte.String) bool {
	return readU16List(s, &r.Extensions) && readU16List(s, &r.Proposals) && readU16List(s, &r.Credentials)
}

// SatisfiedBy checks that c lists every required extension, proposal and
// credential type; default extension and proposal types count as listed.
func (r *RequiredCapabilities) SatisfiedBy(c *Capabilities) error {
	for _, t := range r.Extensions {
		if !c.SupportsExtension(t) {
			return fmt.Errorf("%w: required extension 0x%04x", ErrCapabilities, uint16(t))
		}
	}
	for _, t := range r.Proposals {
		if !c.SupportsProposal(t) {
			return fmt.Errorf("%w: required proposal 0x%04x", ErrCapabilities, uint16(t))
		}
	}
	for _, t := range r.Credentials {
		if !c.SupportsCredential(t) {
			return fmt.Errorf("%w: required credential 0x%04x", ErrCapabilities, uint16(t))
		}
	}
	return nil
}

// ExternalPub is the external_pub GroupInfo extension: the HPKE key
// external joiners encrypt to.
type ExternalPub struct {
	PublicKey HPKEPublicKey
}

// Encode appends the value to b.
func (e *ExternalPub) Encode(b *cryptobyte.Builder) { codec.AddOpaque(b, e.PublicKey) }

// Decode reads the value from s.
func (e *ExternalPub) Decode(s *cryptobyte.String) bool { return readBytes(s, &e.PublicKey) }

// ExternalSender is one entry of the external_senders extension.
type ExternalSender struct {
	SignatureKey SignaturePublicKey
	Credential   Credential
}

// Encode appends the value to b.
func (e *ExternalSender) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, e.SignatureKey)
	e.Credential.Encode(b)
}

// Decode reads the value from s.
func (e *ExternalSender) Decode(s *cryptobyte.String) bool {
	return readBytes(s, &e.SignatureKey) && e.Credential.Decode(s)
}

// ExternalSenders is the external_senders group context extension.
type ExternalSenders []ExternalSender

// Encode appends the list to b.
func (e ExternalSenders) Encode(b *cryptobyte.Builder) {
	addList(b, e, func(b *cryptobyte.Builder, x ExternalSender) { x.Encode(b) })
}

// Decode reads the list from s.
func (e *ExternalSenders) Decode(s *cryptobyte.String) bool {
	var list []ExternalSender
	if !readList(s, &list, func(s *cryptobyte.String, x *ExternalSender) bool { return x.Decode(s) }) {
		return false
	}
	*e = list
	return true
}

// ApplicationID is the application_id leaf node extension.
type ApplicationID []byte

// Encode appends the value to b.
func (a ApplicationID) Encode(b *cryptobyte.Builder) { codec.AddOpaque(b, a) }

// Decode reads the value from s.
func (a *ApplicationID) Decode(s *cryptobyte.String) bool { return readBytes(s, a) }

// extensionPayload is a structure carried in an extension's data.
type extensionPayload interface {
	Encode(*cryptobyte.Builder)
	Decode(*cryptobyte.String) bool
}

// NewExtension encodes payload as the data of an extension of type t.
func NewExtension(t ExtensionType, payload interface{ Encode(*cryptobyte.Builder) }) (Extension, error) {
	data, err := encode(payload)
	if err != nil {
		return Extension{}, fmt.Errorf("failed to encode extension 0x%04x: %w", uint16(t), err)
	}
	return Extension{Type: t, Data: data}, nil
}

// DecodeExtension decodes the data of the first extension of type t in es
// into payload. It reports false when there is no such extension.
func DecodeExtension(es Extensions, t ExtensionType, payload extensionPayload) (bool, error) {
	e := es.Find(t)
	if e == nil {
		return false, nil
	}
	if err := codec.Unmarshal(e.Data, fmt.Sprintf("extension 0x%04x", uint16(t)), payload.Decode); err != nil {
		return true, err
	}
	return true, nil
}
