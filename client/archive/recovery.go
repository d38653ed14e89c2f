package archive

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// A recovery bundle is the account key and the archive keyring sealed under
// a key derived from the account's recovery key, kept on the server:
//
//	version (1) | nonce (24) | XChaCha20-Poly1305(HKDF-SHA256(recovery key, info=label), plain)
//	plain = account key (2-byte length + bytes) | keyring (2-byte length + bytes)
//
// with the label as associated data.
const (
	recoveryVersion = 1
	recoveryLabel   = "parley/archive/recovery-bundle/v1"
	// MaxRecoveryBundleSize bounds a sealed recovery bundle.
	MaxRecoveryBundleSize = 8 << 10
)

// RecoveryBundle is what the recovery key brings back.
type RecoveryBundle struct {
	AccountKey *identity.AccountKey
	Keyring    *Keyring
}

func recoveryAEAD(rk *identity.RecoveryKey) (interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}, error) {
	k, err := hkdf.Key(sha256.New, rk[:], nil, recoveryLabel, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("failed to derive recovery bundle key: %w", err)
	}
	defer clear(k)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("failed to set up recovery bundle cipher: %w", err)
	}
	return aead, nil
}

// SealRecoveryBundle seals b under rk, with a nonce read from rand.
func SealRecoveryBundle(rk identity.RecoveryKey, b *RecoveryBundle, rand io.Reader) ([]byte, error) {
	if b == nil || b.AccountKey == nil || b.Keyring == nil {
		return nil, invalidf("recovery bundle needs an account key and a keyring")
	}
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
	defer clear(plain)
	aead, err := recoveryAEAD(&rk)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(plain)+chacha20poly1305.Overhead)
	out[0] = recoveryVersion
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for recovery bundle nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plain, []byte(recoveryLabel)), nil
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

// OpenRecoveryBundleKey opens a sealed bundle with the recovery key.
func OpenRecoveryBundleKey(rk identity.RecoveryKey, sealed []byte) (*RecoveryBundle, error) {
	if len(sealed) > MaxRecoveryBundleSize || len(sealed) < 1+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, malformedf("recovery bundle of %d bytes", len(sealed))
	}
	if sealed[0] != recoveryVersion {
		return nil, malformedf("unknown recovery bundle version %d", sealed[0])
	}
	aead, err := recoveryAEAD(&rk)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, sealed[1:1+chacha20poly1305.NonceSizeX], sealed[1+chacha20poly1305.NonceSizeX:], []byte(recoveryLabel))
	if err != nil {
		return nil, fmt.Errorf("%w: the recovery bundle does not open with this key", ErrWrongRecoveryKey)
	}
	defer clear(plain)
	return parseRecoveryPlain(plain)
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
