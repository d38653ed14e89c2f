package mls

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// GroupID identifies a group; the application chooses it.
type GroupID []byte

// LeafIndex is a member's position in the group's ratchet tree.
type LeafIndex uint32

// Member is one member of a group as [Group.Members] lists them.
type Member struct {
	Index        LeafIndex
	Credential   Credential
	SignatureKey SignaturePublicKey
}

// Group is one member's state of an MLS group. It is not safe for
// concurrent use.
type Group struct {
	cfg    *Config
	signer *Signer
	cs     *suite.Suite

	tree *tree.Tree
	keys *tree.PrivateKeys
	self treemath.LeafIndex
	ep   *epoch

	// proposals received or sent in this epoch, in order.
	proposals []cachedProposal
	// updateKeys holds the leaf private keys of our own Update
	// proposals of this epoch, keyed by public key.
	updateKeys []updateKey
	pending    *pendingCommit
	// past are the previous epochs kept for late application messages,
	// oldest first.
	past []*pastEpoch
	// resumption holds the resumption secrets of recent epochs.
	resumption []resumptionSecret
	status     status
	// reinit is the ReInit proposal the last commit carried.
	reinit *message.ReInit
	// resumeFrom is the group a reinit or branch commit resumes, while
	// that commit is made.
	resumeFrom *Group
	// lastExternalJoiner is the leaf the last commit's sender took.
	lastExternalJoiner treemath.LeafIndex
}

type status uint8

const (
	statusActive status = iota
	statusRemoved
	statusReInit
)

// epoch is the key material of one epoch.
type epoch struct {
	ctx     *message.GroupContext
	secrets *keyschedule.EpochSecrets
	stree   *keyschedule.SecretTree
	fr      *framing.Epoch
	interim []byte
}

// pastEpoch is a previous epoch kept to decrypt late application messages.
type pastEpoch struct {
	ep   *epoch
	tree *tree.Tree
}

type updateKey struct {
	pub  []byte
	priv tree.HPKEPrivateKey
}

type resumptionSecret struct {
	epoch  uint64
	secret []byte
}

// maxResumption is how many resumption secrets a group keeps.
const maxResumption = 8

// newEpoch builds the key material of an epoch from its secrets.
func (g *Group) newEpoch(ctx *message.GroupContext, secrets *keyschedule.EpochSecrets, leaves treemath.LeafCount, interim []byte) (*epoch, error) {
	stree, err := secrets.NewSecretTree(leaves, keyschedule.Options{
		MaxForward: uint32(min(g.cfg.maxForward(), keyschedule.MaxWindow)), MaxRetained: uint32(min(g.cfg.maxSkip(), keyschedule.MaxWindow)),
	})
	if err != nil {
		return nil, fmt.Errorf("failed to build secret tree: %w", err)
	}
	pad := g.cfg.PaddingBlock
	if pad <= 0 {
		pad = 1
	}
	fr, err := framing.NewEpoch(g.cs, ctx, framing.Keys{
		MembershipKey: secrets.Membership, SenderDataSecret: secrets.SenderData, Tree: stree, PaddingBlock: pad,
	})
	if err != nil {
		return nil, err
	}
	return &epoch{ctx: ctx, secrets: secrets, stree: stree, fr: fr, interim: interim}, nil
}

// Create starts a new group with the caller as its only member.
func Create(cfg *Config, id GroupID, cred Credential, signer *Signer, opts *GroupOptions) (*Group, error) {
	cs, err := cfg.suite()
	if err != nil {
		return nil, err
	}
	if signer.suite != cfg.Suite {
		return nil, wrapf(ErrUnsupported, "signer suite 0x%04x differs from the config's", uint16(signer.suite))
	}
	if len(id) == 0 {
		return nil, fmt.Errorf("%w: empty group id", ErrMalformed)
	}
	exts, err := groupExtensions(opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.validateCredential(cred); err != nil {
		return nil, err
	}
	encPriv, encPub, err := generateHPKE(cfg, cs)
	if err != nil {
		return nil, err
	}
	leaf := &message.LeafNode{
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
	if err := checkRequiredCapabilities(exts, &leaf.Capabilities); err != nil {
		return nil, err
	}
	for _, e := range exts {
		if !leaf.Capabilities.SupportsExtension(e.Type) {
			return nil, wrapf(ErrUnsupported, "group extension 0x%04x", uint16(e.Type))
		}
	}
	t, err := tree.New(cs, leaf)
	if err != nil {
		return nil, err
	}
	keys, err := tree.NewPrivateKeys(cs, 0, encPriv)
	clear(encPriv)
	if err != nil {
		return nil, err
	}
	ctx := &message.GroupContext{
		Version: message.MLS10, CipherSuite: cs.ID(), GroupID: bytes.Clone(id), Epoch: 0,
		TreeHash: t.TreeHash(), ConfirmedTranscriptHash: nil, Extensions: exts,
	}
	init := make([]byte, cs.HashSize())
	if _, err := io.ReadFull(cfg.rand(), init); err != nil {
		return nil, fmt.Errorf("failed to read randomness: %w", err)
	}
	ctxBytes, err := ctx.Bytes()
	if err != nil {
		return nil, err
	}
	joiner, secrets, err := keyschedule.NewEpoch(cs, init, nil, nil, ctxBytes)
	clear(init)
	if err != nil {
		return nil, err
	}
	clear(joiner)
	tag := framing.ConfirmationTag(cs, secrets.Confirmation, ctx.ConfirmedTranscriptHash)
	interim, err := framing.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, tag)
	if err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, signer: signer, cs: cs, tree: t, keys: keys, self: 0}
	g.ep, err = g.newEpoch(ctx, secrets, t.LeafCount(), interim)
	if err != nil {
		return nil, err
	}
	g.rememberResumption()
	return g, nil
}

func leafLifetime(cfg *Config) message.Lifetime {
	now := cfg.now()
	nb := now.Add(-time.Hour).Unix()
	if nb < 0 {
		nb = 0
	}
	return message.Lifetime{NotBefore: uint64(nb), NotAfter: uint64(now.Add(cfg.keyPackageExpiry()).Unix())}
}

// rememberResumption keeps the current epoch's resumption secret.
func (g *Group) rememberResumption() {
	g.resumption = append(slices.Clone(g.resumption), resumptionSecret{epoch: g.ep.ctx.Epoch, secret: bytes.Clone(g.ep.secrets.Resumption)})
	if len(g.resumption) > maxResumption {
		clear(g.resumption[0].secret)
		g.resumption = g.resumption[1:]
	}
}

// ID returns the group's id.
func (g *Group) ID() GroupID { return bytes.Clone(g.ep.ctx.GroupID) }

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 { return g.ep.ctx.Epoch }

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return CipherSuite(g.cs.ID()) }

// Index returns our own leaf index.
func (g *Group) Index() LeafIndex { return LeafIndex(g.self) }

// Active reports whether we can still send in the group: false once we were
// removed or the group was reinitialised.
func (g *Group) Active() bool { return g.status == statusActive }

// EpochAuthenticator returns the current epoch's authenticator: members
// that compare equal values agree on the group state.
func (g *Group) EpochAuthenticator() []byte { return bytes.Clone(g.ep.secrets.EpochAuthenticator) }

// Export derives a secret for the application from the current epoch
// (MLS-Exporter, RFC 9420, Section 8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*g.cs.HashSize() {
		return nil, fmt.Errorf("%w: export length %d", ErrMalformed, length)
	}
	return g.ep.secrets.Export(label, context, length)
}

// Members lists the current members in leaf order.
func (g *Group) Members() []Member {
	var out []Member
	for i, leaf := range g.tree.Leaves() {
		if leaf == nil {
			continue
		}
		out = append(out, memberOf(i, leaf))
	}
	return out
}

// Member returns the member at leaf index i.
func (g *Group) Member(i LeafIndex) (Member, bool) {
	if uint64(i) >= uint64(g.tree.LeafCount()) {
		return Member{}, false
	}
	leaf := g.tree.Leaf(treemath.LeafIndex(i))
	if leaf == nil {
		return Member{}, false
	}
	return memberOf(treemath.LeafIndex(i), leaf), true
}

func memberOf(i treemath.LeafIndex, leaf *message.LeafNode) Member {
	return Member{
		Index:        LeafIndex(i),
		Credential:   Credential{Identity: bytes.Clone(leaf.Credential.Identity)},
		SignatureKey: bytes.Clone(leaf.SignatureKey),
	}
}
