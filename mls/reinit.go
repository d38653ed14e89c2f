package mls

import (
	"bytes"

	"github.com/parley-im/parley/mls/internal/message"
)

// ReInit completes a reinitialisation (RFC 9420, Section 11.2) after a
// commit with a ReInit proposal was merged or processed: it creates the new
// group the proposal describes, with us as its creator, and adds the
// members whose key packages are given (fetched for the new cipher suite).
// cfg and signer are for the new group's cipher suite. It returns the new
// group, already in epoch 1, and the Welcome for the others, who join it
// with [Join] passing this group in JoinOptions.Resume.
func (g *Group) ReInit(cfg *Config, signer *Signer, kps []*KeyPackage) (*Group, []byte, error) {
	if g.status != statusReInit || g.reinit == nil {
		return nil, nil, wrapf(ErrInactive, "the group was not reinitialised")
	}
	ri := g.reinit
	if cfg.Suite != CipherSuite(ri.CipherSuite) {
		return nil, nil, wrapf(ErrUnsupported, "config suite 0x%04x, ReInit suite 0x%04x", uint16(cfg.Suite), uint16(ri.CipherSuite))
	}
	return g.resume(cfg, signer, GroupID(ri.GroupID), ri.Extensions, kps, message.ResumptionReInit)
}

// Branch starts a subgroup (RFC 9420, Section 11.3) with a new group id
// and the members of this group whose key packages are given, tied to this
// group's current epoch by a resumption PSK. It returns the new group and
// the Welcome for the others, who join with [Join] passing this group in
// JoinOptions.Resume.
func (g *Group) Branch(id GroupID, kps []*KeyPackage) (*Group, []byte, error) {
	if g.status != statusActive {
		return nil, nil, ErrInactive
	}
	for _, kp := range kps {
		if _, ok := g.tree.FindLeaf(func(l *message.LeafNode) bool { return l.Credential.Equal(&kp.kp.LeafNode.Credential) }); !ok {
			return nil, nil, wrapf(ErrUnknownMember, "branch member is not in the group")
		}
	}
	return g.resume(g.cfg, g.signer, id, g.ep.ctx.Extensions, kps, message.ResumptionBranch)
}

// resume creates a group resumed from g with the given usage.
func (g *Group) resume(cfg *Config, signer *Signer, id GroupID, exts message.Extensions, kps []*KeyPackage, usage message.ResumptionPSKUsage) (*Group, []byte, error) {
	cred := credentialOfLeaf(g.tree.Leaf(g.self))
	n, err := createWithExtensions(cfg, id, cred, signer, exts)
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
	res, err := n.commit(&CommitOptions{InlineTree: true}, props)
	n.resumeFrom = nil
	if err != nil {
		return nil, nil, err
	}
	if err := n.MergePendingCommit(); err != nil {
		return nil, nil, err
	}
	return n, res.Welcome, nil
}

// createWithExtensions is Create with raw group context extensions.
func createWithExtensions(cfg *Config, id GroupID, cred Credential, signer *Signer, exts message.Extensions) (*Group, error) {
	opts := &GroupOptions{}
	es, err := externalSenders(exts)
	if err != nil {
		return nil, err
	}
	for _, s := range es {
		opts.ExternalSenders = append(opts.ExternalSenders, ExternalSender{SignatureKey: SignaturePublicKey(s.SignatureKey), Credential: Credential{Identity: s.Credential.Identity}})
	}
	var rc message.RequiredCapabilities
	if found, err := message.DecodeExtension(exts, message.ExtensionRequiredCapabilities, &rc); err != nil {
		return nil, wrapf(ErrMalformed, "required_capabilities: %v", err)
	} else if found {
		for _, t := range rc.Extensions {
			opts.RequiredExtensions = append(opts.RequiredExtensions, uint16(t))
		}
		for _, t := range rc.Proposals {
			opts.RequiredProposals = append(opts.RequiredProposals, uint16(t))
		}
	}
	return Create(cfg, id, cred, signer, opts)
}
