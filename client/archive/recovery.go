package archive

import (
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// A recovery bundle is the account key and the archive keyring sealed to the
// account's recovery key, kept on the server. The recovery key (shown to
// the user once as words) deterministically derives an HPKE key pair
// (RFC 9180; KEM ML-KEM-768 + X25519 hybrid, HKDF-SHA256,
// ChaCha20-Poly1305). Devices keep only the public half
// ([RecoveryPublicKey]), so any device can re-seal the bundle after an
// archive key rotation, but no device can open it:
//
//	version 2: version (1) | KEM id (2, big-endian) | HPKE single-shot output (enc || ciphertext)
//	           info = label || version || KEM id
//	plain = account key (2-byte length + bytes) | keyring (2-byte length + bytes)
//
// Version 1 bundles (sealed under a symmetric key derived from the recovery
// key, before devices stopped holding it) are still opened:
//
//	version 1: version (1) | nonce (24) | XChaCha20-Poly1305(HKDF-SHA256(recovery key, info=label v1), plain)
const (
	recoveryVersionV1 = 1
	recoveryVersion   = 2
	recoveryLabelV1   = "parley/archive/recovery-bundle/v1"
	recoveryLabel     = "parley/archive/recovery-bundle/v2"
	recoveryKEMLabel  = "parley/archive/recovery-kem/v1"
	// MaxRecoveryBundleSize bounds a sealed recovery bundle.
	MaxRecoveryBundleSize = 8 << 10
	// recoveryKEMSeed is the size of the HPKE DeriveKeyPair input.
	recoveryKEMSeed = 32
)

// recoveryKEM is the KEM recovery bundles are sealed with: the ML-KEM-768 +
// X25519 hybrid, so a bundle recorded today stays closed to a future
// quantum computer.
func recoveryKEM() hpke.KEM { return hpke.MLKEM768X25519() }

// RecoveryBundle is what the recovery key brings back.
type RecoveryBundle struct {
	AccountKey *identity.AccountKey
	Keyring    *Keyring
}

// RecoveryPublicKey is the public half of the HPKE key pair a recovery key
// derives. It seals recovery bundles ([SealRecoveryBundle]) and cannot open
// them; devices keep it instead of the recovery key.
type RecoveryPublicKey struct {
	pk hpke.PublicKey
}

// recoveryPrivateKey derives the HPKE private key of rk.
func recoveryPrivateKey(rk *identity.RecoveryKey) (hpke.PrivateKey, error) {
	ikm, err := hkdf.Key(sha256.New, rk[:], nil, recoveryKEMLabel, recoveryKEMSeed)
	if err != nil {
		return nil, fmt.Errorf("failed to derive recovery key pair: %w", err)
	}
	defer clear(ikm)
	priv, err := recoveryKEM().DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("failed to derive recovery key pair: %w", err)
	}
	return priv, nil
}

// DeriveRecoveryPublicKey returns the public key of recovery key rk.
func DeriveRecoveryPublicKey(rk identity.RecoveryKey) (*RecoveryPublicKey, error) {
	defer clear(rk[:])
	priv, err := recoveryPrivateKey(&rk)
	if err != nil {
		return nil, err
	}
	return &RecoveryPublicKey{pk: priv.PublicKey()}, nil
}

// ParseRecoveryPublicKey reads a public key written by
// [RecoveryPublicKey.Bytes].
func ParseRecoveryPublicKey(b []byte) (*RecoveryPublicKey, error) {
	pk, err := recoveryKEM().NewPublicKey(b)
	if err != nil {
		return nil, malformedf("recovery public key: %v", err)
	}
	return &RecoveryPublicKey{pk: pk}, nil
}

// Bytes returns the public key's encoding (1,216 bytes).
func (k *RecoveryPublicKey) Bytes() []byte { return k.pk.Bytes() }

// Equal reports whether k and o are the same key.
func (k *RecoveryPublicKey) Equal(o *RecoveryPublicKey) bool {
	return k != nil && o != nil && string(k.Bytes()) == string(o.Bytes())
}

func recoveryInfo(kem uint16) []byte {
	info := append([]byte(recoveryLabel+"\x00"), recoveryVersion)
	return binary.BigEndian.AppendUint16(info, kem)
}

// SealRecoveryBundle seals b to the recovery public key pub. HPKE draws its
// ephemeral key from crypto/rand.
func SealRecoveryBundle(pub *RecoveryPublicKey, b *RecoveryBundle) ([]byte, error) {
	if pub == nil || b == nil || b.AccountKey == nil || b.Keyring == nil {
		return nil, invalidf("recovery bundle needs a public key, an account key and a keyring")
	}
	plain, err := marshalRecoveryPlain(b)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	kem := pub.pk.KEM().ID()
	ct, err := hpke.Seal(pub.pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), recoveryInfo(kem), plain)
	if err != nil {
		return nil, fmt.Errorf("failed to seal recovery bundle: %w", err)
	}
	out := make([]byte, 3, 3+len(ct))
	out[0] = recoveryVersion
	binary.BigEndian.PutUint16(out[1:], kem)
	out = append(out, ct...)
	if len(out) > MaxRecoveryBundleSize {
		return nil, invalidf("recovery bundle of %d bytes, over %d", len(out), MaxRecoveryBundleSize)
	}
	return out, nil
}

func marshalRecoveryPlain(b *RecoveryBundle) ([]byte, error) {
	ring, err := b.Keyring.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("failed to encode keyring: %w", err)
	}
	defer clear(ring)
	ak := b.AccountKey.Bytes()
	defer clear(ak)
	var pb cryptobyte.Builder
	pb.AddUint16LengthPrefixed(func(p *cryptobyte.Builder) { p.AddBytes(ak) })
	pb.AddUint16LengthPrefixed(func(p *cryptobyte.Builder) { p.AddBytes(ring) })
	plain, err := pb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode recovery bundle: %w", err)
	}
	return plain, nil
}

// OpenRecoveryBundle opens a sealed bundle with the recovery words as the
// user typed them ([identity.ParseRecoveryWords]). Words that do not parse,
// or parse to another key, give an error wrapping [ErrWrongRecoveryKey]
// (and, for words that do not parse, the identity error saying which word
// is wrong).
func OpenRecoveryBundle(words string, sealed []byte) (*RecoveryBundle, error) {
	rk, err := identity.ParseRecoveryWords(words)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongRecoveryKey, err)
	}
	defer clear(rk[:])
	return OpenRecoveryBundleKey(rk, sealed)
}

// OpenRecoveryBundleKey opens a sealed bundle (version 1 or 2) with the
// recovery key.
func OpenRecoveryBundleKey(rk identity.RecoveryKey, sealed []byte) (*RecoveryBundle, error) {
	defer clear(rk[:])
	if len(sealed) > MaxRecoveryBundleSize || len(sealed) < 1 {
		return nil, malformedf("recovery bundle of %d bytes", len(sealed))
	}
	var plain []byte
	switch sealed[0] {
	case recoveryVersionV1:
		p, err := openRecoveryV1(&rk, sealed)
		if err != nil {
			return nil, err
		}
		plain = p
	case recoveryVersion:
		if len(sealed) < 3 {
			return nil, malformedf("recovery bundle of %d bytes", len(sealed))
		}
		kem := binary.BigEndian.Uint16(sealed[1:3])
		if kem != recoveryKEM().ID() {
			return nil, malformedf("recovery bundle sealed with KEM %#04x", kem)
		}
		priv, err := recoveryPrivateKey(&rk)
		if err != nil {
			return nil, err
		}
		p, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), recoveryInfo(kem), sealed[3:])
		if err != nil {
			return nil, fmt.Errorf("%w: the recovery bundle does not open with this key", ErrWrongRecoveryKey)
		}
		plain = p
	default:
		return nil, malformedf("unknown recovery bundle version %d", sealed[0])
	}
	defer clear(plain)
	return parseRecoveryPlain(plain)
}

// openRecoveryV1 opens a version 1 bundle.
func openRecoveryV1(rk *identity.RecoveryKey, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, malformedf("recovery bundle of %d bytes", len(sealed))
	}
	k, err := hkdf.Key(sha256.New, rk[:], nil, recoveryLabelV1, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("failed to derive recovery bundle key: %w", err)
	}
	defer clear(k)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("failed to set up recovery bundle cipher: %w", err)
	}
	plain, err := aead.Open(nil, sealed[1:1+chacha20poly1305.NonceSizeX], sealed[1+chacha20poly1305.NonceSizeX:], []byte(recoveryLabelV1))
	if err != nil {
		return nil, fmt.Errorf("%w: the recovery bundle does not open with this key", ErrWrongRecoveryKey)
	}
	return plain, nil
}

func parseRecoveryPlain(plain []byte) (*RecoveryBundle, error) {
	s := cryptobyte.String(plain)
	var ak, ring cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&ak) || !s.ReadUint16LengthPrefixed(&ring) || !s.Empty() {
		return nil, malformedf("recovery bundle contents")
	}
	key, err := identity.ParseAccountKey(ak)
	if err != nil {
		return nil, fmt.Errorf("%w: recovery bundle account key: %w", ErrMalformed, err)
	}
	r, err := ParseKeyring(ring)
	if err != nil {
		return nil, err
	}
	return &RecoveryBundle{AccountKey: key, Keyring: r}, nil
}
