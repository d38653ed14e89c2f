package mls

import (
	"bytes"

	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// ExternalJoinOptions are the optional inputs of [JoinExternal].
type ExternalJoinOptions struct {
	// RatchetTree is the group's tree, needed when the GroupInfo does not
	// carry it.
	RatchetTree []byte
	// Replace, if set, removes our own previous leaf (resynchronising
	// after losing state).
	Replace *LeafIndex
	// AuthenticatedData is sent in the clear with the commit.
	AuthenticatedData []byte
	// PSKs are ids of external pre-shared keys (which Config.PSK must
	// know) to inject into the new epoch.
	PSKs [][]byte
}

// JoinExternal joins a group by itself with an external commit (RFC 9420,
// Section 12.4.3.2), using a GroupInfo that carries the external_pub
// extension (see [Group.GroupInfo]). It returns the group, already in the
// new epoch, and the commit to send to the group; if the delivery service
// rejects the commit, discard the group.
func JoinExternal(cfg *Config, groupInfo []byte, cred Credential, signer *Signer, opts *ExternalJoinOptions) (*Group, []byte, error) {
	if opts == nil {
		opts = &ExternalJoinOptions{}
	}
	m, err := message.DecodeMLSMessage(groupInfo)
	if err != nil {
		return nil, nil, wrapf(ErrMalformed, "group info: %v", err)
	}
	if m.WireFormat != message.WireFormatGroupInfo || m.GroupInfo == nil {
		return nil, nil, wrapf(ErrMalformed, "not a group info but wire format %d", m.WireFormat)
	}
	gi := m.GroupInfo
	cs, err := suite.Get(gi.GroupContext.CipherSuite)
	if err != nil || gi.GroupContext.Version != message.MLS10 {
		return nil, nil, wrapf(ErrUnsupported, "group suite 0x%04x version %d", uint16(gi.GroupContext.CipherSuite), gi.GroupContext.Version)
	}
	if signer.suite != CipherSuite(cs.ID()) {
		return nil, nil, wrapf(ErrUnsupported, "signer suite differs from the group's")
	}
	if err := cfg.validateCredential(cred); err != nil {
		return nil, nil, err
	}
	g := &Group{cfg: cfg, signer: signer, cs: cs}
	t, err := g.receivedTree(gi, opts.RatchetTree)
	if err != nil {
		return nil, nil, err
	}
	if err := g.verifyGroupInfo(gi, t); err != nil {
		return nil, nil, err
	}
	var xp message.ExternalPub
	found, err := message.DecodeExtension(gi.Extensions, message.ExtensionExternalPub, &xp)
	if err != nil || !found {
		return nil, nil, wrapf(ErrInvalidGroupInfo, "no usable external_pub extension")
	}
	kemOutput, init, err := keyschedule.ExternalInitSend(cs, xp.PublicKey)
	if err != nil {
		return nil, nil, wrapf(ErrInvalidGroupInfo, "external init: %v", err)
	}
	defer clear(init)
	ctx := gi.GroupContext
	interim, err := framing.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	fr, err := framing.NewEpoch(cs, &ctx, framing.Keys{PaddingBlock: 1})
	if err != nil {
		return nil, nil, err
	}
	g.tree = t
	g.ep = &epoch{ctx: &ctx, fr: fr, interim: interim}

	me := message.Sender{Type: message.SenderNewMemberCommit}
	props := []*message.Proposal{{Type: message.ProposalExternalInit, ExternalInit: &message.ExternalInit{KEMOutput: kemOutput}}}
	if opts.Replace != nil {
		props = append(props, &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: treemath.LeafIndex(*opts.Replace)}})
	}
	for _, id := range opts.PSKs {
		p, err := g.pskProposal(message.PreSharedKeyID{Type: message.PSKExternal, PSKID: bytes.Clone(id)})
		if err != nil {
			return nil, nil, err
		}
		props = append(props, p)
	}
	var (
		refs     []message.ProposalOrRef
		resolved []resolvedProposal
	)
	for _, p := range props {
		refs = append(refs, message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: p})
		resolved = append(resolved, resolvedProposal{proposal: p, sender: me})
	}
	a, err := g.applyProposals(g, resolved, me)
	if err != nil {
		return nil, nil, err
	}
	at, err := a.tree.FreeLeaf()
	if err != nil {
		return nil, nil, wrapf(ErrInvalidTree, "%v", err)
	}
	leaf := &message.LeafNode{
		SignatureKey: signer.s.Public(),
		Credential:   message.NewBasicCredential(bytes.Clone(cred.Identity)),
		Capabilities: defaultCapabilities(signer.suite),
	}
	newCtx := ctx
	newCtx.Epoch++
	newCtx.Extensions = a.extensions
	path, err := a.tree.GenerateUpdatePath(at, tree.PathParams{
		Rand: cfg.rand(), Signer: signer.s, GroupID: ctx.GroupID, Leaf: leaf,
		GroupContext: func(treeHash []byte) ([]byte, error) {
			c := newCtx
			c.TreeHash = treeHash
			return c.Bytes()
		},
	})
	if err != nil {
		return nil, nil, err
	}
	defer path.Destroy()
	if err := newMemberIndex(t, 1).check(&newCtx, newCtx.Extensions, a.tree.Leaf(at), -1); err != nil {
		return nil, nil, err
	}
	newCtx.TreeHash = a.tree.TreeHash()
	commit := &message.Commit{Proposals: refs, Path: path.Path}
	ac, err := fr.Sign(signer.s, message.WireFormatPublicMessage, &message.FramedContent{
		GroupID: ctx.GroupID, Epoch: ctx.Epoch, Sender: me,
		AuthenticatedData: bytes.Clone(opts.AuthenticatedData), ContentType: message.ContentCommit, Commit: commit,
	})
	if err != nil {
		return nil, nil, err
	}
	next := &Group{cfg: cfg, signer: signer, cs: cs, tree: a.tree, keys: path.Keys, self: at}
	psks, err := g.pskSecrets(a.psks, nil)
	if err != nil {
		return nil, nil, err
	}
	pskSecret, err := keyschedule.CombinePSKs(cs, psks)
	if err != nil {
		return nil, nil, err
	}
	joiner, err := next.enterEpoch(&newCtx, ac, g.ep, init, path.CommitSecret, pskSecret)
	if err != nil {
		return nil, nil, err
	}
	clear(joiner)
	ac.Auth.ConfirmationTag = next.confirmationTag()
	if err := next.finishEpoch(ac.Auth.ConfirmationTag); err != nil {
		return nil, nil, err
	}
	pm, err := fr.ProtectPublic(ac)
	if err != nil {
		return nil, nil, err
	}
	msg, err := message.NewPublicMessage(pm).Bytes()
	if err != nil {
		return nil, nil, err
	}
	next.rememberResumption()
	return next, msg, nil
}
