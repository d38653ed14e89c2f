package mls

import (
	"bytes"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
)

// KeyPackageRef identifies a key package (RFC 9420, Section 5.2).
type KeyPackageRef []byte

// KeyPackage is the public half of a [KeyPackageBundle]: what a client
// publishes so that others can add it to groups.
type KeyPackage struct {
	kp  *message.KeyPackage
	ref KeyPackageRef
}

// KeyPackageBundle is a key package together with its private keys. Keep it
// secret until the key package is used by a [Join], then delete it.
type KeyPackageBundle struct {
	// KeyPackage is the public part, to publish.
	KeyPackage *KeyPackage
	initPriv   []byte
	encPriv    []byte
	signer     *Signer
}

// NewKeyPackage makes a key package for cfg.Suite with a fresh init key and
// leaf encryption key, signed by signer.
func NewKeyPackage(cfg *Config, cred Credential, signer *Signer) (*KeyPackageBundle, error) {
	cs, err := cfg.suite()
	if err != nil {
		return nil, err
	}
	if signer.suite != cfg.Suite {
		return nil, wrapf(ErrUnsupported, "signer is for suite 0x%04x, config for 0x%04x", uint16(signer.suite), uint16(cfg.Suite))
	}
	initPriv, initPub, err := generateHPKE(cfg, cs)
	if err != nil {
		return nil, err
	}
	encPriv, encPub, err := generateHPKE(cfg, cs)
	if err != nil {
		return nil, err
	}
	leaf := message.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.s.Public(),
		Credential:    message.NewBasicCredential(bytes.Clone(cred.Identity)),
		Capabilities:  defaultCapabilities(cfg.Suite),
		Source:        message.SourceKeyPackage,
		Lifetime:      leafLifetime(cfg),
	}
	if err := leaf.Sign(signer.s, nil, 0); err != nil {
		return nil, err
	}
	kp := &message.KeyPackage{
		Version:     message.MLS10,
		CipherSuite: cs.ID(),
		InitKey:     initPub,
		LeafNode:    leaf,
	}
	if err := kp.Sign(signer.s); err != nil {
		return nil, fmt.Errorf("failed to sign key package: %w", err)
	}
	pub, err := newKeyPackage(kp)
	if err != nil {
		return nil, err
	}
	return &KeyPackageBundle{KeyPackage: pub, initPriv: initPriv, encPriv: encPriv, signer: signer}, nil
}

func generateHPKE(cfg *Config, cs *suite.Suite) (priv, pub []byte, err error) {
	ikm := make([]byte, cs.HashSize())
	defer clear(ikm)
	if _, err := io.ReadFull(cfg.rand(), ikm); err != nil {
		return nil, nil, fmt.Errorf("failed to read randomness: %w", err)
	}
	priv, pub, err = cs.DeriveHPKEKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to generate HPKE key: %w", err)
	}
	return priv, pub, nil
}

// defaultCapabilities lists what this package supports.
func defaultCapabilities(cs CipherSuite) message.Capabilities {
	return message.Capabilities{
		Versions:     []message.ProtocolVersion{message.MLS10},
		CipherSuites: []suite.ID{suite.ID(cs)},
		Credentials:  []message.CredentialType{message.CredentialBasic},
	}
}

func newKeyPackage(kp *message.KeyPackage) (*KeyPackage, error) {
	cs, err := suite.Get(kp.CipherSuite)
	if err != nil {
		return nil, wrapf(ErrUnsupported, "cipher suite 0x%04x", uint16(kp.CipherSuite))
	}
	ref, err := kp.Ref(cs)
	if err != nil {
		return nil, fmt.Errorf("failed to hash key package: %w", err)
	}
	return &KeyPackage{kp: kp, ref: KeyPackageRef(ref)}, nil
}

// ParseKeyPackage decodes a key package (an MLSMessage carrying a
// KeyPackage, as [KeyPackage.Bytes] returns) and validates it on its own:
// supported version and suite, signatures, leaf node and init key
// (RFC 9420, Section 10.1). Group-specific checks happen when it is added.
func ParseKeyPackage(cfg *Config, data []byte) (*KeyPackage, error) {
	m, err := message.DecodeMLSMessage(data)
	if err != nil {
		return nil, wrapf(ErrMalformed, "key package: %v", err)
	}
	if m.WireFormat != message.WireFormatKeyPackage || m.KeyPackage == nil {
		return nil, wrapf(ErrMalformed, "not a key package but wire format %d", m.WireFormat)
	}
	kp, err := newKeyPackage(m.KeyPackage)
	if err != nil {
		return nil, err
	}
	if err := validateKeyPackage(cfg, kp.kp, true); err != nil {
		return nil, err
	}
	return kp, nil
}

// validateKeyPackage runs the group-independent checks of RFC 9420, Section
// 10.1.
func validateKeyPackage(cfg *Config, kp *message.KeyPackage, checkLifetime bool) error {
	if kp.Version != message.MLS10 {
		return wrapf(ErrInvalidKeyPackage, "version %d", kp.Version)
	}
	cs, err := suite.Get(kp.CipherSuite)
	if err != nil {
		return wrapf(ErrUnsupported, "key package cipher suite 0x%04x", uint16(kp.CipherSuite))
	}
	if err := kp.Verify(cs); err != nil {
		return wrapf(ErrInvalidSignature, "key package: %v", err)
	}
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		return wrapf(ErrInvalidKeyPackage, "init key equals the leaf encryption key")
	}
	if err := cs.ValidateHPKEPublicKey(kp.InitKey); err != nil {
		return wrapf(ErrInvalidKeyPackage, "init key: %v", err)
	}
	for _, e := range kp.Extensions {
		if !kp.LeafNode.Capabilities.SupportsExtension(e.Type) {
			return wrapf(ErrInvalidKeyPackage, "extension 0x%04x not listed in the capabilities", uint16(e.Type))
		}
	}
	if err := kp.Extensions.Validate(); err != nil {
		return wrapf(ErrInvalidKeyPackage, "%v", err)
	}
	if err := validateLeafAlone(cfg, cs, &kp.LeafNode, message.SourceKeyPackage, nil, 0, checkLifetime); err != nil {
		return err
	}
	return nil
}

// checkLifetime checks that the key package's leaf is valid now, as RFC
// 9420, Section 7.3 requires for leaf nodes we send; the rest of the
// validation happens with the proposal.
func checkLifetime(cfg *Config, kp *message.KeyPackage) error {
	if !kp.LeafNode.Lifetime.Contains(cfg.now()) {
		return wrapf(ErrInvalidKeyPackage, "lifetime [%d, %d] does not cover now", kp.LeafNode.Lifetime.NotBefore, kp.LeafNode.Lifetime.NotAfter)
	}
	return nil
}

// Bytes returns the key package as an MLSMessage, ready to publish.
func (k *KeyPackage) Bytes() []byte {
	m := &message.MLSMessage{Version: message.MLS10, WireFormat: message.WireFormatKeyPackage, KeyPackage: k.kp}
	data, err := m.Bytes()
	if err != nil {
		// A KeyPackage we hold decoded or built successfully and
		// always encodes.
		return nil
	}
	return data
}

// Ref returns the key package's reference.
func (k *KeyPackage) Ref() KeyPackageRef { return bytes.Clone(k.ref) }

// CipherSuite returns the key package's suite.
func (k *KeyPackage) CipherSuite() CipherSuite { return CipherSuite(k.kp.CipherSuite) }

// Credential returns the credential of the key package's leaf.
func (k *KeyPackage) Credential() Credential {
	return Credential{Identity: bytes.Clone(k.kp.LeafNode.Credential.Identity)}
}

// SignaturePublicKey returns the key package's signature key.
func (k *KeyPackage) SignaturePublicKey() SignaturePublicKey {
	return bytes.Clone(k.kp.LeafNode.SignatureKey)
}

// HPKEPrivateKey is an HPKE private key in its serialised form (RFC 9180,
// SerializePrivateKey).
type HPKEPrivateKey []byte

// InitPrivateKey returns the private half of the key package's init key,
// which opens the Welcome addressed to it.
func (b *KeyPackageBundle) InitPrivateKey() HPKEPrivateKey { return bytes.Clone(b.initPriv) }

// EncryptionPrivateKey returns the private half of the key package's leaf
// encryption key.
func (b *KeyPackageBundle) EncryptionPrivateKey() HPKEPrivateKey { return bytes.Clone(b.encPriv) }

const keyPackageBundleVersion = 1

// MarshalBinary encodes the bundle, private keys included, for storage.
func (b *KeyPackageBundle) MarshalBinary() ([]byte, error) {
	return codec.Marshal(func(bb *cryptobyte.Builder) {
		bb.AddUint8(keyPackageBundleVersion)
		bb.AddUint16(uint16(b.signer.suite))
		b.KeyPackage.kp.Encode(bb)
		codec.AddOpaque(bb, b.initPriv)
		codec.AddOpaque(bb, b.encPriv)
		codec.AddOpaque(bb, b.signer.priv)
	})
}

// UnmarshalKeyPackageBundle restores a bundle encoded by
// [KeyPackageBundle.MarshalBinary].
func UnmarshalKeyPackageBundle(data []byte) (*KeyPackageBundle, error) {
	var (
		version  uint8
		cs       uint16
		kp       message.KeyPackage
		initPriv []byte
		encPriv  []byte
		sigPriv  []byte
	)
	err := codec.Unmarshal(data, "key package bundle", func(s *cryptobyte.String) bool {
		return s.ReadUint8(&version) && version == keyPackageBundleVersion && s.ReadUint16(&cs) &&
			kp.Decode(s) && codec.ReadOpaque(s, &initPriv) && codec.ReadOpaque(s, &encPriv) && codec.ReadOpaque(s, &sigPriv)
	})
	if err != nil {
		return nil, wrapf(ErrInvalidState, "%v", err)
	}
	return newKeyPackageBundle(&kp, initPriv, encPriv, sigPriv)
}

func newKeyPackageBundle(kp *message.KeyPackage, initPriv, encPriv, sigPriv []byte) (*KeyPackageBundle, error) {
	signer, err := NewSigner(CipherSuite(kp.CipherSuite), sigPriv)
	if err != nil {
		return nil, err
	}
	pub, err := newKeyPackage(kp)
	if err != nil {
		return nil, err
	}
	cs, _ := suite.Get(kp.CipherSuite)
	for _, pair := range []struct{ priv, pub []byte }{{initPriv, kp.InitKey}, {encPriv, kp.LeafNode.EncryptionKey}} {
		p, err := cs.HPKEPublicKey(pair.priv)
		if err != nil || !bytes.Equal(p, pair.pub) {
			return nil, wrapf(ErrInvalidKeyPackage, "private key does not match the key package")
		}
	}
	if !bytes.Equal(signer.s.Public(), kp.LeafNode.SignatureKey) {
		return nil, wrapf(ErrInvalidKeyPackage, "signature key does not match the key package")
	}
	return &KeyPackageBundle{KeyPackage: pub, initPriv: initPriv, encPriv: encPriv, signer: signer}, nil
}
