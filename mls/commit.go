package mls

import (
	"bytes"
	"fmt"

	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// CommitOptions tune [Group.Commit].
type CommitOptions struct {
	// ForcePath includes an UpdatePath even when the proposals do not
	// require one (it refreshes our keys: post-compromise security).
	ForcePath bool
	// InlineTree puts the ratchet tree in the Welcome's GroupInfo, so that
	// new members need not fetch it.
	InlineTree bool
	// ExternalPub adds the external_pub extension to the returned
	// GroupInfo so that others can join by external commit.
	ExternalPub bool
	// AuthenticatedData is sent in the clear with the commit.
	AuthenticatedData []byte
	// Add and Remove are proposals of ours included by value, in
	// addition to the proposals cached in this epoch.
	Add    []*KeyPackage
	Remove []LeafIndex
	// ExternalPSKs and ResumptionPSKs inject pre-shared keys by value:
	// external ones by id (Config.PSK must know them), resumption ones by
	// the epoch of this group whose resumption secret to use.
	ExternalPSKs   [][]byte
	ResumptionPSKs []uint64
	// Extensions, if set, replaces the group context extensions (a
	// GroupContextExtensions proposal by value).
	Extensions *GroupOptions
	// ReInit, if set, commits a ReInit proposal by value, closing the
	// group (see [Group.ReInit]). A ReInit must be committed alone.
	ReInit *ReInit
}

// CommitResult is what [Group.Commit] produces.
type CommitResult struct {
	// Commit is the MLSMessage to send to the group.
	Commit []byte
	// Welcome is the MLSMessage for the members the commit adds, or nil.
	Welcome []byte
	// GroupInfo describes the new epoch (signed by us), for the delivery
	// service or for external joiners.
	GroupInfo []byte
}

// pendingCommit is a commit we made whose new epoch waits for
// MergePendingCommit.
type pendingCommit struct {
	message []byte
	next    *Group
}

// Commit commits the proposals received or sent in this epoch (and proposals
// given by value in extra), producing the commit message, a Welcome for new
// members and the new epoch's GroupInfo. The new epoch is not entered until
// [Group.MergePendingCommit]; until then the group stays in the current
// epoch and rejects another Commit.
func (g *Group) Commit(opts *CommitOptions) (*CommitResult, error) {
	var byValue []*message.Proposal
	if opts != nil {
		for _, kp := range opts.Add {
			if err := checkLifetime(g.cfg, kp.kp); err != nil {
				return nil, err
			}
			byValue = append(byValue, &message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *kp.kp}})
		}
		for _, r := range opts.Remove {
			byValue = append(byValue, &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: treemath.LeafIndex(r)}})
		}
		for _, id := range opts.ExternalPSKs {
			p, err := g.pskProposal(message.PreSharedKeyID{Type: message.PSKExternal, PSKID: bytes.Clone(id)})
			if err != nil {
				return nil, err
			}
			byValue = append(byValue, p)
		}
		for _, e := range opts.ResumptionPSKs {
			p, err := g.pskProposal(message.PreSharedKeyID{Type: message.PSKResumption, Usage: message.ResumptionApplication,
				PSKGroupID: bytes.Clone(g.ep.ctx.GroupID), PSKEpoch: e})
			if err != nil {
				return nil, err
			}
			byValue = append(byValue, p)
		}
		if opts.Extensions != nil {
			exts, err := groupExtensions(opts.Extensions)
			if err != nil {
				return nil, err
			}
			byValue = append(byValue, &message.Proposal{Type: message.ProposalGroupContextExtensions,
				GroupContextExtensions: &message.GroupContextExtensions{Extensions: exts}})
		}
		if opts.ReInit != nil {
			p, err := opts.ReInit.proposal()
			if err != nil {
				return nil, err
			}
			byValue = append(byValue, p)
		}
	}
	return g.commit(opts, byValue)
}

func (g *Group) commit(opts *CommitOptions, byValue []*message.Proposal) (*CommitResult, error) {
	if opts == nil {
		opts = &CommitOptions{}
	}
	if g.status != statusActive {
		return nil, ErrInactive
	}
	if g.pending != nil {
		return nil, wrapf(ErrPendingCommit, "a commit is already pending")
	}
	me := message.Sender{Type: message.SenderMember, LeafIndex: g.self}
	var (
		refs  []message.ProposalOrRef
		props []resolvedProposal
	)
	for _, cp := range g.selectProposals() {
		refs = append(refs, message.ProposalOrRef{Type: message.ProposalOrRefReference, Reference: cp.ref})
		props = append(props, resolvedProposal{proposal: cp.proposal, sender: cp.sender, ref: cp.ref})
	}
	for _, p := range byValue {
		refs = append(refs, message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: p})
		props = append(props, resolvedProposal{proposal: p, sender: me})
	}
	a, err := g.applyProposals(g, props, me)
	if err != nil {
		return nil, err
	}
	commit := &message.Commit{Proposals: refs}
	next := g.cloneForNext(a.tree)
	newCtx := *g.ep.ctx
	newCtx.Epoch++
	newCtx.Extensions = a.extensions
	var exclude []treemath.LeafIndex
	for _, m := range a.added {
		exclude = append(exclude, m.leaf)
	}
	var (
		commitSecret []byte
		path         *tree.PathResult
	)
	if a.pathRequired || opts.ForcePath {
		old := g.tree.Leaf(g.self)
		tmpl := *old
		tmpl.Lifetime = message.Lifetime{}
		path, err = next.tree.GenerateUpdatePath(g.self, tree.PathParams{
			Rand: g.cfg.rand(), Signer: g.signer.s, GroupID: g.ep.ctx.GroupID, Leaf: &tmpl, Exclude: exclude,
			GroupContext: func(treeHash []byte) ([]byte, error) {
				c := newCtx
				c.TreeHash = treeHash
				return c.Bytes()
			},
		})
		if err != nil {
			return nil, fmt.Errorf("failed to generate update path: %w", err)
		}
		defer path.Destroy()
		commit.Path = path.Path
		commitSecret = path.CommitSecret
		next.keys.Destroy()
		next.keys = path.Keys
	} else {
		next.keys.Prune(next.tree)
	}
	newCtx.TreeHash = next.tree.TreeHash()

	psks, err := g.pskSecrets(a.psks, []*Group{g.resumeFrom})
	if err != nil {
		return nil, err
	}
	pskSecret, err := keyschedule.CombinePSKs(g.cs, psks)
	if err != nil {
		return nil, err
	}
	wf := message.WireFormatPublicMessage
	if g.cfg.EncryptHandshake {
		wf = message.WireFormatPrivateMessage
	}
	ac, err := g.ep.fr.Sign(g.signer.s, wf, &message.FramedContent{
		GroupID: g.ep.ctx.GroupID, Epoch: g.ep.ctx.Epoch, Sender: me,
		AuthenticatedData: bytes.Clone(opts.AuthenticatedData),
		ContentType:       message.ContentCommit, Commit: commit,
	})
	if err != nil {
		return nil, err
	}
	joiner, err := next.enterEpoch(&newCtx, ac, g.ep, g.ep.secrets.Init, commitSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer clear(joiner)
	ac.Auth.ConfirmationTag = next.confirmationTag()
	if err := next.finishEpoch(ac.Auth.ConfirmationTag); err != nil {
		return nil, err
	}
	msg, err := g.protect(ac)
	if err != nil {
		return nil, err
	}
	next.afterCommit(a)
	res := &CommitResult{Commit: msg}
	gi, err := next.groupInfo(ac.Auth.ConfirmationTag, opts.ExternalPub, false)
	if err != nil {
		return nil, err
	}
	if res.GroupInfo, err = message.NewGroupInfo(gi).Bytes(); err != nil {
		return nil, err
	}
	if len(a.added) > 0 {
		w, err := next.welcome(ac.Auth.ConfirmationTag, opts.InlineTree, joiner, pskSecret, a, path)
		if err != nil {
			return nil, err
		}
		res.Welcome = w
	}
	g.pending = &pendingCommit{message: msg, next: next}
	return res, nil
}

// cloneForNext returns a copy of the group to become the next epoch: the
// tree t (already a copy), a copy of our private keys, no proposals.
func (g *Group) cloneForNext(t *tree.Tree) *Group {
	n := &Group{
		cfg: g.cfg, signer: g.signer, cs: g.cs, tree: t, keys: g.keys.Clone(), self: g.self,
		past: g.past, resumption: g.resumption, status: g.status,
	}
	return n
}

// enterEpoch runs the key schedule of the epoch a commit ac starts, from the
// previous epoch prev: it updates the confirmed transcript hash in ctx and
// sets n.ep. The confirmation tag is checked or computed by the caller, and
// finishEpoch completes the epoch. It returns the joiner secret.
func (n *Group) enterEpoch(ctx *message.GroupContext, ac *message.AuthenticatedContent, prev *epoch, init, commitSecret []byte, psk keyschedule.PSKSecret) (keyschedule.JoinerSecret, error) {
	confirmed, err := framing.ConfirmedTranscriptHash(n.cs, prev.interim, ac)
	if err != nil {
		return nil, err
	}
	ctx.ConfirmedTranscriptHash = confirmed
	ctxBytes, err := ctx.Bytes()
	if err != nil {
		return nil, err
	}
	joiner, secrets, err := keyschedule.NewEpoch(n.cs, init, commitSecret, psk, ctxBytes)
	if err != nil {
		return nil, err
	}
	ep, err := n.newEpoch(ctx, secrets, n.tree.LeafCount(), nil)
	if err != nil {
		clear(joiner)
		return nil, err
	}
	n.ep = ep
	return joiner, nil
}

// confirmationTag computes the confirmation tag of the current epoch.
func (n *Group) confirmationTag() []byte {
	return framing.ConfirmationTag(n.cs, n.ep.secrets.Confirmation, n.ep.ctx.ConfirmedTranscriptHash)
}

// finishEpoch sets the interim transcript hash from the confirmation tag.
func (n *Group) finishEpoch(tag []byte) error {
	interim, err := framing.InterimTranscriptHash(n.cs, n.ep.ctx.ConfirmedTranscriptHash, tag)
	if err != nil {
		return err
	}
	n.ep.interim = interim
	return nil
}

// afterCommit records what a commit did to the group's status.
func (n *Group) afterCommit(a *applied) {
	if a.reinit != nil {
		n.status = statusReInit
		n.reinit = a.reinit
	}
}

// protect encodes signed content as an MLSMessage in the current epoch,
// PublicMessage or PrivateMessage as ac's wire format says.
func (g *Group) protect(ac *message.AuthenticatedContent) ([]byte, error) {
	var m *message.MLSMessage
	switch ac.WireFormat {
	case message.WireFormatPublicMessage:
		pm, err := g.ep.fr.ProtectPublic(ac)
		if err != nil {
			return nil, err
		}
		m = message.NewPublicMessage(pm)
	default:
		pm, err := g.ep.fr.ProtectPrivate(g.cfg.rand(), ac)
		if err != nil {
			return nil, err
		}
		m = message.NewPrivateMessage(pm)
	}
	return m.Bytes()
}

// MergePendingCommit enters the epoch of our pending commit, once the
// delivery service accepted it.
func (g *Group) MergePendingCommit() error {
	if g.pending == nil {
		return wrapf(ErrPendingCommit, "no commit pending")
	}
	g.mergeNext(g.pending.next)
	return nil
}

// ClearPendingCommit discards our pending commit; the group stays in the
// current epoch.
func (g *Group) ClearPendingCommit() {
	if g.pending == nil {
		return
	}
	g.pending.next.destroy()
	g.pending = nil
}

// destroy zeroes the private keys and current epoch secrets of a state
// that will not be used.
func (n *Group) destroy() {
	n.keys.Destroy()
	n.ep.erase()
}

// mergeNext replaces the group's state by next, keeping the current epoch
// for late messages.
func (g *Group) mergeNext(next *Group) {
	past := append([]*pastEpoch(nil), g.past...)
	past = append(past, &pastEpoch{ep: g.ep, tree: g.tree})
	for len(past) > g.cfg.epochGrace() {
		past[0].ep.erase()
		past = past[1:]
	}
	next.past = past
	if g.pending != nil && g.pending.next != next {
		// Another member's commit won: ours is void.
		g.pending.next.destroy()
	}
	g.keys.Destroy()
	for _, u := range g.updateKeys {
		clear(u.priv)
	}
	*g = *next
	g.pending = nil
	g.rememberResumption()
}

// erase zeroes the epoch's secrets.
func (e *epoch) erase() {
	e.secrets.Erase()
	e.stree.Erase()
}
