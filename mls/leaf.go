package mls

import (
	"bytes"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// credentialOf converts a wire credential to the public form. Only basic
// credentials are supported.
func credentialOf(c *message.Credential) (Credential, error) {
	if c.Type != message.CredentialBasic {
		return Credential{}, wrapf(ErrUnsupported, "credential type 0x%04x", uint16(c.Type))
	}
	return Credential{Identity: bytes.Clone(c.Identity)}, nil
}

// validateLeafAlone runs the leaf node checks that need no group state
// (RFC 9420, Section 7.3): source, lifetime, capabilities covering the
// credential and extensions, signature and the application's credential
// check. groupID and index are used in the signature for the update and
// commit sources. The lifetime is checked only when checkLifetime is set:
// RFC 9420 requires it for what we send and recommends it for what we
// receive, which may have been in flight for long.
func validateLeafAlone(cfg *Config, cs *suite.Suite, leaf *message.LeafNode, source message.LeafNodeSource, groupID []byte, index treemath.LeafIndex, checkLifetime bool) error {
	check := message.LeafNodeCheck{Source: source}
	if source == message.SourceKeyPackage && checkLifetime {
		check.Now = cfg.now()
	}
	if err := leaf.Validate(check); err != nil {
		return wrapf(ErrInvalidLeafNode, "%v", err)
	}
	if err := cs.ValidateHPKEPublicKey(leaf.EncryptionKey); err != nil {
		return wrapf(ErrInvalidLeafNode, "encryption key: %v", err)
	}
	if err := cs.ValidateSignaturePublicKey(leaf.SignatureKey); err != nil {
		return wrapf(ErrInvalidLeafNode, "signature key: %v", err)
	}
	if err := leaf.Verify(cs, groupID, index); err != nil {
		return wrapf(ErrInvalidSignature, "leaf node: %v", err)
	}
	cred, err := credentialOf(&leaf.Credential)
	if err != nil {
		return err
	}
	return cfg.validateCredential(cred)
}

// memberIndex answers the uniqueness and compatibility questions of RFC
// 9420, Section 7.3 for many leaf nodes at once, so that a commit adding
// thousands of members does not scan the tree for each.
//
// For a handful of checks, building maps costs more than scanning the
// tree: a linear index scans the tree as it is at each check instead.
type memberIndex struct {
	t       *tree.Tree
	linear  bool
	sigKeys map[string]treemath.LeafIndex
	encKeys map[string]bool
	credOK  map[message.CredentialType]bool
	inUse   map[message.CredentialType]bool
	scanned bool
}

func newMemberIndex(t *tree.Tree, checks int) *memberIndex {
	return &memberIndex{t: t, linear: checks <= 4}
}

// encryptionKeyInTree reports whether key is any node's encryption key.
func encryptionKeyInTree(t *tree.Tree, key []byte) bool {
	w := t.Width()
	for x := treemath.NodeIndex(0); uint32(x) < w; x++ {
		if k := t.EncryptionKey(x); k != nil && bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

func (m *memberIndex) scan() {
	if m.scanned || m.linear {
		return
	}
	m.scanned = true
	m.sigKeys = make(map[string]treemath.LeafIndex)
	m.encKeys = make(map[string]bool)
	m.credOK = make(map[message.CredentialType]bool)
	m.inUse = make(map[message.CredentialType]bool)
	for i, leaf := range m.t.Leaves() {
		if leaf == nil {
			continue
		}
		m.sigKeys[string(leaf.SignatureKey)] = i
		m.encKeys[string(leaf.EncryptionKey)] = true
		m.inUse[leaf.Credential.Type] = true
	}
	w := m.t.Width()
	for x := treemath.NodeIndex(1); uint32(x) < w; x += 2 {
		if k := m.t.EncryptionKey(x); k != nil {
			m.encKeys[string(k)] = true
		}
	}
}

// supportedByAll reports whether every member supports credential type ct.
func (m *memberIndex) supportedByAll(ct message.CredentialType) bool {
	if m.linear {
		for _, leaf := range m.t.Leaves() {
			if leaf != nil && !leaf.Capabilities.SupportsCredential(ct) {
				return false
			}
		}
		return true
	}
	if ok, known := m.credOK[ct]; known {
		return ok
	}
	ok := true
	for _, leaf := range m.t.Leaves() {
		if leaf != nil && !leaf.Capabilities.SupportsCredential(ct) {
			ok = false
			break
		}
	}
	m.credOK[ct] = ok
	return ok
}

// add records a leaf that entered the tree after the scan.
func (m *memberIndex) add(i treemath.LeafIndex, leaf *message.LeafNode) {
	if m.linear {
		return
	}
	m.sigKeys[string(leaf.SignatureKey)] = i
	m.encKeys[string(leaf.EncryptionKey)] = true
	m.inUse[leaf.Credential.Type] = true
	for ct, ok := range m.credOK {
		if ok && !leaf.Capabilities.SupportsCredential(ct) {
			m.credOK[ct] = false
		}
	}
}

// check runs the checks of RFC 9420, Section 7.3 that depend on the group
// for a leaf node entering the tree: required capabilities, group context
// extensions supported, credential types supported both ways, and unique
// signature and encryption keys. replacing is the leaf the node replaces
// (whose signature key it may keep), or -1.
func (m *memberIndex) check(ctx *message.GroupContext, exts message.Extensions, leaf *message.LeafNode, replacing int64) error {
	m.scan()
	if err := checkRequiredCapabilities(exts, &leaf.Capabilities); err != nil {
		return err
	}
	for _, e := range exts {
		if !leaf.Capabilities.SupportsExtension(e.Type) {
			return wrapf(ErrInvalidLeafNode, "group extension 0x%04x not supported", uint16(e.Type))
		}
	}
	if !m.supportedByAll(leaf.Credential.Type) {
		return wrapf(ErrInvalidLeafNode, "credential type 0x%04x not supported by every member", uint16(leaf.Credential.Type))
	}
	if m.linear {
		for i, other := range m.t.Leaves() {
			if other == nil || int64(i) == replacing {
				continue
			}
			if !leaf.Capabilities.SupportsCredential(other.Credential.Type) {
				return wrapf(ErrInvalidLeafNode, "credential type 0x%04x in use is not supported", uint16(other.Credential.Type))
			}
			if bytes.Equal(other.SignatureKey, leaf.SignatureKey) {
				return wrapf(ErrInvalidLeafNode, "signature key already used by member %d", i)
			}
		}
		if encryptionKeyInTree(m.t, leaf.EncryptionKey) {
			return wrapf(ErrInvalidLeafNode, "encryption key already in the tree")
		}
		return nil
	}
	for ct := range m.inUse {
		if !leaf.Capabilities.SupportsCredential(ct) {
			return wrapf(ErrInvalidLeafNode, "credential type 0x%04x in use is not supported", uint16(ct))
		}
	}
	if i, dup := m.sigKeys[string(leaf.SignatureKey)]; dup && int64(i) != replacing {
		return wrapf(ErrInvalidLeafNode, "signature key already used by member %d", i)
	}
	if m.encKeys[string(leaf.EncryptionKey)] {
		return wrapf(ErrInvalidLeafNode, "encryption key already in the tree")
	}
	return nil
}

// checkRequiredCapabilities checks c against the group's
// required_capabilities extension, if any.
func checkRequiredCapabilities(exts message.Extensions, c *message.Capabilities) error {
	var rc message.RequiredCapabilities
	found, err := message.DecodeExtension(exts, message.ExtensionRequiredCapabilities, &rc)
	if err != nil {
		return wrapf(ErrMalformed, "required_capabilities: %v", err)
	}
	if !found {
		return nil
	}
	for _, t := range rc.Extensions {
		if !c.SupportsExtension(t) {
			return wrapf(ErrInvalidLeafNode, "required extension 0x%04x not supported", uint16(t))
		}
	}
	for _, t := range rc.Proposals {
		if !c.SupportsProposal(t) {
			return wrapf(ErrInvalidLeafNode, "required proposal 0x%04x not supported", uint16(t))
		}
	}
	for _, t := range rc.Credentials {
		if !c.SupportsCredential(t) {
			return wrapf(ErrInvalidLeafNode, "required credential 0x%04x not supported", uint16(t))
		}
	}
	return nil
}
