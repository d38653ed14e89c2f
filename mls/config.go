package mls

import (
	"crypto/rand"
	"io"
	"time"

	"github.com/parley-im/parley/mls/internal/suite"
)

// CipherSuite identifies an MLS cipher suite (RFC 9420, Section 5.1).
type CipherSuite uint16

// The supported cipher suites.
const (
	// X25519AES128GCM is MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
	X25519AES128GCM CipherSuite = CipherSuite(suite.X25519AES128GCMSHA256Ed25519)
	// P256AES128GCM is MLS_128_DHKEMP256_AES128GCM_SHA256_P256.
	P256AES128GCM CipherSuite = CipherSuite(suite.P256AES128GCMSHA256P256)
	// X25519ChaCha20 is MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
	X25519ChaCha20 CipherSuite = CipherSuite(suite.X25519ChaCha20Poly1305SHA256Ed25519)
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultMaxSkip          = 256
	DefaultMaxForward       = 10000
	DefaultEpochGrace       = 2
	DefaultKeyPackageExpiry = 90 * 24 * time.Hour
)

// Config holds the parameters of a client. The zero value of every field but
// Suite selects a safe default. A Config is read, never modified, by this
// package; the same Config may serve many groups.
type Config struct {
	// Suite is the cipher suite of new key packages and groups.
	Suite CipherSuite
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
	// Now returns the current time, used for key package lifetimes; nil
	// means time.Now.
	Now func() time.Time
	// MaxSkip is how many skipped generations per sender are kept so that
	// application messages may arrive out of order.
	MaxSkip int
	// MaxForward bounds how far ahead of the last seen generation a
	// message may be.
	MaxForward int
	// EpochGrace is how many previous epochs are kept to decrypt late
	// application messages. Negative means none.
	EpochGrace int
	// PaddingBlock pads encrypted content to a multiple of this many bytes
	// (0 means no padding).
	PaddingBlock int
	// EncryptHandshake sends proposals and commits as PrivateMessage
	// instead of PublicMessage.
	EncryptHandshake bool
	// KeyPackageExpiry is the lifetime given to new key packages and leaf
	// nodes.
	KeyPackageExpiry time.Duration
	// CredentialValidator, if set, is called for every credential the
	// group sees (new members, updates, key packages, the group when
	// joining); a non-nil error rejects the message carrying it.
	CredentialValidator func(Credential) error
	// PSK looks up external pre-shared keys by id; nil means none are
	// known.
	PSK func(id []byte) (secret []byte, ok bool)
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) maxSkip() int {
	if c.MaxSkip > 0 {
		return c.MaxSkip
	}
	return DefaultMaxSkip
}

func (c *Config) maxForward() int {
	if c.MaxForward > 0 {
		return c.MaxForward
	}
	return DefaultMaxForward
}

func (c *Config) epochGrace() int {
	switch {
	case c.EpochGrace < 0:
		return 0
	case c.EpochGrace == 0:
		return DefaultEpochGrace
	}
	return c.EpochGrace
}

func (c *Config) keyPackageExpiry() time.Duration {
	if c.KeyPackageExpiry > 0 {
		return c.KeyPackageExpiry
	}
	return DefaultKeyPackageExpiry
}

func (c *Config) validateCredential(cred Credential) error {
	if c.CredentialValidator == nil {
		return nil
	}
	if err := c.CredentialValidator(cred); err != nil {
		return wrapf(ErrCredentialRejected, "%v", err)
	}
	return nil
}

func (c *Config) suite() (*suite.Suite, error) {
	s, err := suite.Get(suite.ID(c.Suite))
	if err != nil {
		return nil, wrapf(ErrUnsupported, "cipher suite 0x%04x", uint16(c.Suite))
	}
	return s, nil
}

func suiteID(cs CipherSuite) suite.ID { return suite.ID(cs) }
