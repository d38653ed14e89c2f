package message

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// Credential binds an identity to a signature key (RFC 9420, Section 5.3).
// Identity is set for basic credentials, Certificates (DER, end-entity
// first) for X.509 credentials.
type Credential struct {
	Type         CredentialType
	Identity     []byte
	Certificates [][]byte
}

// NewBasicCredential returns a basic credential for identity.
func NewBasicCredential(identity []byte) Credential {
	return Credential{Type: CredentialBasic, Identity: identity}
}

// Encode appends the credential to b. A credential of a type this package
// cannot encode sets an error on b.
func (c *Credential) Encode(b *cryptobyte.Builder) {
	b.AddUint16(uint16(c.Type))
	switch c.Type {
	case CredentialBasic:
		codec.AddOpaque(b, c.Identity)
	case CredentialX509:
		addList(b, c.Certificates, func(b *cryptobyte.Builder, cert []byte) { codec.AddOpaque(b, cert) })
	default:
		b.SetError(fmt.Errorf("%w: credential type 0x%04x", ErrEncode, uint16(c.Type)))
	}
}

// Decode reads a credential from s. Credential types other than basic and
// x509 cannot be parsed and fail.
func (c *Credential) Decode(s *cryptobyte.String) bool {
	var t uint16
	if !s.ReadUint16(&t) {
		return false
	}
	*c = Credential{Type: CredentialType(t)}
	switch c.Type {
	case CredentialBasic:
		return codec.ReadOpaque(s, &c.Identity)
	case CredentialX509:
		return readList(s, &c.Certificates, codec.ReadOpaque)
	default:
		return false
	}
}

// Clone returns a deep copy of c.
func (c *Credential) Clone() Credential {
	out := Credential{Type: c.Type, Identity: bytes.Clone(c.Identity)}
	if c.Certificates != nil {
		out.Certificates = make([][]byte, len(c.Certificates))
		for i, cert := range c.Certificates {
			out.Certificates[i] = bytes.Clone(cert)
		}
	}
	return out
}

// Equal reports whether c and o are the same credential.
func (c *Credential) Equal(o *Credential) bool {
	if c.Type != o.Type || !bytes.Equal(c.Identity, o.Identity) || len(c.Certificates) != len(o.Certificates) {
		return false
	}
	for i := range c.Certificates {
		if !bytes.Equal(c.Certificates[i], o.Certificates[i]) {
			return false
		}
	}
	return true
}
