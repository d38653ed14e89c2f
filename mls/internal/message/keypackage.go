package message

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
)

// KeyPackage is a client's pre-published offer to be added to a group (RFC
// 9420, Section 10).
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite suite.ID
	InitKey     HPKEPublicKey
	LeafNode    LeafNode
	Extensions  Extensions
	Signature   []byte
}

// encodeContent appends the KeyPackageTBS fields.
func (k *KeyPackage) encodeContent(b *cryptobyte.Builder) {
	b.AddUint16(uint16(k.Version))
	b.AddUint16(uint16(k.CipherSuite))
	codec.AddOpaque(b, k.InitKey)
	k.LeafNode.Encode(b)
	k.Extensions.Encode(b)
}

// Encode appends the key package to b.
func (k *KeyPackage) Encode(b *cryptobyte.Builder) {
	k.encodeContent(b)
	codec.AddOpaque(b, k.Signature)
}

// Decode reads a key package from s.
func (k *KeyPackage) Decode(s *cryptobyte.String) bool {
	*k = KeyPackage{}
	var v, cs uint16
	if !s.ReadUint16(&v) || !s.ReadUint16(&cs) || !readBytes(s, &k.InitKey) ||
		!k.LeafNode.Decode(s) || !k.Extensions.Decode(s) || !codec.ReadOpaque(s, &k.Signature) {
		return false
	}
	k.Version, k.CipherSuite = ProtocolVersion(v), suite.ID(cs)
	return true
}

// Bytes returns the encoded key package.
func (k *KeyPackage) Bytes() ([]byte, error) { return encode(k) }

// DecodeKeyPackage decodes a complete KeyPackage.
func DecodeKeyPackage(data []byte) (*KeyPackage, error) {
	k := new(KeyPackage)
	if err := codec.Unmarshal(data, "key package", k.Decode); err != nil {
		return nil, err
	}
	return k, nil
}

// ToBeSigned returns the KeyPackageTBS encoding.
func (k *KeyPackage) ToBeSigned() ([]byte, error) { return codec.Marshal(k.encodeContent) }

// Sign sets the signature with label "KeyPackageTBS". The leaf node must
// already be signed, since its signature is covered.
func (k *KeyPackage) Sign(signer *suite.Signer) error {
	if err := needSigner(signer); err != nil {
		return err
	}
	tbs, err := k.ToBeSigned()
	if err != nil {
		return fmt.Errorf("failed to encode key package: %w", err)
	}
	sig, err := signer.SignWithLabel("KeyPackageTBS", tbs)
	if err != nil {
		return fmt.Errorf("failed to sign key package: %w", err)
	}
	k.Signature = sig
	return nil
}

// Verify checks the key package signature with the leaf node's signature
// key. It does not check the leaf node's own signature (see
// [KeyPackage.Validate]).
func (k *KeyPackage) Verify(cs *suite.Suite) error {
	if err := needSuite(cs); err != nil {
		return err
	}
	tbs, err := k.ToBeSigned()
	if err != nil {
		return fmt.Errorf("failed to encode key package: %w", err)
	}
	if err := cs.VerifyWithLabel(k.LeafNode.SignatureKey, "KeyPackageTBS", tbs, k.Signature); err != nil {
		return fmt.Errorf("failed to verify key package signature: %w", err)
	}
	return nil
}

// Ref returns the KeyPackageRef: RefHash("MLS 1.0 KeyPackage Reference",
// KeyPackage).
func (k *KeyPackage) Ref(cs *suite.Suite) (KeyPackageRef, error) {
	if err := needSuite(cs); err != nil {
		return nil, err
	}
	data, err := k.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode key package: %w", err)
	}
	return cs.RefHash("MLS 1.0 KeyPackage Reference", data), nil
}

// Validate runs the KeyPackage checks of RFC 9420, Section 10.1 that need no
// group state: the version is mls10 and the cipher suite is cs; the init,
// encryption and signature keys are valid for the suite; both signatures
// verify; the leaf node passes [LeafNode.Validate] with source key_package
// (c.Source is ignored); the init key differs from the encryption key; and
// the key package's own non-default extensions are listed in the leaf's
// capabilities and do not repeat. The caller still checks the credential
// and the group's requirements.
func (k *KeyPackage) Validate(cs *suite.Suite, c LeafNodeCheck) error {
	if err := needSuite(cs); err != nil {
		return err
	}
	if k.Version != MLS10 {
		return fmt.Errorf("%w: key package version %d", ErrVersion, k.Version)
	}
	if k.CipherSuite != cs.ID() {
		return fmt.Errorf("%w: key package is for 0x%04x, not 0x%04x", suite.ErrUnsupported, uint16(k.CipherSuite), uint16(cs.ID()))
	}
	if err := cs.ValidateHPKEPublicKey(k.InitKey); err != nil {
		return fmt.Errorf("failed to validate init key: %w", err)
	}
	if err := cs.ValidateHPKEPublicKey(k.LeafNode.EncryptionKey); err != nil {
		return fmt.Errorf("failed to validate encryption key: %w", err)
	}
	if err := cs.ValidateSignaturePublicKey(k.LeafNode.SignatureKey); err != nil {
		return fmt.Errorf("failed to validate signature key: %w", err)
	}
	if err := k.Verify(cs); err != nil {
		return err
	}
	if err := k.LeafNode.Verify(cs, nil, 0); err != nil {
		return err
	}
	c.Source = SourceKeyPackage
	if err := k.LeafNode.Validate(c); err != nil {
		return err
	}
	if bytes.Equal(k.InitKey, k.LeafNode.EncryptionKey) {
		return ErrInitKeyReuse
	}
	for _, e := range k.Extensions {
		if !k.LeafNode.Capabilities.SupportsExtension(e.Type) {
			return fmt.Errorf("%w: key package extension 0x%04x not listed", ErrCapabilities, uint16(e.Type))
		}
	}
	if err := k.Extensions.Validate(); err != nil {
		return fmt.Errorf("failed to validate key package extensions: %w", err)
	}
	return nil
}
