package store

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// ProfileKeySize is the size of a profile key: 256 bits.
const ProfileKeySize = 32

// ProfileKey is the 256-bit key that encrypts a profile's sensitive values.
type ProfileKey [ProfileKeySize]byte

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// sealOverhead is what sealing adds to a plaintext: version, nonce and tag.
const sealOverhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// adLabel starts the associated data of every sealed value.
const adLabel = "parley/client-store/v1"

// errOpen is the cause recorded when a sealed value does not authenticate.
var errOpen = errors.New("message authentication failed")

// sealer encrypts and decrypts stored values with XChaCha20-Poly1305 under a
// key derived from the profile key, and computes keyed lookup handles. It is
// safe for concurrent use.
type sealer struct {
	aead     aeadCipher
	indexKey [32]byte
	rand     io.Reader
}

// aeadCipher is the part of cipher.AEAD the sealer uses.
type aeadCipher interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// newSealer derives the sealing and index keys from the profile key with
// HKDF-SHA256, so the profile key itself never touches a stored value.
func newSealer(pk *ProfileKey, rand io.Reader) (*sealer, error) {
	encKey, err := hkdf.Key(sha256.New, pk[:], nil, adLabel+"/seal", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("failed to derive sealing key: %w", err)
	}
	idxKey, err := hkdf.Key(sha256.New, pk[:], nil, adLabel+"/index", 32)
	if err != nil {
		return nil, fmt.Errorf("failed to derive index key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(encKey)
	clear(encKey)
	if err != nil {
		return nil, fmt.Errorf("failed to create cipher: %w", err)
	}
	s := &sealer{aead: aead, rand: rand}
	copy(s.indexKey[:], idxKey)
	clear(idxKey)
	return s, nil
}

// rowRef names the place a sealed value lives: table, column and the row's
// key. It is the associated data, so a value moved to another row or column
// no longer opens.
type rowRef struct {
	table, column string
	key           []byte
}

// ad encodes the reference unambiguously: every field carries a 4-byte
// length prefix.
func (r rowRef) ad() []byte {
	out := make([]byte, 0, len(adLabel)+12+len(r.table)+len(r.column)+len(r.key))
	out = append(out, adLabel...)
	for _, f := range [][]byte{[]byte(r.table), []byte(r.column), r.key} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// seal encrypts plaintext for the row r: version || nonce || ciphertext.
func (s *sealer) seal(r rowRef, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, sealOverhead+len(plaintext))
	out[0] = sealVersion
	if _, err := io.ReadFull(s.rand, out[1:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for nonce: %w", err)
	}
	nonce := out[1:]
	return s.aead.Seal(out, nonce, plaintext, r.ad()), nil
}

// open decrypts a value sealed for the row r. Any failure is a *CorruptError.
func (s *sealer) open(r rowRef, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, &CorruptError{Table: r.table, Column: r.column, Err: errors.New("malformed sealed value")}
	}
	nonce := sealed[1 : 1+chacha20poly1305.NonceSizeX]
	pt, err := s.aead.Open(nil, nonce, sealed[1+chacha20poly1305.NonceSizeX:], r.ad())
	if err != nil {
		return nil, &CorruptError{Table: r.table, Column: r.column, Err: errOpen}
	}
	return pt, nil
}

// handle is a keyed hash of a lookup value, used as a row key where the
// value itself (such as a contact's account id) should not be readable on
// disk.
func (s *sealer) handle(label, v string) []byte {
	m := hmac.New(sha256.New, s.indexKey[:])
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return m.Sum(nil)[:20]
}

// zero forgets the index key; the AEAD key cannot be erased from the cipher
// object, which the garbage collector drops once the store is closed.
func (s *sealer) zero() { clear(s.indexKey[:]) }

// equalBytes compares secrets in constant time.
func equalBytes(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
