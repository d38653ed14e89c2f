package mls

import (
	"bytes"
	"fmt"

	"github.com/parley-im/parley/mls/internal/suite"
)

// Credential is a member's identity as the group sees it: an MLS
// BasicCredential carrying opaque identity bytes that the application
// interprets and vouches for (Config.CredentialValidator).
type Credential struct {
	// Identity is the application's identity bytes (Parley: the device
	// certificate).
	Identity []byte
}

// Equal reports whether c and o carry the same identity.
func (c Credential) Equal(o Credential) bool { return bytes.Equal(c.Identity, o.Identity) }

// SignaturePublicKey is a member's signature public key in its MLS wire
// form.
type SignaturePublicKey []byte

// Signer is a member's signature key pair for one cipher suite.
type Signer struct {
	suite CipherSuite
	priv  []byte
	s     *suite.Signer
}

// GenerateSigner returns a fresh signature key for cfg.Suite, drawn from
// cfg.Rand.
func GenerateSigner(cfg *Config) (*Signer, error) {
	cs, err := cfg.suite()
	if err != nil {
		return nil, err
	}
	priv, _, err := cs.GenerateSignatureKey(cfg.rand())
	if err != nil {
		return nil, fmt.Errorf("failed to generate signer: %w", err)
	}
	return NewSigner(cfg.Suite, priv)
}

// NewSigner parses a signature private key of the given suite: a 32-byte
// Ed25519 seed or P-256 scalar, as returned by [Signer.PrivateKey].
func NewSigner(cs CipherSuite, priv []byte) (*Signer, error) {
	s, err := suite.Get(suite.ID(cs))
	if err != nil {
		return nil, wrapf(ErrUnsupported, "cipher suite 0x%04x", uint16(cs))
	}
	k, err := s.NewSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("failed to parse signature key: %w", err)
	}
	return &Signer{suite: cs, priv: bytes.Clone(priv), s: k}, nil
}

// CipherSuite returns the suite the key belongs to.
func (s *Signer) CipherSuite() CipherSuite { return s.suite }

// PublicKey returns the signature public key.
func (s *Signer) PublicKey() SignaturePublicKey { return bytes.Clone(s.s.Public()) }

// PrivateKey returns the private key, for storage.
func (s *Signer) PrivateKey() []byte { return bytes.Clone(s.priv) }
