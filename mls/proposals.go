package mls

import (
	"bytes"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// maxCachedProposals bounds the proposals a group keeps in one epoch, so
// that a peer cannot make it store without limit.
const maxCachedProposals = 10000

// cachedProposal is a proposal received (or sent) in the current epoch,
// kept for commits that refer to it.
type cachedProposal struct {
	ref      message.ProposalRef
	proposal *message.Proposal
	sender   message.Sender
	// raw is the message we sent, for our own proposals.
	raw []byte
}

// resolvedProposal is one entry of a commit's proposal list with its sender.
type resolvedProposal struct {
	proposal *message.Proposal
	sender   message.Sender
	ref      message.ProposalRef // nil when sent by value
}

// findProposal returns the cached proposal with reference ref.
func (s *Group) findProposal(ref message.ProposalRef) *cachedProposal {
	for i := range s.proposals {
		if bytes.Equal(s.proposals[i].ref, ref) {
			return &s.proposals[i]
		}
	}
	return nil
}

// selectProposals picks, from the proposals cached in this epoch, a list
// the committer can commit (RFC 9420, Section 12.2): proposals that became
// invalid are dropped, a Remove wins over Updates of the same leaf, the
// most recent Update of a leaf wins, repeated Removes, PSKs and Adds of the
// same client are dropped, only the last GroupContextExtensions is kept,
// and a ReInit is kept only when nothing else is pending. Our own Updates
// are left out: the commit's path replaces them.
func (g *Group) selectProposals() []cachedProposal {
	var (
		valid     []cachedProposal
		removed   = map[treemath.LeafIndex]bool{}
		lastUpd   = map[treemath.LeafIndex]int{}
		lastGCE   = -1
		hasOther  bool
		seenPSK   = map[string]bool{}
		seenAddSK = map[string]bool{}
	)
	for _, cp := range g.proposals {
		p := cp.proposal
		if p.Type == message.ProposalUpdate && cp.sender.Type == message.SenderMember && cp.sender.LeafIndex == g.self {
			continue
		}
		if g.validateProposal(g, p, cp.sender) != nil {
			continue
		}
		if p.Type == message.ProposalRemove {
			if removed[p.Remove.Removed] || p.Remove.Removed == g.self {
				continue
			}
			removed[p.Remove.Removed] = true
		}
		valid = append(valid, cp)
	}
	for i, cp := range valid {
		switch cp.proposal.Type {
		case message.ProposalUpdate:
			lastUpd[cp.sender.LeafIndex] = i
		case message.ProposalGroupContextExtensions:
			lastGCE = i
		}
		if cp.proposal.Type != message.ProposalReInit {
			hasOther = true
		}
	}
	var out []cachedProposal
	reinit := false
	for i, cp := range valid {
		p := cp.proposal
		switch p.Type {
		case message.ProposalUpdate:
			if removed[cp.sender.LeafIndex] || lastUpd[cp.sender.LeafIndex] != i {
				continue
			}
		case message.ProposalGroupContextExtensions:
			if i != lastGCE {
				continue
			}
		case message.ProposalPSK:
			id, err := p.PreSharedKey.PSK.Bytes()
			if err != nil || seenPSK[string(id)] {
				continue
			}
			seenPSK[string(id)] = true
		case message.ProposalAdd:
			sk := string(p.Add.KeyPackage.LeafNode.SignatureKey)
			if seenAddSK[sk] {
				continue
			}
			seenAddSK[sk] = true
		case message.ProposalReInit:
			if hasOther || reinit {
				continue
			}
			reinit = true
		}
		out = append(out, cp)
	}
	return out
}

// resolveProposals turns a commit's proposal list into proposals with
// senders, looking references up in the cache.
func (s *Group) resolveProposals(c *message.Commit, committer message.Sender) ([]resolvedProposal, error) {
	out := make([]resolvedProposal, 0, len(c.Proposals))
	for i := range c.Proposals {
		por := &c.Proposals[i]
		switch por.Type {
		case message.ProposalOrRefProposal:
			out = append(out, resolvedProposal{proposal: por.Proposal, sender: committer})
		case message.ProposalOrRefReference:
			if committer.Type == message.SenderNewMemberCommit {
				return nil, wrapf(ErrInvalidProposalList, "external commit refers to a proposal by reference")
			}
			cp := s.findProposal(por.Reference)
			if cp == nil {
				return nil, wrapf(ErrUnknownProposal, "%x", []byte(por.Reference))
			}
			out = append(out, resolvedProposal{proposal: cp.proposal, sender: cp.sender, ref: cp.ref})
		default:
			return nil, wrapf(ErrMalformed, "proposal-or-ref type %d", por.Type)
		}
	}
	return out, nil
}

// externalSenders returns the group's external_senders extension.
func externalSenders(exts message.Extensions) (message.ExternalSenders, error) {
	var es message.ExternalSenders
	if _, err := message.DecodeExtension(exts, message.ExtensionExternalSenders, &es); err != nil {
		return nil, wrapf(ErrMalformed, "external_senders: %v", err)
	}
	return es, nil
}

// validateProposal checks one proposal on its own against the current
// state (RFC 9420, Section 12.1): what its sender may propose and whether
// its content is valid.
func (g *Group) validateProposal(s *Group, p *message.Proposal, sender message.Sender) error {
	switch sender.Type {
	case message.SenderMember:
		if s.tree.Leaf(sender.LeafIndex) == nil {
			return wrapf(ErrUnknownMember, "proposal sender %d", sender.LeafIndex)
		}
		if p.Type == message.ProposalExternalInit {
			return wrapf(ErrInvalidProposal, "ExternalInit from a member")
		}
	case message.SenderExternal:
		switch p.Type {
		case message.ProposalAdd, message.ProposalRemove, message.ProposalPSK, message.ProposalReInit, message.ProposalGroupContextExtensions:
		default:
			return wrapf(ErrInvalidProposal, "proposal type 0x%04x from an external sender", uint16(p.Type))
		}
	case message.SenderNewMemberProposal:
		if p.Type != message.ProposalAdd {
			return wrapf(ErrInvalidProposal, "proposal type 0x%04x from a new member", uint16(p.Type))
		}
	case message.SenderNewMemberCommit:
		switch p.Type {
		case message.ProposalExternalInit, message.ProposalRemove, message.ProposalPSK:
		default:
			return wrapf(ErrInvalidProposalList, "proposal type 0x%04x in an external commit", uint16(p.Type))
		}
	}
	switch p.Type {
	case message.ProposalAdd:
		if p.Add == nil {
			return wrapf(ErrMalformed, "empty Add")
		}
		return g.validateAddedKeyPackage(s, &p.Add.KeyPackage)
	case message.ProposalUpdate:
		if p.Update == nil || sender.Type != message.SenderMember {
			return wrapf(ErrInvalidProposal, "Update from a non-member")
		}
		return g.validateUpdateLeaf(s, &p.Update.LeafNode, sender.LeafIndex, message.SourceUpdate)
	case message.ProposalRemove:
		if p.Remove == nil {
			return wrapf(ErrMalformed, "empty Remove")
		}
		if uint64(p.Remove.Removed) >= uint64(s.tree.LeafCount()) || s.tree.Leaf(p.Remove.Removed) == nil {
			return wrapf(ErrInvalidProposal, "Remove of blank or absent leaf %d", p.Remove.Removed)
		}
	case message.ProposalPSK:
		if p.PreSharedKey == nil {
			return wrapf(ErrMalformed, "empty PreSharedKey")
		}
		id := &p.PreSharedKey.PSK
		if id.Type == message.PSKResumption && id.Usage != message.ResumptionApplication &&
			(s.resumeFrom == nil || !bytes.Equal(id.PSKGroupID, s.resumeFrom.ep.ctx.GroupID)) {
			return wrapf(ErrInvalidProposal, "resumption PSK with usage %d outside reinit or branch", id.Usage)
		}
		if id.Type != message.PSKExternal && id.Type != message.PSKResumption {
			return wrapf(ErrInvalidProposal, "PSK type %d", id.Type)
		}
		if len(id.Nonce) != s.cs.HashSize() {
			return wrapf(ErrInvalidProposal, "PSK nonce of %d bytes", len(id.Nonce))
		}
	case message.ProposalReInit:
		if p.ReInit == nil {
			return wrapf(ErrMalformed, "empty ReInit")
		}
		if p.ReInit.Version < s.ep.ctx.Version {
			return wrapf(ErrInvalidProposal, "ReInit to version %d", p.ReInit.Version)
		}
	case message.ProposalExternalInit:
		if p.ExternalInit == nil {
			return wrapf(ErrMalformed, "empty ExternalInit")
		}
	case message.ProposalGroupContextExtensions:
		if p.GroupContextExtensions == nil {
			return wrapf(ErrMalformed, "empty GroupContextExtensions")
		}
		if err := validateGroupExtensions(p.GroupContextExtensions.Extensions); err != nil {
			return err
		}
	default:
		return wrapf(ErrUnsupported, "proposal type 0x%04x", uint16(p.Type))
	}
	return nil
}

// validateAddedKeyPackage checks a key package in an Add against the group
// (RFC 9420, Section 10.1). Uniqueness against the tree is checked when
// the proposal list is applied, where removals in the same commit count.
func (g *Group) validateAddedKeyPackage(s *Group, kp *message.KeyPackage) error {
	if kp.CipherSuite != s.ep.ctx.CipherSuite || kp.Version != s.ep.ctx.Version {
		return wrapf(ErrInvalidKeyPackage, "suite 0x%04x version %d do not match the group", uint16(kp.CipherSuite), kp.Version)
	}
	return validateKeyPackage(g.cfg, kp, false)
}

// validateUpdateLeaf checks the leaf node of an Update proposal or of a
// commit's path replacing leaf index.
func (g *Group) validateUpdateLeaf(s *Group, leaf *message.LeafNode, index treemath.LeafIndex, source message.LeafNodeSource) error {
	if err := validateLeafAlone(g.cfg, s.cs, leaf, source, s.ep.ctx.GroupID, index, false); err != nil {
		return err
	}
	if old := s.tree.Leaf(index); old != nil && bytes.Equal(old.EncryptionKey, leaf.EncryptionKey) {
		return wrapf(ErrInvalidLeafNode, "encryption key not changed")
	}
	return nil
}

// applied is the outcome of applying a proposal list to a copy of the
// tree and group context.
type applied struct {
	tree         *tree.Tree
	extensions   message.Extensions
	added        []addedMember
	psks         []message.PreSharedKeyID
	reinit       *message.ReInit
	externalInit *message.ExternalInit
	pathRequired bool
	removed      []treemath.LeafIndex
	updated      []treemath.LeafIndex
}

// addedMember is a member an Add placed in the tree.
type addedMember struct {
	leaf treemath.LeafIndex
	kp   *message.KeyPackage
}

// applyProposals validates the proposal list of a commit by committer
// (RFC 9420, Section 12.2) and applies it to a copy of the tree in the
// order of Section 12.3. It does not change s.
func (g *Group) applyProposals(s *Group, props []resolvedProposal, committer message.Sender) (*applied, error) {
	if len(props) > maxCachedProposals {
		return nil, wrapf(ErrInvalidProposalList, "%d proposals", len(props))
	}
	external := committer.Type == message.SenderNewMemberCommit
	a := &applied{tree: s.tree.Clone(), extensions: s.ep.ctx.Extensions}
	var (
		gce       *message.GroupContextExtensions
		nExtInit  int
		nRemove   int
		touched   = map[treemath.LeafIndex]bool{}
		pskIDs    [][]byte
		updates   []resolvedProposal
		removes   []resolvedProposal
		adds      []resolvedProposal
		nonReInit int
	)
	for _, rp := range props {
		if err := g.validateProposal(s, rp.proposal, rp.sender); err != nil {
			return nil, err
		}
		p := rp.proposal
		if p.Type != message.ProposalReInit {
			nonReInit++
		}
		switch p.Type {
		case message.ProposalAdd:
			adds = append(adds, rp)
		case message.ProposalUpdate:
			if !external && committer.Type == message.SenderMember && rp.sender.LeafIndex == committer.LeafIndex {
				return nil, wrapf(ErrInvalidProposalList, "committer's own Update")
			}
			if touched[rp.sender.LeafIndex] {
				return nil, wrapf(ErrInvalidProposalList, "several Update/Remove for leaf %d", rp.sender.LeafIndex)
			}
			touched[rp.sender.LeafIndex] = true
			updates = append(updates, rp)
			a.pathRequired = true
		case message.ProposalRemove:
			r := p.Remove.Removed
			if committer.Type == message.SenderMember && r == committer.LeafIndex {
				return nil, wrapf(ErrInvalidProposalList, "commit removes the committer")
			}
			if touched[r] {
				return nil, wrapf(ErrInvalidProposalList, "several Update/Remove for leaf %d", r)
			}
			touched[r] = true
			removes = append(removes, rp)
			nRemove++
			a.pathRequired = true
		case message.ProposalPSK:
			id, err := p.PreSharedKey.PSK.Bytes()
			if err != nil {
				return nil, wrapf(ErrMalformed, "PSK id: %v", err)
			}
			for _, o := range pskIDs {
				if bytes.Equal(o, id) {
					return nil, wrapf(ErrInvalidProposalList, "PSK proposed twice")
				}
			}
			pskIDs = append(pskIDs, id)
			a.psks = append(a.psks, p.PreSharedKey.PSK)
		case message.ProposalReInit:
			a.reinit = p.ReInit
		case message.ProposalExternalInit:
			if !external {
				return nil, wrapf(ErrInvalidProposalList, "ExternalInit in a member's commit")
			}
			nExtInit++
			a.externalInit = p.ExternalInit
			a.pathRequired = true
		case message.ProposalGroupContextExtensions:
			if gce != nil {
				return nil, wrapf(ErrInvalidProposalList, "several GroupContextExtensions")
			}
			gce = p.GroupContextExtensions
			a.pathRequired = true
		}
	}
	if a.reinit != nil && nonReInit > 0 {
		return nil, wrapf(ErrInvalidProposalList, "ReInit together with other proposals")
	}
	if external {
		if nExtInit != 1 {
			return nil, wrapf(ErrInvalidProposalList, "external commit with %d ExternalInit", nExtInit)
		}
		if nRemove > 1 {
			return nil, wrapf(ErrInvalidProposalList, "external commit with %d Remove", nRemove)
		}
	}
	// Group context extensions first: the rest is checked against them.
	if gce != nil {
		a.extensions = gce.Extensions
	}
	newCtx := *s.ep.ctx
	newCtx.Extensions = a.extensions
	var idx *memberIndex
	if len(updates)+len(adds) > 0 {
		idx = newMemberIndex(a.tree, len(updates)+len(adds))
		idx.scan()
	}
	for _, rp := range updates {
		leaf := &rp.proposal.Update.LeafNode
		if err := idx.check(&newCtx, a.extensions, leaf, int64(rp.sender.LeafIndex)); err != nil {
			return nil, wrapf(ErrInvalidProposalList, "Update of %d: %v", rp.sender.LeafIndex, err)
		}
		if err := a.tree.UpdateLeaf(rp.sender.LeafIndex, leaf); err != nil {
			return nil, wrapf(ErrInvalidProposal, "Update: %v", err)
		}
		idx.add(rp.sender.LeafIndex, leaf)
		a.updated = append(a.updated, rp.sender.LeafIndex)
	}
	for _, rp := range removes {
		r := rp.proposal.Remove.Removed
		if idx != nil && !idx.linear {
			if old := a.tree.Leaf(r); old != nil {
				if j, ok := idx.sigKeys[string(old.SignatureKey)]; ok && j == r {
					delete(idx.sigKeys, string(old.SignatureKey))
				}
				delete(idx.encKeys, string(old.EncryptionKey))
			}
		}
		if err := a.tree.RemoveLeaf(r); err != nil {
			return nil, wrapf(ErrInvalidProposal, "Remove: %v", err)
		}
		a.removed = append(a.removed, r)
	}
	for _, rp := range adds {
		leaf := &rp.proposal.Add.KeyPackage.LeafNode
		if err := idx.check(&newCtx, a.extensions, leaf, -1); err != nil {
			return nil, wrapf(ErrInvalidProposalList, "Add: %v", err)
		}
		l, err := a.tree.AddLeaf(leaf)
		if err != nil {
			return nil, wrapf(ErrInvalidProposal, "Add: %v", err)
		}
		idx.add(l, leaf)
		a.added = append(a.added, addedMember{leaf: l, kp: &rp.proposal.Add.KeyPackage})
	}
	if gce != nil {
		// Every remaining member must support the new extensions.
		for i, leaf := range a.tree.Leaves() {
			if leaf == nil {
				continue
			}
			if err := checkRequiredCapabilities(a.extensions, &leaf.Capabilities); err != nil {
				return nil, wrapf(ErrInvalidProposalList, "member %d: %v", i, err)
			}
			for _, e := range a.extensions {
				if !leaf.Capabilities.SupportsExtension(e.Type) {
					return nil, wrapf(ErrInvalidProposalList, "member %d does not support extension 0x%04x", i, uint16(e.Type))
				}
			}
		}
	}
	if len(props) == 0 {
		a.pathRequired = true
	}
	return a, nil
}
