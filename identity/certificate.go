package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// certificateVersion is the first byte of an encoded [DeviceCertificate].
const certificateVersion = 1

// MaxDeviceCertificateSize bounds an encoded [DeviceCertificate]; a parser
// refuses anything longer before looking at it.
const MaxDeviceCertificateSize = 1 + ed25519.PublicKeySize + DeviceIDSize + 2 + 1 + 255 + 8 + ed25519.SignatureSize

// DeviceCertificate binds a device and its MLS signature key to an account:
// it is signed by the account key and is carried as the identity of the
// device's MLS BasicCredential. Members verify it, so one safety number per
// account covers all of the account's devices.
//
// The encoding ([DeviceCertificate.Marshal]) is canonical, in TLS
// presentation language:
//
//	struct {
//	    uint8  version = 1;
//	    opaque account_key[32];     // Ed25519
//	    opaque device_id[16];
//	    uint16 cipher_suite;        // MLS cipher suite of the device key
//	    opaque signature_key<1..255>; // MLS SignaturePublicKey encoding
//	    uint64 created;             // Unix seconds
//	    opaque signature[64];       // account key, domain "device-certificate",
//	                                // over all preceding bytes
//	} DeviceCertificate;
//
// A DeviceCertificate is immutable; its accessors return copies.
type DeviceCertificate struct {
	raw        []byte // the full encoding
	accountKey ed25519.PublicKey
	deviceID   DeviceID
	suite      uint16
	sigKey     []byte
	created    time.Time
	signature  []byte
}

// maxUnixSeconds is 9999-12-31T23:59:59Z.
const maxUnixSeconds = 253402300799

func checkTime(t time.Time) (uint64, error) {
	s := t.Unix()
	if s < 0 || s > maxUnixSeconds {
		return 0, fmt.Errorf("%w: %v", ErrInvalidTime, t)
	}
	return uint64(s), nil
}

func readTime(s *cryptobyte.String, t *time.Time) bool {
	var v uint64
	if !s.ReadUint64(&v) || v > maxUnixSeconds {
		return false
	}
	*t = time.Unix(int64(v), 0).UTC()
	return true
}

// IssueDeviceCertificate makes a certificate for device, whose MLS signature
// public key is sigPub in cipher suite suite, signed by account. created is
// kept to the second, in UTC.
func IssueDeviceCertificate(account *AccountKey, device DeviceID, sigPub []byte, suite uint16, created time.Time) (*DeviceCertificate, error) {
	if device.IsZero() {
		return nil, fmt.Errorf("failed to issue device certificate: %w: zero device id", ErrInvalidID)
	}
	if err := checkDeviceKey(suite, sigPub); err != nil {
		return nil, fmt.Errorf("failed to issue device certificate: %w", err)
	}
	pub := account.Public()
	if bytes.Equal(sigPub, pub) {
		return nil, fmt.Errorf("failed to issue device certificate: %w: device key equals account key", ErrInvalidKey)
	}
	secs, err := checkTime(created)
	if err != nil {
		return nil, fmt.Errorf("failed to issue device certificate: %w", err)
	}
	var b cryptobyte.Builder
	b.AddUint8(certificateVersion)
	b.AddBytes(pub)
	b.AddBytes(device[:])
	b.AddUint16(suite)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sigPub) })
	b.AddUint64(secs)
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode device certificate: %w", err)
	}
	sig, err := account.Sign(DomainDeviceCertificate, tbs)
	if err != nil {
		return nil, fmt.Errorf("failed to sign device certificate: %w", err)
	}
	return ParseDeviceCertificate(append(tbs, sig...))
}

// ParseDeviceCertificate decodes a certificate. Decoding is strict: unknown
// versions, unsupported cipher suites, malformed device keys, out-of-range
// times and trailing bytes are refused with errors wrapping [ErrMalformed],
// [ErrUnsupportedSuite] or [ErrInvalidKey]. It does not check the signature:
// call [DeviceCertificate.Verify].
func ParseDeviceCertificate(data []byte) (*DeviceCertificate, error) {
	if len(data) > MaxDeviceCertificateSize {
		return nil, fmt.Errorf("%w: device certificate of %d bytes exceeds %d", ErrMalformed, len(data), MaxDeviceCertificateSize)
	}
	s := cryptobyte.String(data)
	var (
		c          DeviceCertificate
		version    uint8
		accountKey []byte
		deviceID   []byte
		sigKey     cryptobyte.String
		signature  []byte
	)
	if !s.ReadUint8(&version) {
		return nil, fmt.Errorf("%w: empty device certificate", ErrMalformed)
	}
	if version != certificateVersion {
		return nil, fmt.Errorf("%w: unknown device certificate version %d", ErrMalformed, version)
	}
	if !s.ReadBytes(&accountKey, ed25519.PublicKeySize) ||
		!s.ReadBytes(&deviceID, DeviceIDSize) ||
		!s.ReadUint16(&c.suite) ||
		!s.ReadUint8LengthPrefixed(&sigKey) ||
		!readTime(&s, &c.created) ||
		!s.ReadBytes(&signature, ed25519.SignatureSize) {
		return nil, fmt.Errorf("%w: truncated device certificate", ErrMalformed)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d trailing bytes after device certificate", ErrMalformed, len(s))
	}
	copy(c.deviceID[:], deviceID)
	if c.deviceID.IsZero() {
		return nil, fmt.Errorf("%w: zero device id in certificate", ErrMalformed)
	}
	if err := checkDeviceKey(c.suite, sigKey); err != nil {
		return nil, fmt.Errorf("failed to parse device certificate: %w", err)
	}
	c.raw = bytes.Clone(data)
	// The slices below alias raw, which never escapes unless copied.
	n := len(c.raw)
	c.signature = c.raw[n-ed25519.SignatureSize:]
	c.accountKey = ed25519.PublicKey(c.raw[1 : 1+ed25519.PublicKeySize])
	off := 1 + ed25519.PublicKeySize + DeviceIDSize + 2 + 1
	c.sigKey = c.raw[off : off+len(sigKey)]
	return &c, nil
}

// Marshal returns the certificate's canonical encoding.
func (c *DeviceCertificate) Marshal() []byte { return bytes.Clone(c.raw) }

// Verify checks the account key's signature over the certificate. It
// returns an error wrapping [ErrBadSignature] if it does not verify, and
// refuses a device key equal to the account key.
func (c *DeviceCertificate) Verify() error {
	if bytes.Equal(c.sigKey, c.accountKey) {
		return fmt.Errorf("%w: device key equals account key", ErrInvalidKey)
	}
	tbs := c.raw[:len(c.raw)-ed25519.SignatureSize]
	if err := VerifyAccountSignature(c.accountKey, DomainDeviceCertificate, tbs, c.signature); err != nil {
		return fmt.Errorf("failed to verify device certificate: %w", err)
	}
	return nil
}

// AccountKey returns the public key of the account that signed the
// certificate.
func (c *DeviceCertificate) AccountKey() ed25519.PublicKey {
	return bytes.Clone(c.accountKey)
}

// AccountID returns the ID of the account that signed the certificate.
func (c *DeviceCertificate) AccountID() AccountID { return AccountIDFromKey(c.accountKey) }

// DeviceID returns the certified device's id.
func (c *DeviceCertificate) DeviceID() DeviceID { return c.deviceID }

// Suite returns the MLS cipher suite of the device signature key.
func (c *DeviceCertificate) Suite() uint16 { return c.suite }

// SignatureKey returns the device's MLS signature public key, in the MLS
// encoding of its suite. It must equal the signature_key of the device's
// MLS LeafNode.
func (c *DeviceCertificate) SignatureKey() []byte { return bytes.Clone(c.sigKey) }

// Created returns the certificate's creation time (UTC, whole seconds).
func (c *DeviceCertificate) Created() time.Time { return c.created }

// VerifyDeviceSignature checks that sig is the certified device key's
// signature of msg in domain, as made by [SignAsDevice]. It does not verify
// the certificate itself; call [DeviceCertificate.Verify] for that.
func (c *DeviceCertificate) VerifyDeviceSignature(domain Domain, msg, sig []byte) error {
	return verifyDeviceSignature(c.suite, c.sigKey, domain, msg, sig)
}
