package filecrypt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// KeySize is the size of a file key.
const KeySize = 32

// Key is the secret key of one file. It is used for exactly one plaintext.
type Key [KeySize]byte

// NewKey reads a fresh key from rand (crypto/rand.Reader in production).
func NewKey(rand io.Reader) (Key, error) {
	var k Key
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return Key{}, fmt.Errorf("failed to generate file key: %w", err)
	}
	return k, nil
}

// Hash is a SHA-256 content hash.
type Hash [sha256.Size]byte

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses the lowercase hex form of a hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("failed to parse hash: %d characters, want %d", len(s), 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("failed to parse hash: %w", err)
	}
	return h, nil
}
