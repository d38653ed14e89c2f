// Package suite implements the MLS cipher suites (RFC 9420, Section 5.1) and
// the labelled cryptographic helpers built on them: ExpandWithLabel,
// DeriveSecret, RefHash, SignWithLabel and EncryptWithLabel.
//
// Supported suites:
//
//	0x0001 MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
//	0x0002 MLS_128_DHKEMP256_AES128GCM_SHA256_P256
//	0x0003 MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
//
// Keys cross this package's API as bytes in their MLS wire form: HPKE keys as
// SerializePublicKey / SerializePrivateKey output (RFC 9180), signature public
// keys as raw Ed25519 keys or uncompressed P-256 points, signature private keys
// as the 32-byte Ed25519 seed or P-256 scalar.
package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// ID is an MLS cipher suite identifier.
type ID uint16

// The supported cipher suites.
const (
	X25519AES128GCMSHA256Ed25519        ID = 0x0001
	P256AES128GCMSHA256P256             ID = 0x0002
	X25519ChaCha20Poly1305SHA256Ed25519 ID = 0x0003
)

// labelPrefix is prepended to every label (RFC 9420, Section 5.1.3).
const labelPrefix = "MLS 1.0 "

// Errors returned by this package.
var (
	ErrUnsupported      = errors.New("mls: unsupported cipher suite")
	ErrInvalidKey       = errors.New("mls: invalid key")
	ErrDecrypt          = errors.New("mls: decryption failed")
	ErrInvalidSignature = errors.New("mls: invalid signature")
)

type sigScheme uint8

const (
	sigEd25519 sigScheme = iota
	sigP256
)

// Suite is one cipher suite. Suites are immutable and safe for concurrent
// use; get them with [Get].
type Suite struct {
	id       ID
	kem      hpke.KEM
	hpkeAEAD hpke.AEAD
	kdf      hpke.KDF
	sig      sigScheme
	newAEAD  func(key []byte) (cipher.AEAD, error)
	encLen   int // Nenc: length of the KEM output
}

var suites = map[ID]*Suite{
	X25519AES128GCMSHA256Ed25519: {
		id: X25519AES128GCMSHA256Ed25519, kem: hpke.DHKEM(ecdh.X25519()), hpkeAEAD: hpke.AES128GCM(),
		kdf: hpke.HKDFSHA256(), sig: sigEd25519, newAEAD: newGCM, encLen: 32,
	},
	P256AES128GCMSHA256P256: {
		id: P256AES128GCMSHA256P256, kem: hpke.DHKEM(ecdh.P256()), hpkeAEAD: hpke.AES128GCM(),
		kdf: hpke.HKDFSHA256(), sig: sigP256, newAEAD: newGCM, encLen: 65,
	},
	X25519ChaCha20Poly1305SHA256Ed25519: {
		id: X25519ChaCha20Poly1305SHA256Ed25519, kem: hpke.DHKEM(ecdh.X25519()), hpkeAEAD: hpke.ChaCha20Poly1305(),
		kdf: hpke.HKDFSHA256(), sig: sigEd25519, newAEAD: chacha20poly1305.New, encLen: 32,
	},
}

// Get returns the suite with the given ID, or an error wrapping
// [ErrUnsupported].
func Get(id ID) (*Suite, error) {
	s, ok := suites[id]
	if !ok {
		return nil, fmt.Errorf("%w: 0x%04x", ErrUnsupported, uint16(id))
	}
	return s, nil
}

// Supported reports whether id is a suite this package implements.
func Supported(id ID) bool { _, ok := suites[id]; return ok }

// IDs lists the supported suites in ascending order.
func IDs() []ID {
	return []ID{X25519AES128GCMSHA256Ed25519, P256AES128GCMSHA256P256, X25519ChaCha20Poly1305SHA256Ed25519}
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ID returns the suite's identifier.
func (s *Suite) ID() ID { return s.id }

// HashSize returns Nh, the output size of the suite's hash (and KDF.Nh).
func (s *Suite) HashSize() int { return sha256.Size }

// KeySize returns Nk, the AEAD key size.
func (s *Suite) KeySize() int {
	if s.id == X25519ChaCha20Poly1305SHA256Ed25519 {
		return chacha20poly1305.KeySize
	}
	return 16
}

// NonceSize returns Nn, the AEAD nonce size.
func (s *Suite) NonceSize() int { return 12 }

// KEMOutputSize returns Nenc, the size of an HPKE encapsulated key.
func (s *Suite) KEMOutputSize() int { return s.encLen }

// newHash returns the suite's hash function.
func (s *Suite) newHash() hash.Hash { return sha256.New() }

// Hash returns the suite hash of data.
func (s *Suite) Hash(data []byte) []byte {
	sum := sha256.Sum256(data)
	return sum[:]
}

// Extract is HKDF-Extract(salt, ikm).
func (s *Suite) Extract(salt, ikm []byte) []byte {
	if len(salt) == 0 {
		salt = make([]byte, sha256.Size)
	}
	m := hmac.New(sha256.New, salt)
	m.Write(ikm)
	return m.Sum(nil)
}

// Expand is HKDF-Expand(secret, info, length).
func (s *Suite) Expand(secret, info []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*sha256.Size {
		return nil, fmt.Errorf("mls: invalid HKDF output length %d", length)
	}
	out := make([]byte, 0, (length+sha256.Size-1)/sha256.Size*sha256.Size)
	m := hmac.New(sha256.New, secret)
	var prev []byte
	for counter := byte(1); len(out) < length; counter++ {
		m.Reset()
		m.Write(prev)
		m.Write(info)
		m.Write([]byte{counter})
		out = m.Sum(out)
		prev = out[len(out)-sha256.Size:]
	}
	return out[:length], nil
}

// ExpandWithLabel derives length bytes from secret (RFC 9420, Section 5.1.3).
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: invalid ExpandWithLabel length %d", length)
	}
	info, err := codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(length))
		codec.AddVarint(b, uint64(len(labelPrefix)+len(label)))
		b.AddBytes([]byte(labelPrefix))
		b.AddBytes([]byte(label))
		codec.AddOpaque(b, context)
	})
	if err != nil {
		return nil, err
	}
	return s.Expand(secret, info, length)
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func (s *Suite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return s.ExpandWithLabel(secret, label, nil, s.HashSize())
}

// RefHash computes a reference: Hash(RefHashInput{label, value}). The label
// is used as given (for example "MLS 1.0 KeyPackage Reference").
func (s *Suite) RefHash(label string, value []byte) []byte {
	in, _ := codec.Marshal(func(b *cryptobyte.Builder) {
		codec.AddOpaque(b, []byte(label))
		codec.AddOpaque(b, value)
	})
	return s.Hash(in)
}

// MAC computes HMAC(key, data) with the suite's hash.
func (s *Suite) MAC(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// VerifyMAC reports, in constant time, whether mac is HMAC(key, data).
func (s *Suite) VerifyMAC(key, data, mac []byte) bool {
	return subtle.ConstantTimeCompare(s.MAC(key, data), mac) == 1
}

// AEAD returns the suite's AEAD keyed with key.
func (s *Suite) AEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != s.KeySize() {
		return nil, fmt.Errorf("%w: AEAD key must be %d bytes", ErrInvalidKey, s.KeySize())
	}
	return s.newAEAD(key)
}

// Seal encrypts and authenticates plaintext, appending the result to dst.
func (s *Suite) Seal(dst, key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.AEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: nonce must be %d bytes", ErrInvalidKey, a.NonceSize())
	}
	return a.Seal(dst, nonce, plaintext, aad), nil
}

// Open decrypts and authenticates ciphertext, appending the result to dst.
func (s *Suite) Open(dst, key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.AEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: nonce must be %d bytes", ErrInvalidKey, a.NonceSize())
	}
	out, err := a.Open(dst, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}
