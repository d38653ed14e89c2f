package suite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// Signer holds a parsed signature private key, so that signing does not pay
// for key expansion each time.
type Signer struct {
	suite  *Suite
	ed     ed25519.PrivateKey
	ec     *ecdsa.PrivateKey
	public []byte
}

// GenerateSignatureKey returns a fresh signature key pair drawn from rand.
func (s *Suite) GenerateSignatureKey(rand io.Reader) (priv, pub []byte, err error) {
	switch s.sig {
	case sigEd25519:
		pubKey, privKey, err := ed25519.GenerateKey(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to generate signature key: %w", err)
		}
		return privKey.Seed(), pubKey, nil
	default:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to generate signature key: %w", err)
		}
		priv, err := k.Bytes()
		if err != nil {
			return nil, nil, err
		}
		pub, err := k.PublicKey.Bytes()
		return priv, pub, err
	}
}

// NewSigner parses a signature private key.
func (s *Suite) NewSigner(priv []byte) (*Signer, error) {
	switch s.sig {
	case sigEd25519:
		if len(priv) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: Ed25519 private key must be %d bytes", ErrInvalidKey, ed25519.SeedSize)
		}
		k := ed25519.NewKeyFromSeed(priv)
		return &Signer{suite: s, ed: k, public: k.Public().(ed25519.PublicKey)}, nil
	default:
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv)
		if err != nil {
			return nil, fmt.Errorf("%w: P-256 private key: %v", ErrInvalidKey, err)
		}
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, err
		}
		return &Signer{suite: s, ec: k, public: pub}, nil
	}
}

// Public returns the signer's public key in wire form.
func (k *Signer) Public() []byte { return k.public }

// Sign signs msg directly (no label).
func (k *Signer) Sign(msg []byte) ([]byte, error) {
	if k.ed != nil {
		return ed25519.Sign(k.ed, msg), nil
	}
	digest := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, k.ec, digest[:])
}

// SignWithLabel signs SignContent{"MLS 1.0 " + label, content}.
func (k *Signer) SignWithLabel(label string, content []byte) ([]byte, error) {
	return k.Sign(signContent(label, content))
}

func signContent(label string, content []byte) []byte {
	// Sized up front: content is a whole message on the send path, and
	// growing the buffer while copying it showed up in encrypt profiles.
	b := cryptobyte.NewBuilder(make([]byte, 0, len(labelPrefix)+len(label)+len(content)+8))
	codec.AddVarint(b, uint64(len(labelPrefix)+len(label)))
	b.AddBytes([]byte(labelPrefix))
	b.AddBytes([]byte(label))
	codec.AddOpaque(b, content)
	out, _ := b.Bytes()
	return out
}

// ValidateSignaturePublicKey checks that pub is a well-formed public key.
func (s *Suite) ValidateSignaturePublicKey(pub []byte) error {
	switch s.sig {
	case sigEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key must be %d bytes", ErrInvalidKey, ed25519.PublicKeySize)
		}
	default:
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub); err != nil {
			return fmt.Errorf("%w: P-256 public key: %v", ErrInvalidKey, err)
		}
	}
	return nil
}

// Verify checks a signature over msg (no label).
func (s *Suite) Verify(pub, msg, sig []byte) error {
	switch s.sig {
	case sigEd25519:
		if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
			return ErrInvalidSignature
		}
	default:
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
		if err != nil {
			return fmt.Errorf("%w: P-256 public key: %v", ErrInvalidKey, err)
		}
		digest := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, digest[:], sig) {
			return ErrInvalidSignature
		}
	}
	return nil
}

// VerifyWithLabel checks a signature made by [Signer.SignWithLabel].
func (s *Suite) VerifyWithLabel(pub []byte, label string, content, sig []byte) error {
	return s.Verify(pub, signContent(label, content), sig)
}
