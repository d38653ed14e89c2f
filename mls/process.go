package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// Kind says what a processed message carried.
type Kind uint8

// Kinds of processed messages.
const (
	KindApplication Kind = iota + 1
	KindProposal
	KindCommit
)

// SenderKind says who sent a message.
type SenderKind uint8

// Kinds of senders (RFC 9420, Section 6).
const (
	SenderMember SenderKind = iota + 1
	SenderExternal
	SenderNewMemberProposal
	SenderNewMemberCommit
)

// Sender identifies the sender of a processed message.
type Sender struct {
	Kind SenderKind
	// Index is the sender's leaf (members and external committers) or
	// its index in the external senders list (external senders).
	Index LeafIndex
	// Credential is the sender's credential.
	Credential Credential
}

// Processed is the outcome of [Group.Process].
type Processed struct {
	Kind   Kind
	Sender Sender
	// Epoch is the epoch the message belonged to.
	Epoch uint64
	// AuthenticatedData is the sender's unencrypted associated data.
	AuthenticatedData []byte
	// Application is the plaintext of an application message.
	Application []byte
	// Proposal describes a proposal, now cached for the next commit.
	Proposal *ProposalInfo
	// Commit describes a commit, now applied.
	Commit *CommitInfo
}

// ProposalInfo describes a proposal.
type ProposalInfo struct {
	// Type is the RFC 9420 proposal type (1 add, 2 update, 3 remove,
	// 4 psk, 5 reinit, 6 external_init, 7 group_context_extensions).
	Type uint16
	// Added is the credential of the member an Add proposes.
	Added *Credential
	// Removed is the leaf a Remove proposes to remove.
	Removed LeafIndex
}

// CommitInfo describes a commit that was applied.
type CommitInfo struct {
	// Own reports that the commit was our own pending one, now merged.
	Own bool
	// Epoch is the new epoch.
	Epoch uint64
	// Added lists the members the commit added.
	Added []Member
	// Removed lists the leaves the commit removed.
	Removed []LeafIndex
	// Updated lists the members whose Update proposals were applied.
	Updated []LeafIndex
	// RemovedUs reports that we were removed: the group is inactive.
	RemovedUs bool
	// ReInit reports that the commit reinitialises the group: wait for
	// the Welcome of the new group.
	ReInit bool
}

// Process handles an MLSMessage sent to the group: an application message,
// a proposal (cached until the next commit) or a commit (applied, entering
// the next epoch). A commit that is our own pending one merges it. On
// error, the group is unchanged.
func (g *Group) Process(data []byte) (*Processed, error) {
	m, err := message.DecodeMLSMessage(data)
	if err != nil {
		return nil, wrapf(ErrMalformed, "%v", err)
	}
	if m.Version != message.MLS10 {
		return nil, wrapf(ErrUnsupported, "protocol version %d", m.Version)
	}
	if g.pending != nil && bytes.Equal(data, g.pending.message) {
		return g.mergeOwnCommit()
	}
	for _, cp := range g.proposals {
		if cp.raw != nil && bytes.Equal(data, cp.raw) {
			// Our own proposal, echoed by the delivery service: already
			// cached.
			return &Processed{Kind: KindProposal, Epoch: g.ep.ctx.Epoch, Proposal: proposalInfo(cp.proposal),
				Sender: Sender{Kind: SenderMember, Index: LeafIndex(g.self), Credential: credentialOfLeaf(g.tree.Leaf(g.self))}}, nil
		}
	}
	switch m.WireFormat {
	case message.WireFormatPublicMessage:
		return g.processPublic(m.PublicMessage)
	case message.WireFormatPrivateMessage:
		return g.processPrivate(m.PrivateMessage)
	}
	return nil, wrapf(ErrMalformed, "wire format %d cannot be processed by a group", m.WireFormat)
}

func (g *Group) mergeOwnCommit() (*Processed, error) {
	next := g.pending.next
	info := &CommitInfo{Own: true, Epoch: next.ep.ctx.Epoch, ReInit: next.status == statusReInit}
	p := &Processed{Kind: KindCommit, Epoch: g.ep.ctx.Epoch, Commit: info,
		Sender: Sender{Kind: SenderMember, Index: LeafIndex(g.self), Credential: credentialOfLeaf(g.tree.Leaf(g.self))}}
	g.mergeNext(next)
	return p, nil
}

func credentialOfLeaf(l *message.LeafNode) Credential {
	if l == nil {
		return Credential{}
	}
	return Credential{Identity: bytes.Clone(l.Credential.Identity)}
}

// checkGroup checks a message's group and that it is for the current
// epoch.
func (g *Group) checkEpoch(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, g.ep.ctx.GroupID) {
		return ErrWrongGroup
	}
	if epoch != g.ep.ctx.Epoch {
		return wrapf(ErrWrongEpoch, "message for epoch %d, group at %d", epoch, g.ep.ctx.Epoch)
	}
	return nil
}

func (g *Group) processPublic(pm *message.PublicMessage) (*Processed, error) {
	if err := g.checkEpoch(pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, err
	}
	if g.status == statusRemoved {
		return nil, ErrInactive
	}
	c := &pm.Content
	pub, cred, err := g.senderKey(c)
	if err != nil {
		return nil, err
	}
	ac, err := g.ep.fr.UnprotectPublic(pm, pub)
	if err != nil {
		return nil, framingError(err)
	}
	return g.handleContent(ac, cred)
}

func (g *Group) processPrivate(pm *message.PrivateMessage) (*Processed, error) {
	if !bytes.Equal(pm.GroupID, g.ep.ctx.GroupID) {
		return nil, ErrWrongGroup
	}
	if pm.Epoch != g.ep.ctx.Epoch {
		return g.processPast(pm)
	}
	if g.status == statusRemoved && pm.ContentType != message.ContentApplication {
		return nil, ErrInactive
	}
	t, fr := g.tree, g.ep.fr
	ac, use, err := fr.OpenPrivate(pm, func(l treemath.LeafIndex) (message.SignaturePublicKey, error) {
		return memberKey(t, l)
	})
	if err != nil {
		return nil, framingError(err)
	}
	cred := credentialOfLeaf(t.Leaf(ac.Content.Sender.LeafIndex))
	p, err := g.handleContent(ac, cred)
	if err != nil {
		return nil, err
	}
	// The key belongs to the epoch the message was opened in, which a
	// commit has just made a past one (whose secrets may already be
	// erased when no grace period is kept).
	if err := fr.Consume(use); err != nil && p.Kind != KindCommit {
		return nil, wrapf(ErrReplay, "%v", err)
	}
	return p, nil
}

// processPast decrypts an application message of a previous epoch still in
// the grace period.
func (g *Group) processPast(pm *message.PrivateMessage) (*Processed, error) {
	for _, pe := range g.past {
		if pe.ep.ctx.Epoch != pm.Epoch {
			continue
		}
		if pm.ContentType != message.ContentApplication {
			return nil, wrapf(ErrWrongEpoch, "handshake message for past epoch %d", pm.Epoch)
		}
		t := pe.tree
		ac, use, err := pe.ep.fr.OpenPrivate(pm, func(l treemath.LeafIndex) (message.SignaturePublicKey, error) {
			return memberKey(t, l)
		})
		if err != nil {
			return nil, framingError(err)
		}
		if err := pe.ep.fr.Consume(use); err != nil {
			return nil, wrapf(ErrReplay, "%v", err)
		}
		return &Processed{
			Kind: KindApplication, Epoch: pm.Epoch, AuthenticatedData: ac.Content.AuthenticatedData,
			Application: ac.Content.ApplicationData,
			Sender:      Sender{Kind: SenderMember, Index: LeafIndex(ac.Content.Sender.LeafIndex), Credential: credentialOfLeaf(t.Leaf(ac.Content.Sender.LeafIndex))},
		}, nil
	}
	return nil, wrapf(ErrWrongEpoch, "message for epoch %d, group at %d", pm.Epoch, g.ep.ctx.Epoch)
}

func memberKey(t *tree.Tree, l treemath.LeafIndex) (message.SignaturePublicKey, error) {
	if uint64(l) >= uint64(t.LeafCount()) || t.Leaf(l) == nil {
		return nil, wrapf(ErrUnknownMember, "leaf %d", l)
	}
	return t.Leaf(l).SignatureKey, nil
}

// framingError maps framing errors to this package's sentinels.
func framingError(err error) error {
	switch {
	case errors.Is(err, ErrUnknownMember):
		return err
	case errors.Is(err, framing.ErrMembershipTag), errors.Is(err, framing.ErrConfirmationTag):
		return fmt.Errorf("%w: %w", ErrInvalidMAC, err)
	case errors.Is(err, framing.ErrInvalidMessage):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	case errors.Is(err, keyschedule.ErrInvalidState), errors.Is(err, keyschedule.ErrGenerationConsumed):
		// A generation already consumed (or erased as too old) is a replay
		// or a late duplicate, not a ciphertext that fails to decrypt.
		return fmt.Errorf("%w: %w", ErrReplay, err)
	}
	if isSignatureError(err) {
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	return fmt.Errorf("%w: %w", ErrDecrypt, err)
}

// senderKey returns the signature key and credential of a PublicMessage's
// sender.
func (g *Group) senderKey(c *message.FramedContent) (message.SignaturePublicKey, Credential, error) {
	switch c.Sender.Type {
	case message.SenderMember:
		k, err := memberKey(g.tree, c.Sender.LeafIndex)
		if err != nil {
			return nil, Credential{}, err
		}
		return k, credentialOfLeaf(g.tree.Leaf(c.Sender.LeafIndex)), nil
	case message.SenderExternal:
		es, err := externalSenders(g.ep.ctx.Extensions)
		if err != nil {
			return nil, Credential{}, err
		}
		if uint64(c.Sender.SenderIndex) >= uint64(len(es)) {
			return nil, Credential{}, wrapf(ErrUnknownMember, "external sender %d", c.Sender.SenderIndex)
		}
		s := es[c.Sender.SenderIndex]
		return s.SignatureKey, Credential{Identity: bytes.Clone(s.Credential.Identity)}, nil
	case message.SenderNewMemberProposal:
		if c.ContentType != message.ContentProposal || c.Proposal == nil || c.Proposal.Type != message.ProposalAdd || c.Proposal.Add == nil {
			return nil, Credential{}, wrapf(ErrInvalidProposal, "new member proposal that is not an Add")
		}
		l := &c.Proposal.Add.KeyPackage.LeafNode
		return l.SignatureKey, credentialOfLeaf(l), nil
	case message.SenderNewMemberCommit:
		if c.ContentType != message.ContentCommit || c.Commit == nil || c.Commit.Path == nil {
			return nil, Credential{}, wrapf(ErrInvalidCommit, "external commit without a path")
		}
		l := &c.Commit.Path.LeafNode
		return l.SignatureKey, credentialOfLeaf(l), nil
	}
	return nil, Credential{}, wrapf(ErrMalformed, "sender type %d", c.Sender.Type)
}

// handleContent acts on authenticated content of the current epoch.
func (g *Group) handleContent(ac *message.AuthenticatedContent, cred Credential) (*Processed, error) {
	c := &ac.Content
	p := &Processed{
		Epoch: c.Epoch, AuthenticatedData: c.AuthenticatedData,
		Sender: Sender{Kind: SenderKind(c.Sender.Type), Index: LeafIndex(c.Sender.LeafIndex), Credential: cred},
	}
	if c.Sender.Type == message.SenderExternal {
		p.Sender.Index = LeafIndex(c.Sender.SenderIndex)
	}
	if (c.ContentType == message.ContentProposal && c.Proposal == nil) || (c.ContentType == message.ContentCommit && c.Commit == nil) {
		return nil, wrapf(ErrMalformed, "empty content")
	}
	switch c.ContentType {
	case message.ContentApplication:
		if c.Sender.Type != message.SenderMember {
			return nil, wrapf(ErrMalformed, "application data from a non-member")
		}
		p.Kind = KindApplication
		p.Application = c.ApplicationData
		return p, nil
	case message.ContentProposal:
		if err := g.receiveProposal(ac); err != nil {
			return nil, err
		}
		p.Kind = KindProposal
		p.Proposal = proposalInfo(c.Proposal)
		return p, nil
	case message.ContentCommit:
		info, err := g.processCommit(ac)
		if err != nil {
			return nil, err
		}
		p.Kind = KindCommit
		p.Commit = info
		if c.Sender.Type == message.SenderNewMemberCommit {
			p.Sender.Index = LeafIndex(g.lastExternalJoiner)
		}
		return p, nil
	}
	return nil, wrapf(ErrMalformed, "content type %d", c.ContentType)
}

func proposalInfo(p *message.Proposal) *ProposalInfo {
	info := &ProposalInfo{Type: uint16(p.Type)}
	switch p.Type {
	case message.ProposalAdd:
		c := credentialOfLeaf(&p.Add.KeyPackage.LeafNode)
		info.Added = &c
	case message.ProposalRemove:
		info.Removed = LeafIndex(p.Remove.Removed)
	}
	return info
}

// receiveProposal validates a proposal and caches it for the next commit.
func (g *Group) receiveProposal(ac *message.AuthenticatedContent) error {
	if ac.Content.Sender.Type == message.SenderNewMemberCommit {
		return wrapf(ErrMalformed, "proposal from a new member commit sender")
	}
	if err := g.validateProposal(g, ac.Content.Proposal, ac.Content.Sender); err != nil {
		return err
	}
	ref, err := ac.ProposalRef(g.cs)
	if err != nil {
		return err
	}
	if g.findProposal(ref) != nil {
		return nil
	}
	if len(g.proposals) >= maxCachedProposals {
		return wrapf(ErrInvalidProposal, "too many proposals in this epoch")
	}
	g.proposals = append(g.proposals[:len(g.proposals):len(g.proposals)], cachedProposal{ref: ref, proposal: ac.Content.Proposal, sender: ac.Content.Sender})
	return nil
}

// processCommit applies a commit from another member or an external
// joiner (RFC 9420, Section 12.4.2). g changes only on success.
func (g *Group) processCommit(ac *message.AuthenticatedContent) (*CommitInfo, error) {
	c := &ac.Content
	commit := c.Commit
	sender := c.Sender
	external := sender.Type == message.SenderNewMemberCommit
	switch {
	case sender.Type == message.SenderMember:
		if sender.LeafIndex == g.self {
			return nil, wrapf(ErrInvalidCommit, "commit from our own leaf that is not our pending commit")
		}
	case external:
		if ac.WireFormat != message.WireFormatPublicMessage {
			return nil, wrapf(ErrInvalidCommit, "external commit not in a PublicMessage")
		}
	default:
		return nil, wrapf(ErrInvalidCommit, "commit from sender type %d", sender.Type)
	}
	props, err := g.resolveProposals(commit, sender)
	if err != nil {
		return nil, err
	}
	a, err := g.applyProposals(g, props, sender)
	if err != nil {
		return nil, err
	}
	if a.pathRequired && commit.Path == nil {
		return nil, wrapf(ErrInvalidCommit, "path required but missing")
	}
	info := &CommitInfo{Epoch: g.ep.ctx.Epoch + 1, ReInit: a.reinit != nil}
	for _, r := range a.removed {
		info.Removed = append(info.Removed, LeafIndex(r))
		if r == g.self {
			info.RemovedUs = true
		}
	}
	for _, u := range a.updated {
		info.Updated = append(info.Updated, LeafIndex(u))
	}
	for _, m := range a.added {
		info.Added = append(info.Added, memberOf(m.leaf, &m.kp.LeafNode))
	}
	if info.RemovedUs {
		// We cannot follow the group any further; keep this epoch for late
		// application messages.
		g.status = statusRemoved
		g.proposals = nil
		return info, nil
	}
	next := g.cloneForNext(a.tree)
	if slicesContains(a.updated, g.self) {
		if err := next.installUpdateKey(g); err != nil {
			return nil, err
		}
	}
	next.keys.Prune(next.tree)
	newCtx := *g.ep.ctx
	newCtx.Epoch++
	newCtx.Extensions = a.extensions
	var exclude []treemath.LeafIndex
	for _, m := range a.added {
		exclude = append(exclude, m.leaf)
	}
	var commitSecret []byte
	committer := sender.LeafIndex
	if commit.Path != nil {
		if external {
			committer, err = next.tree.FreeLeaf()
			if err != nil {
				return nil, wrapf(ErrInvalidCommit, "%v", err)
			}
		}
		if err := g.validateCommitLeaf(next.tree, &newCtx, &commit.Path.LeafNode, committer); err != nil {
			return nil, err
		}
		if err := next.tree.MergeUpdatePath(committer, commit.Path, exclude); err != nil {
			return nil, wrapf(ErrInvalidCommit, "update path: %v", err)
		}
		pctx := newCtx
		pctx.TreeHash = next.tree.TreeHash()
		pctxBytes, err := pctx.Bytes()
		if err != nil {
			return nil, err
		}
		commitSecret, err = next.tree.DecryptPath(next.keys, committer, commit.Path, exclude, pctxBytes)
		if err != nil {
			return nil, wrapf(ErrInvalidCommit, "failed to decrypt path: %v", err)
		}
		defer clear(commitSecret)
	}
	newCtx.TreeHash = next.tree.TreeHash()
	psks, err := g.pskSecrets(a.psks, nil)
	if err != nil {
		return nil, err
	}
	pskSecret, err := keyschedule.CombinePSKs(g.cs, psks)
	if err != nil {
		return nil, err
	}
	init := g.ep.secrets.Init
	if external {
		priv, _, err := g.ep.secrets.ExternalKeyPair()
		if err != nil {
			return nil, err
		}
		init, err = keyschedule.ExternalInitReceive(g.cs, priv, a.externalInit.KEMOutput)
		clear(priv)
		if err != nil {
			return nil, wrapf(ErrInvalidCommit, "external init: %v", err)
		}
	}
	joiner, err := next.enterEpoch(&newCtx, ac, g.ep, init, commitSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	clear(joiner)
	if err := framing.VerifyConfirmationTag(g.cs, next.ep.secrets.Confirmation, newCtx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag); err != nil {
		next.ep.erase()
		return nil, fmt.Errorf("%w: %w", ErrInvalidMAC, err)
	}
	if err := next.finishEpoch(ac.Auth.ConfirmationTag); err != nil {
		return nil, err
	}
	next.afterCommit(a)
	next.lastExternalJoiner = committer
	g.mergeNext(next)
	return info, nil
}

// validateCommitLeaf validates the leaf node of a commit's path taking leaf
// index at (RFC 9420, Section 12.4.2).
func (g *Group) validateCommitLeaf(t *tree.Tree, ctx *message.GroupContext, leaf *message.LeafNode, at treemath.LeafIndex) error {
	if err := validateLeafAlone(g.cfg, g.cs, leaf, message.SourceCommit, ctx.GroupID, at, false); err != nil {
		return err
	}
	old := t.Leaf(at)
	if old != nil && bytes.Equal(old.SignatureKey, leaf.SignatureKey) && old.Credential.Type == leaf.Credential.Type &&
		slices.Equal(old.Capabilities.Credentials, leaf.Capabilities.Credentials) {
		// Only what can have changed is checked; the encryption keys of
		// the path are checked against the tree when it is merged.
		if bytes.Equal(old.EncryptionKey, leaf.EncryptionKey) {
			return wrapf(ErrInvalidLeafNode, "encryption key not changed")
		}
		if err := checkRequiredCapabilities(ctx.Extensions, &leaf.Capabilities); err != nil {
			return err
		}
		for _, e := range ctx.Extensions {
			if !leaf.Capabilities.SupportsExtension(e.Type) {
				return wrapf(ErrInvalidLeafNode, "group extension 0x%04x not supported", uint16(e.Type))
			}
		}
		return nil
	}
	idx := newMemberIndex(t, 1)
	return idx.check(ctx, ctx.Extensions, leaf, int64(at))
}

// installUpdateKey sets our leaf private key after a commit applied our own
// Update proposal.
func (n *Group) installUpdateKey(g *Group) error {
	leaf := n.tree.Leaf(g.self)
	for _, u := range g.updateKeys {
		if bytes.Equal(u.pub, leaf.EncryptionKey) {
			return n.keys.SetLeafKey(u.priv)
		}
	}
	return wrapf(ErrInvalidCommit, "commit applies an Update of ours we do not know")
}

func isSignatureError(err error) bool { return errors.Is(err, suite.ErrInvalidSignature) }

func slicesContains(s []treemath.LeafIndex, x treemath.LeafIndex) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
