package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
)

// b32 is the lowercase, unpadded base32 alphabet used for every textual id.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// AccountIDLen is the length of an account ID's text form (20 bytes in base32).
const AccountIDLen = 32

// ErrInvalidID is returned when text is not a well-formed account or device id.
var ErrInvalidID = errors.New("identity: invalid id")

// AccountID identifies an account: lowercase base32 (no padding) of the first
// 20 bytes of SHA-256 of the account's Ed25519 public key. It is
// self-certifying: a server cannot substitute a key without changing the ID.
type AccountID string

// AccountIDFromKey derives the account ID of an account public key.
func AccountIDFromKey(pub ed25519.PublicKey) AccountID {
	sum := sha256.Sum256(pub)
	return AccountID(b32.EncodeToString(sum[:20]))
}

// ParseAccountID checks that s is a well-formed account ID. Upper-case input
// is folded to lower case.
func ParseAccountID(s string) (AccountID, error) {
	s = asciiLower(s)
	if len(s) != AccountIDLen {
		return "", fmt.Errorf("%w: account id must be %d characters, got %d", ErrInvalidID, AccountIDLen, len(s))
	}
	if _, err := b32.DecodeString(s); err != nil {
		return "", fmt.Errorf("%w: account id is not base32", ErrInvalidID)
	}
	return AccountID(s), nil
}

// Matches reports whether pub is the key this ID was derived from.
func (a AccountID) Matches(pub ed25519.PublicKey) bool {
	return len(pub) == ed25519.PublicKeySize && AccountIDFromKey(pub) == a
}

// asciiLower folds ASCII upper-case letters only, so that no Unicode
// character (such as the Kelvin sign) folds into an id character.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// String returns the text form of the ID.
func (a AccountID) String() string { return string(a) }

// DeviceIDSize is the size of a device ID in bytes.
const DeviceIDSize = 16

// DeviceID identifies one device of an account. It is chosen at random by the
// device and is unique within its account.
type DeviceID [DeviceIDSize]byte

// String returns the lowercase base32 text form of the ID (26 characters).
func (d DeviceID) String() string { return b32.EncodeToString(d[:]) }

// IsZero reports whether d is the zero ID, which no device uses.
func (d DeviceID) IsZero() bool { return d == DeviceID{} }

// ParseDeviceID parses the text form of a device ID.
func ParseDeviceID(s string) (DeviceID, error) {
	var d DeviceID
	s = asciiLower(s)
	raw, err := b32.DecodeString(s)
	if err != nil || len(raw) != DeviceIDSize {
		return d, fmt.Errorf("%w: device id must be %d base32 characters", ErrInvalidID, b32.EncodedLen(DeviceIDSize))
	}
	copy(d[:], raw)
	// 26 characters carry 130 bits; refuse set padding bits so that every id
	// has exactly one text form.
	if d.String() != s {
		return DeviceID{}, fmt.Errorf("%w: device id is not in canonical form", ErrInvalidID)
	}
	return d, nil
}

// NewDeviceID picks a random, non-zero device ID from rand.
func NewDeviceID(rand io.Reader) (DeviceID, error) {
	var d DeviceID
	for d.IsZero() {
		if _, err := io.ReadFull(rand, d[:]); err != nil {
			return DeviceID{}, fmt.Errorf("failed to read randomness for device id: %w", err)
		}
	}
	return d, nil
}

// DeviceIDFromBytes converts a raw 16-byte device id.
func DeviceIDFromBytes(b []byte) (DeviceID, error) {
	var d DeviceID
	if len(b) != DeviceIDSize {
		return d, fmt.Errorf("%w: device id must be %d bytes, got %d", ErrInvalidID, DeviceIDSize, len(b))
	}
	copy(d[:], b)
	return d, nil
}
