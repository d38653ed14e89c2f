package message

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// Capabilities lists what a client supports (RFC 9420, Section 7.2).
// Unknown (GREASE) values are kept as they are.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []suite.ID
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// Encode appends the capabilities to b.
func (c *Capabilities) Encode(b *cryptobyte.Builder) {
	addU16List(b, c.Versions)
	addU16List(b, c.CipherSuites)
	addU16List(b, c.Extensions)
	addU16List(b, c.Proposals)
	addU16List(b, c.Credentials)
}

// Decode reads capabilities from s.
func (c *Capabilities) Decode(s *cryptobyte.String) bool {
	return readU16List(s, &c.Versions) &&
		readU16List(s, &c.CipherSuites) &&
		readU16List(s, &c.Extensions) &&
		readU16List(s, &c.Proposals) &&
		readU16List(s, &c.Credentials)
}

// SupportsExtension reports whether t is a default extension type or listed.
func (c *Capabilities) SupportsExtension(t ExtensionType) bool {
	return t.IsDefault() || slices.Contains(c.Extensions, t)
}

// SupportsProposal reports whether t is a default proposal type or listed.
func (c *Capabilities) SupportsProposal(t ProposalType) bool {
	return t.IsDefault() || slices.Contains(c.Proposals, t)
}

// SupportsCredential reports whether t is listed.
func (c *Capabilities) SupportsCredential(t CredentialType) bool {
	return slices.Contains(c.Credentials, t)
}

// Clone returns a deep copy of c.
func (c *Capabilities) Clone() Capabilities {
	return Capabilities{
		Versions:     slices.Clone(c.Versions),
		CipherSuites: slices.Clone(c.CipherSuites),
		Extensions:   slices.Clone(c.Extensions),
		Proposals:    slices.Clone(c.Proposals),
		Credentials:  slices.Clone(c.Credentials),
	}
}

// Lifetime is the validity period of a KeyPackage leaf node, in seconds
// since the Unix epoch, both ends inclusive.
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Encode appends the lifetime to b.
func (l *Lifetime) Encode(b *cryptobyte.Builder) {
	b.AddUint64(l.NotBefore)
	b.AddUint64(l.NotAfter)
}

// Decode reads a lifetime from s.
func (l *Lifetime) Decode(s *cryptobyte.String) bool {
	return s.ReadUint64(&l.NotBefore) && s.ReadUint64(&l.NotAfter)
}

// Contains reports whether now lies within the lifetime.
func (l *Lifetime) Contains(now time.Time) bool {
	sec := now.Unix()
	if sec < 0 {
		return false
	}
	return uint64(sec) >= l.NotBefore && uint64(sec) <= l.NotAfter
}

// LeafNode describes one member of a group (RFC 9420, Section 7.2). Lifetime
// is meaningful only when Source is [SourceKeyPackage], ParentHash only when
// it is [SourceCommit].
type LeafNode struct {
	EncryptionKey HPKEPublicKey
	SignatureKey  SignaturePublicKey
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime
	ParentHash    []byte
	Extensions    Extensions
	Signature     []byte
}

// encodeContent appends the fields shared by LeafNode and LeafNodeTBS.
func (l *LeafNode) encodeContent(b *cryptobyte.Builder) {
	codec.AddOpaque(b, l.EncryptionKey)
	codec.AddOpaque(b, l.SignatureKey)
	l.Credential.Encode(b)
	l.Capabilities.Encode(b)
	b.AddUint8(uint8(l.Source))
	switch l.Source {
	case SourceKeyPackage:
		l.Lifetime.Encode(b)
	case SourceUpdate:
	case SourceCommit:
		codec.AddOpaque(b, l.ParentHash)
	default:
		b.SetError(fmt.Errorf("%w: leaf node source %d", ErrEncode, l.Source))
	}
	l.Extensions.Encode(b)
}

// Encode appends the leaf node to b.
func (l *LeafNode) Encode(b *cryptobyte.Builder) {
	l.encodeContent(b)
	codec.AddOpaque(b, l.Signature)
}

// Decode reads a leaf node from s.
func (l *LeafNode) Decode(s *cryptobyte.String) bool {
	*l = LeafNode{}
	var src uint8
	if !readBytes(s, &l.EncryptionKey) || !readBytes(s, &l.SignatureKey) ||
		!l.Credential.Decode(s) || !l.Capabilities.Decode(s) || !s.ReadUint8(&src) {
		return false
	}
	l.Source = LeafNodeSource(src)
	switch l.Source {
	case SourceKeyPackage:
		if !l.Lifetime.Decode(s) {
			return false
		}
	case SourceUpdate:
	case SourceCommit:
		if !codec.ReadOpaque(s, &l.ParentHash) {
			return false
		}
	default:
		return false
	}
	return l.Extensions.Decode(s) && codec.ReadOpaque(s, &l.Signature)
}

// Bytes returns the encoded leaf node.
func (l *LeafNode) Bytes() ([]byte, error) { return encode(l) }

// ToBeSigned returns the LeafNodeTBS encoding. groupID and leaf are included
// only for the update and commit sources.
func (l *LeafNode) ToBeSigned(groupID GroupID, leaf treemath.LeafIndex) ([]byte, error) {
	return codec.Marshal(func(b *cryptobyte.Builder) {
		l.encodeContent(b)
		if l.Source == SourceUpdate || l.Source == SourceCommit {
			codec.AddOpaque(b, groupID)
			b.AddUint32(uint32(leaf))
		}
	})
}

// Sign sets the signature over LeafNodeTBS with label "LeafNodeTBS".
func (l *LeafNode) Sign(signer *suite.Signer, groupID GroupID, leaf treemath.LeafIndex) error {
	if err := needSigner(signer); err != nil {
		return err
	}
	tbs, err := l.ToBeSigned(groupID, leaf)
	if err != nil {
		return fmt.Errorf("failed to encode leaf node: %w", err)
	}
	sig, err := signer.SignWithLabel("LeafNodeTBS", tbs)
	if err != nil {
		return fmt.Errorf("failed to sign leaf node: %w", err)
	}
	l.Signature = sig
	return nil
}

// Verify checks the signature with the leaf node's own signature key.
func (l *LeafNode) Verify(cs *suite.Suite, groupID GroupID, leaf treemath.LeafIndex) error {
	if err := needSuite(cs); err != nil {
		return err
	}
	tbs, err := l.ToBeSigned(groupID, leaf)
	if err != nil {
		return fmt.Errorf("failed to encode leaf node: %w", err)
	}
	if err := cs.VerifyWithLabel(l.SignatureKey, "LeafNodeTBS", tbs, l.Signature); err != nil {
		return fmt.Errorf("failed to verify leaf node signature: %w", err)
	}
	return nil
}

// LeafNodeCheck says what [LeafNode.Validate] checks.
type LeafNodeCheck struct {
	// Source is the leaf_node_source the context requires.
	Source LeafNodeSource
	// Now is the current time; when zero the lifetime is not checked.
	Now time.Time
	// MaxLifetime bounds NotAfter-NotBefore; zero means no bound.
	MaxLifetime time.Duration
}

// Equal reports whether l and o encode identically (RFC 9420 compares leaf
// nodes this way, for example to find a joiner's own leaf).
func (l *LeafNode) Equal(o *LeafNode) bool {
	a, errA := l.Bytes()
	b, errB := o.Bytes()
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// Clone returns a deep copy of l.
func (l *LeafNode) Clone() *LeafNode {
	c := *l
	c.EncryptionKey = bytes.Clone(l.EncryptionKey)
	c.SignatureKey = bytes.Clone(l.SignatureKey)
	c.Credential = l.Credential.Clone()
	c.Capabilities = l.Capabilities.Clone()
	c.ParentHash = bytes.Clone(l.ParentHash)
	c.Extensions = l.Extensions.Clone()
	c.Signature = bytes.Clone(l.Signature)
	return &c
}

// Validate runs the leaf node checks of RFC 9420, Section 7.3 that need no
// group state: the source, the lifetime (for key package leaves), that the
// capabilities list the credential type and every non-default extension the
// leaf carries, and that no extension type repeats. It does not verify the
// signature (see [LeafNode.Verify]) or the credential.
func (l *LeafNode) Validate(c LeafNodeCheck) error {
	if l.Source != c.Source {
		return fmt.Errorf("%w: got %d, want %d", ErrLeafNodeSource, l.Source, c.Source)
	}
	if l.Source == SourceKeyPackage {
		lt := l.Lifetime
		if lt.NotAfter < lt.NotBefore {
			return fmt.Errorf("%w: not_after %d before not_before %d", ErrLifetime, lt.NotAfter, lt.NotBefore)
		}
		if c.MaxLifetime > 0 && lt.NotAfter-lt.NotBefore > uint64(c.MaxLifetime/time.Second) {
			return fmt.Errorf("%w: %d s exceeds the maximum %s", ErrLifetime, lt.NotAfter-lt.NotBefore, c.MaxLifetime)
		}
		if !c.Now.IsZero() && !lt.Contains(c.Now) {
			return fmt.Errorf("%w: [%d, %d] does not contain %d", ErrLifetime, lt.NotBefore, lt.NotAfter, c.Now.Unix())
		}
	}
	if l.Credential.Type == CredentialX509 && len(l.Credential.Certificates) == 0 {
		return fmt.Errorf("%w: empty X.509 chain", ErrCredential)
	}
	if !l.Capabilities.SupportsCredential(l.Credential.Type) {
		return fmt.Errorf("%w: credential type 0x%04x not listed", ErrCapabilities, uint16(l.Credential.Type))
	}
	for _, e := range l.Extensions {
		if !l.Capabilities.SupportsExtension(e.Type) {
			return fmt.Errorf("%w: extension type 0x%04x not listed", ErrCapabilities, uint16(e.Type))
		}
	}
	if err := l.Extensions.Validate(); err != nil {
		return fmt.Errorf("failed to validate leaf node extensions: %w", err)
	}
	return nil
}
