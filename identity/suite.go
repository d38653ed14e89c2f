package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"io"
)

// MLS cipher suites whose signature schemes this package implements
// (RFC 9420, Section 17.1).
const (
	// SuiteX25519AES128GCMEd25519 is MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
	SuiteX25519AES128GCMEd25519 uint16 = 0x0001
	// SuiteP256AES128GCMP256 is MLS_128_DHKEMP256_AES128GCM_SHA256_P256.
	SuiteP256AES128GCMP256 uint16 = 0x0002
	// SuiteX25519ChaCha20Ed25519 is MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
	SuiteX25519ChaCha20Ed25519 uint16 = 0x0003
)

// signatureScheme is the signature algorithm of an MLS cipher suite.
type signatureScheme int

const (
	schemeEd25519 signatureScheme = iota + 1
	schemeP256
)

// p256PublicKeySize is the size of an uncompressed SEC1 P-256 point.
const p256PublicKeySize = 65

func suiteScheme(suite uint16) (signatureScheme, error) {
	switch suite {
	case SuiteX25519AES128GCMEd25519, SuiteX25519ChaCha20Ed25519:
		return schemeEd25519, nil
	case SuiteP256AES128GCMP256:
		return schemeP256, nil
	default:
		return 0, fmt.Errorf("%w: 0x%04x", ErrUnsupportedSuite, suite)
	}
}

// checkDeviceKey checks that pub is a well-formed signature public key for
// suite, in the encoding MLS uses: 32 raw bytes for Ed25519, an uncompressed
// SEC1 point for P-256.
func checkDeviceKey(suite uint16, pub []byte) error {
	scheme, err := suiteScheme(suite)
	if err != nil {
		return err
	}
	switch scheme {
	case schemeEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 device key must be %d bytes, got %d", ErrInvalidKey, ed25519.PublicKeySize, len(pub))
		}
	case schemeP256:
		if len(pub) != p256PublicKeySize {
			return fmt.Errorf("%w: P-256 device key must be %d bytes, got %d", ErrInvalidKey, p256PublicKeySize, len(pub))
		}
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub); err != nil {
			return fmt.Errorf("%w: P-256 device key: %v", ErrInvalidKey, err)
		}
	}
	return nil
}

// verifyDeviceSignature checks sig over domain and msg with a device key
// already accepted by checkDeviceKey.
func verifyDeviceSignature(suite uint16, pub []byte, domain Domain, msg, sig []byte) error {
	scheme, err := suiteScheme(suite)
	if err != nil {
		return err
	}
	content, err := signedContent(domain, msg)
	if err != nil {
		return err
	}
	ok := false
	switch scheme {
	case schemeEd25519:
		ok = len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize &&
			ed25519.Verify(ed25519.PublicKey(pub), content, sig)
	case schemeP256:
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
		if err != nil {
			return fmt.Errorf("%w: P-256 device key: %v", ErrInvalidKey, err)
		}
		digest := sha256.Sum256(content)
		ok = ecdsa.VerifyASN1(key, digest[:], sig)
	}
	if !ok {
		return fmt.Errorf("%w: device signature in domain %q", ErrBadSignature, domain)
	}
	return nil
}

// SignAsDevice signs msg in domain with a device's MLS signature private key
// (an ed25519.PrivateKey or a P-256 *ecdsa.PrivateKey). The signature
// verifies with [DeviceCertificate.VerifyDeviceSignature]. rand is used only
// by ECDSA.
func SignAsDevice(key crypto.Signer, domain Domain, msg []byte, rand io.Reader) ([]byte, error) {
	content, err := signedContent(domain, msg)
	if err != nil {
		return nil, err
	}
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		sig, err := key.Sign(rand, content, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("failed to sign as device: %w", err)
		}
		return sig, nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: only P-256 ECDSA device keys are supported", ErrInvalidKey)
		}
		digest := sha256.Sum256(content)
		sig, err := key.Sign(rand, digest[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("failed to sign as device: %w", err)
		}
		return sig, nil
	default:
		return nil, fmt.Errorf("%w: device key type %T", ErrInvalidKey, pub)
	}
}
