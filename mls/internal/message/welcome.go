package message

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
)

// ErrNoGroupSecrets reports a Welcome that holds no secrets for a given
// KeyPackage.
var ErrNoGroupSecrets = errors.New("mls: welcome holds no secrets for this key package")

// PathSecret carries the path secret of the committer's and joiner's common
// ancestor.
type PathSecret struct {
	PathSecret []byte
}

// GroupSecrets are the secrets a joiner receives in a Welcome (RFC 9420,
// Section 12.4.3.1).
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret
	PSKs         []PreSharedKeyID
}

// Encode appends the secrets to b.
func (g *GroupSecrets) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, g.JoinerSecret)
	codec.AddOptional(b, g.PathSecret != nil, func(b *cryptobyte.Builder) { codec.AddOpaque(b, g.PathSecret.PathSecret) })
	addList(b, g.PSKs, func(b *cryptobyte.Builder, p PreSharedKeyID) { p.Encode(b) })
}

// Decode reads the secrets from s.
func (g *GroupSecrets) Decode(s *cryptobyte.String) bool {
	*g = GroupSecrets{}
	var present bool
	if !codec.ReadOpaque(s, &g.JoinerSecret) || !codec.ReadOptional(s, &present) {
		return false
	}
	if present {
		g.PathSecret = new(PathSecret)
		if !codec.ReadOpaque(s, &g.PathSecret.PathSecret) {
			return false
		}
	}
	return readList(s, &g.PSKs, func(s *cryptobyte.String, p *PreSharedKeyID) bool { return p.Decode(s) })
}

// Bytes returns the encoded secrets.
func (g *GroupSecrets) Bytes() ([]byte, error) { return encode(g) }

// Erase zeroes the secrets in place.
func (g *GroupSecrets) Erase() {
	clear(g.JoinerSecret)
	if g.PathSecret != nil {
		clear(g.PathSecret.PathSecret)
	}
}

// DecodeGroupSecrets decodes a complete GroupSecrets.
func DecodeGroupSecrets(data []byte) (*GroupSecrets, error) {
	g := new(GroupSecrets)
	if err := codec.Unmarshal(data, "group secrets", g.Decode); err != nil {
		return nil, err
	}
	return g, nil
}

// EncryptedGroupSecrets is a GroupSecrets encrypted to one new member's
// init key.
type EncryptedGroupSecrets struct {
	NewMember             KeyPackageRef
	EncryptedGroupSecrets HPKECiphertext
}

// Encode appends the value to b.
func (e *EncryptedGroupSecrets) Encode(b *cryptobyte.Builder) {
	codec.AddOpaque(b, e.NewMember)
	e.EncryptedGroupSecrets.Encode(b)
}

// Decode reads the value from s.
func (e *EncryptedGroupSecrets) Decode(s *cryptobyte.String) bool {
	return readBytes(s, &e.NewMember) && e.EncryptedGroupSecrets.Decode(s)
}

// Welcome brings new members into a group (RFC 9420, Section 12.4.3.1).
type Welcome struct {
	CipherSuite        suite.ID
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// Encode appends the welcome to b.
func (w *Welcome) Encode(b *cryptobyte.Builder) {
	b.AddUint16(uint16(w.CipherSuite))
	addList(b, w.Secrets, func(b *cryptobyte.Builder, e EncryptedGroupSecrets) { e.Encode(b) })
	codec.AddOpaque(b, w.EncryptedGroupInfo)
}

// Decode reads a welcome from s.
func (w *Welcome) Decode(s *cryptobyte.String) bool {
	*w = Welcome{}
	var cs uint16
	if !s.ReadUint16(&cs) ||
		!readList(s, &w.Secrets, func(s *cryptobyte.String, e *EncryptedGroupSecrets) bool { return e.Decode(s) }) ||
		!codec.ReadOpaque(s, &w.EncryptedGroupInfo) {
		return false
	}
	w.CipherSuite = suite.ID(cs)
	return true
}

// Bytes returns the encoded welcome.
func (w *Welcome) Bytes() ([]byte, error) { return encode(w) }

// DecodeWelcome decodes a complete Welcome.
func DecodeWelcome(data []byte) (*Welcome, error) {
	w := new(Welcome)
	if err := codec.Unmarshal(data, "welcome", w.Decode); err != nil {
		return nil, err
	}
	return w, nil
}

// Find returns the entry for the KeyPackage with reference ref, or nil.
func (w *Welcome) Find(ref KeyPackageRef) *EncryptedGroupSecrets {
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			return &w.Secrets[i]
		}
	}
	return nil
}

// SealGroupSecrets encrypts gs to initKey for the welcome w, whose
// EncryptedGroupInfo must already be set (it is the encryption context),
// and appends the entry for ref.
func (w *Welcome) SealGroupSecrets(cs *suite.Suite, ref KeyPackageRef, initKey HPKEPublicKey, gs *GroupSecrets) error {
	if err := needSuite(cs); err != nil {
		return err
	}
	if gs == nil {
		return fmt.Errorf("%w: nil group secrets", ErrEncode)
	}
	plain, err := gs.Bytes()
	if err != nil {
		return fmt.Errorf("failed to encode group secrets: %w", err)
	}
	defer clear(plain)
	kemOutput, ct, err := cs.EncryptWithLabel(initKey, "Welcome", w.EncryptedGroupInfo, plain)
	if err != nil {
		return fmt.Errorf("failed to encrypt group secrets: %w", err)
	}
	w.Secrets = append(w.Secrets, EncryptedGroupSecrets{
		NewMember:             ref,
		EncryptedGroupSecrets: HPKECiphertext{KEMOutput: kemOutput, Ciphertext: ct},
	})
	return nil
}

// OpenGroupSecrets finds the entry for ref and decrypts it with the
// KeyPackage's init private key.
func (w *Welcome) OpenGroupSecrets(cs *suite.Suite, ref KeyPackageRef, initPriv []byte) (*GroupSecrets, error) {
	if err := needSuite(cs); err != nil {
		return nil, err
	}
	e := w.Find(ref)
	if e == nil {
		return nil, ErrNoGroupSecrets
	}
	plain, err := cs.DecryptWithLabel(initPriv, "Welcome", w.EncryptedGroupInfo,
		e.EncryptedGroupSecrets.KEMOutput, e.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt group secrets: %w", err)
	}
	defer clear(plain)
	gs, err := DecodeGroupSecrets(plain)
	if err != nil {
		return nil, fmt.Errorf("failed to decode group secrets: %w", err)
	}
	return gs, nil
}

// welcomeKeyNonce derives welcome_key and welcome_nonce from welcome_secret.
func welcomeKeyNonce(cs *suite.Suite, welcomeSecret []byte) (key, nonce []byte, err error) {
	key, err = cs.ExpandWithLabel(welcomeSecret, "key", nil, cs.KeySize())
	if err != nil {
		return nil, nil, err
	}
	nonce, err = cs.ExpandWithLabel(welcomeSecret, "nonce", nil, cs.NonceSize())
	if err != nil {
		clear(key)
		return nil, nil, err
	}
	return key, nonce, nil
}

// SealGroupInfo encrypts gi with the key and nonce derived from
// welcomeSecret and sets w.EncryptedGroupInfo.
func (w *Welcome) SealGroupInfo(cs *suite.Suite, welcomeSecret []byte, gi *GroupInfo) error {
	if err := needSuite(cs); err != nil {
		return err
	}
	if gi == nil {
		return fmt.Errorf("%w: nil group info", ErrEncode)
	}
	plain, err := gi.Bytes()
	if err != nil {
		return fmt.Errorf("failed to encode group info: %w", err)
	}
	key, nonce, err := welcomeKeyNonce(cs, welcomeSecret)
	if err != nil {
		return fmt.Errorf("failed to derive welcome key: %w", err)
	}
	defer clear(key)
	ct, err := cs.Seal(nil, key, nonce, nil, plain)
	if err != nil {
		return fmt.Errorf("failed to encrypt group info: %w", err)
	}
	w.EncryptedGroupInfo = ct
	return nil
}

// OpenGroupInfo decrypts and decodes the GroupInfo with the key and nonce
// derived from welcomeSecret. It does not verify the signature.
func (w *Welcome) OpenGroupInfo(cs *suite.Suite, welcomeSecret []byte) (*GroupInfo, error) {
	if err := needSuite(cs); err != nil {
		return nil, err
	}
	key, nonce, err := welcomeKeyNonce(cs, welcomeSecret)
	if err != nil {
		return nil, fmt.Errorf("failed to derive welcome key: %w", err)
	}
	defer clear(key)
	plain, err := cs.Open(nil, key, nonce, nil, w.EncryptedGroupInfo)
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt group info: %w", err)
	}
	gi, err := DecodeGroupInfo(plain)
	if err != nil {
		return nil, fmt.Errorf("failed to decode group info: %w", err)
	}
	return gi, nil
}
