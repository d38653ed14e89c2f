package identity

import (
	"crypto/ed25519"
	"fmt"
	"io"
)

// Domain is a signature domain-separation label. Every signature made with an
// account key (and every device signature made through [SignAsDevice]) covers
// its domain, so a signature made for one purpose can never be replayed as
// one for another.
type Domain string

// Domains reserved by Parley. Other packages define their own labels as
// Domain constants; labels must be unique across the project.
const (
	// DomainDeviceCertificate is used for [DeviceCertificate] signatures.
	DomainDeviceCertificate Domain = "device-certificate"
	// DomainUsernameClaim is used for [UsernameClaim] signatures.
	DomainUsernameClaim Domain = "username-claim"
	// DomainDeviceAuth is reserved for the server's login challenge, signed
	// by a device's signature key.
	DomainDeviceAuth Domain = "device-auth"
)

// signaturePrefix starts every signed content. It cannot be confused with an
// MLS SignContent (RFC 9420, Section 5.1.2): read as MLS, 'P' announces a
// two-byte length, and "rley" is not "MLS ".
const signaturePrefix = "Parley signature v1\x00"

// signedContent returns the bytes a signature in domain covers:
//
//	"Parley signature v1" 0x00 || uint8(len(domain)) || domain || msg
func signedContent(domain Domain, msg []byte) ([]byte, error) {
	if len(domain) == 0 || len(domain) > 255 {
		return nil, fmt.Errorf("%w: %q", ErrInvalidDomain, domain)
	}
	out := make([]byte, 0, len(signaturePrefix)+1+len(domain)+len(msg))
	out = append(out, signaturePrefix...)
	out = append(out, byte(len(domain)))
	out = append(out, domain...)
	out = append(out, msg...)
	return out, nil
}

// accountKeyVersion is the first byte of a serialised [AccountKey].
const accountKeyVersion = 1

// AccountKeySize is the size of a serialised [AccountKey]: a version byte and
// the 32-byte Ed25519 seed.
const AccountKeySize = 1 + ed25519.SeedSize

// AccountKey holds an account's Ed25519 private key. It is made on the first
// device and shared only between the account's own devices (device linking)
// and the recovery bundle.
type AccountKey struct {
	priv ed25519.PrivateKey
	id   AccountID
}

// GenerateAccountKey makes a new account key from rand (crypto/rand.Reader
// outside tests).
func GenerateAccountKey(rand io.Reader) (*AccountKey, error) {
	var seed [ed25519.SeedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for account key: %w", err)
	}
	return newAccountKey(seed[:]), nil
}

func newAccountKey(seed []byte) *AccountKey {
	priv := ed25519.NewKeyFromSeed(seed)
	return &AccountKey{priv: priv, id: AccountIDFromKey(priv.Public().(ed25519.PublicKey))}
}

// Public returns the account public key.
func (k *AccountKey) Public() ed25519.PublicKey {
	return k.priv.Public().(ed25519.PublicKey)
}

// ID returns the account ID derived from the public key.
func (k *AccountKey) ID() AccountID { return k.id }

// Sign signs msg in domain. It fails only for an invalid domain.
func (k *AccountKey) Sign(domain Domain, msg []byte) ([]byte, error) {
	content, err := signedContent(domain, msg)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(k.priv, content), nil
}

// Bytes returns the private key as [AccountKeySize] bytes: a version byte and
// the Ed25519 seed. The result is secret; [ParseAccountKey] reads it back.
func (k *AccountKey) Bytes() []byte {
	out := make([]byte, 0, AccountKeySize)
	out = append(out, accountKeyVersion)
	return append(out, k.priv.Seed()...)
}

// ParseAccountKey reads a private key written by [AccountKey.Bytes].
func ParseAccountKey(b []byte) (*AccountKey, error) {
	if len(b) != AccountKeySize {
		return nil, fmt.Errorf("%w: account key must be %d bytes, got %d", ErrMalformed, AccountKeySize, len(b))
	}
	if b[0] != accountKeyVersion {
		return nil, fmt.Errorf("%w: unknown account key version %d", ErrMalformed, b[0])
	}
	return newAccountKey(b[1:]), nil
}

// VerifyAccountSignature checks that sig is pub's signature of msg in domain.
// It returns an error wrapping [ErrBadSignature] if it is not.
func VerifyAccountSignature(pub ed25519.PublicKey, domain Domain, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: account key must be %d bytes, got %d", ErrInvalidKey, ed25519.PublicKeySize, len(pub))
	}
	content, err := signedContent(domain, msg)
	if err != nil {
		return err
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, content, sig) {
		return fmt.Errorf("%w: account signature in domain %q", ErrBadSignature, domain)
	}
	return nil
}
