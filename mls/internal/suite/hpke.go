package suite

import (
	"crypto/hpke"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// GenerateHPKEKey returns a fresh HPKE key pair in serialised form. It draws
// randomness from crypto/rand (tests fix it with testing/cryptotest).
func (s *Suite) GenerateHPKEKey() (priv, pub []byte, err error) {
	k, err := s.kem.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate HPKE key: %w", err)
	}
	return serializeKeyPair(k)
}

// DeriveHPKEKeyPair derives an HPKE key pair from ikm (RFC 9180
// DeriveKeyPair), as TreeKEM does from node secrets.
func (s *Suite) DeriveHPKEKeyPair(ikm []byte) (priv, pub []byte, err error) {
	k, err := s.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to derive HPKE key: %w", err)
	}
	return serializeKeyPair(k)
}

func serializeKeyPair(k hpke.PrivateKey) (priv, pub []byte, err error) {
	priv, err = k.Bytes()
	if err != nil {
		return nil, nil, err
	}
	return priv, k.PublicKey().Bytes(), nil
}

// HPKEPublicKey returns the public key of a serialised HPKE private key.
func (s *Suite) HPKEPublicKey(priv []byte) ([]byte, error) {
	k, err := s.kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key: %v", ErrInvalidKey, err)
	}
	return k.PublicKey().Bytes(), nil
}

// ValidateHPKEPublicKey checks that pub is a valid HPKE public key.
func (s *Suite) ValidateHPKEPublicKey(pub []byte) error {
	if _, err := s.kem.NewPublicKey(pub); err != nil {
		return fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	return nil
}

func encryptContext(label string, context []byte) []byte {
	info, _ := codec.Marshal(func(b *cryptobyte.Builder) {
		codec.AddVarint(b, uint64(len(labelPrefix)+len(label)))
		b.AddBytes([]byte(labelPrefix))
		b.AddBytes([]byte(label))
		codec.AddOpaque(b, context)
	})
	return info
}

// EncryptWithLabel is SealBase(pub, EncryptContext{label, context}, "",
// plaintext) (RFC 9420, Section 5.1.3).
func (s *Suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	pk, err := s.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	enc, sender, err := hpke.NewSender(pk, s.kdf, s.hpkeAEAD, encryptContext(label, context))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to set up HPKE: %w", err)
	}
	ct, err := sender.Seal(nil, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to encrypt: %w", err)
	}
	return enc, ct, nil
}

// DecryptWithLabel is OpenBase(kemOutput, priv, EncryptContext{label,
// context}, "", ciphertext).
func (s *Suite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	k, err := s.kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key: %v", ErrInvalidKey, err)
	}
	r, err := hpke.NewRecipient(kemOutput, k, s.kdf, s.hpkeAEAD, encryptContext(label, context))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	pt, err := r.Open(nil, ciphertext)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// ExportSecretTo sets up an HPKE sender context towards pub with the given
// info and exports length bytes under exporterContext (external init, RFC
// 9420 Section 8.3). It returns the KEM output and the exported secret.
func (s *Suite) ExportSecretTo(pub, info []byte, exporterContext string, length int) (kemOutput, secret []byte, err error) {
	pk, err := s.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	enc, sender, err := hpke.NewSender(pk, s.kdf, s.hpkeAEAD, info)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to set up HPKE: %w", err)
	}
	secret, err = sender.Export(exporterContext, length)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to export: %w", err)
	}
	return enc, secret, nil
}

// ExportSecretFrom is the receiving side of [Suite.ExportSecretTo].
func (s *Suite) ExportSecretFrom(priv, kemOutput, info []byte, exporterContext string, length int) ([]byte, error) {
	k, err := s.kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key: %v", ErrInvalidKey, err)
	}
	r, err := hpke.NewRecipient(kemOutput, k, s.kdf, s.hpkeAEAD, info)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	return r.Export(exporterContext, length)
}
