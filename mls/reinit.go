package mls

import (
	"bytes"

	"github.com/parley-im/parley/mls/internal/message"
)

// ResumeOptions tune [Group.Branch] and [Group.ReInit].
type ResumeOptions struct {
	// Extensions sets a branch's group context extensions; nil copies the
	// current ones. A reinitialised group takes those of the ReInit
	// proposal, so ReInit refuses this field.
	Extensions *GroupOptions
	// ForcePath includes an UpdatePath in the new group's first commit.
	ForcePath bool
	// ExternalTree leaves the ratchet tree out of the Welcome; joiners
	// then need the new group's [Group.RatchetTree] in
	// JoinOptions.RatchetTree.
	ExternalTree bool
}

// ReInit completes a reinitialisation (RFC 9420, Section 11.2) after a
// commit with a ReInit proposal was merged or processed: it creates the new
// group the proposal describes ([Group.ReInitParams]), with us as its
// creator, and adds the members whose key packages are given (fetched for
// the new cipher suite). cfg and signer are for the new group's cipher
// suite; opts may be nil. It returns the new group, already in epoch 1, and
// the Welcome for the others, who join it with [Join] passing this group
// in JoinOptions.Resume.
func (g *Group) ReInit(cfg *Config, signer *Signer, kps []*KeyPackage, opts *ResumeOptions) (*Group, []byte, error) {
	if g.status != statusReInit || g.reinit == nil {
		return nil, nil, wrapf(ErrInactive, "the group was not reinitialised")
	}
	if opts == nil {
		opts = &ResumeOptions{}
	}
	if opts.Extensions != nil {
		return nil, nil, wrapf(ErrInvalidProposal, "a reinitialised group takes the ReInit proposal's extensions")
	}
	ri := g.reinit
	if cfg.Suite != CipherSuite(ri.CipherSuite) {
		return nil, nil, wrapf(ErrUnsupported, "config suite 0x%04x, ReInit suite 0x%04x", uint16(cfg.Suite), uint16(ri.CipherSuite))
	}
	return g.resume(cfg, signer, GroupID(ri.GroupID), ri.Extensions, kps, message.ResumptionReInit, opts)
}

// Branch starts a subgroup (RFC 9420, Section 11.3) with a new group id
// and the members of this group whose key packages are given, tied to this
// group's current epoch by a resumption PSK; opts may be nil. It returns
// the new group and the Welcome for the others, who join with [Join]
// passing this group in JoinOptions.Resume.
func (g *Group) Branch(id GroupID, kps []*KeyPackage, opts *ResumeOptions) (*Group, []byte, error) {
	if g.status != statusActive {
		return nil, nil, ErrInactive
	}
	if opts == nil {
		opts = &ResumeOptions{}
	}
	for _, kp := range kps {
		if _, ok := g.tree.FindLeaf(func(l *message.LeafNode) bool { return l.Credential.Equal(&kp.kp.LeafNode.Credential) }); !ok {
			return nil, nil, wrapf(ErrUnknownMember, "branch member is not in the group")
		}
	}
	exts := g.ep.ctx.Extensions
	if opts.Extensions != nil {
		var err error
		if exts, err = groupExtensions(opts.Extensions); err != nil {
			return nil, nil, err
		}
	}
	return g.resume(g.cfg, g.signer, id, exts, kps, message.ResumptionBranch, opts)
}

// resume creates a group resumed from g with the given usage.
func (g *Group) resume(cfg *Config, signer *Signer, id GroupID, exts message.Extensions, kps []*KeyPackage, usage message.ResumptionPSKUsage, opts *ResumeOptions) (*Group, []byte, error) {
	cred := credentialOfLeaf(g.tree.Leaf(g.self))
	n, err := Create(cfg, id, cred, signer, &GroupOptions{Extensions: publicExtensions(exts)})
	if err != nil {
		return nil, nil, err
	}
	pid, err := n.newPSKID(message.PreSharedKeyID{
		Type: message.PSKResumption, Usage: usage, PSKGroupID: bytes.Clone(g.ep.ctx.GroupID), PSKEpoch: g.ep.ctx.Epoch,
	})
	if err != nil {
		return nil, nil, err
	}
	props := []*message.Proposal{{Type: message.ProposalPSK, PreSharedKey: &message.PreSharedKey{PSK: *pid}}}
	for _, kp := range kps {
		props = append(props, &message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *kp.kp}})
	}
	n.resumeFrom = g
	res, err := n.commit(&CommitOptions{InlineTree: !opts.ExternalTree, ForcePath: opts.ForcePath}, props)
	n.resumeFrom = nil
	if err != nil {
		return nil, nil, err
	}
	if err := n.MergePendingCommit(); err != nil {
		return nil, nil, err
	}
	return n, res.Welcome, nil
}
