package mls

import (
	"bytes"
	"fmt"
	"io"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// propose signs and sends a proposal of ours, caching it for our own next
// commit. It returns the MLSMessage to send to the group.
func (g *Group) propose(p *message.Proposal, aad []byte) ([]byte, error) {
	if g.status != statusActive {
		return nil, ErrInactive
	}
	if g.pending != nil {
		return nil, wrapf(ErrPendingCommit, "cannot propose while a commit is pending")
	}
	me := message.Sender{Type: message.SenderMember, LeafIndex: g.self}
	if err := g.validateProposal(g, p, me); err != nil {
		return nil, err
	}
	wf := message.WireFormatPublicMessage
	if g.cfg.EncryptHandshake {
		wf = message.WireFormatPrivateMessage
	}
	ac, err := g.ep.fr.Sign(g.signer.s, wf, &message.FramedContent{
		GroupID: g.ep.ctx.GroupID, Epoch: g.ep.ctx.Epoch, Sender: me,
		AuthenticatedData: bytes.Clone(aad), ContentType: message.ContentProposal, Proposal: p,
	})
	if err != nil {
		return nil, err
	}
	ref, err := ac.ProposalRef(g.cs)
	if err != nil {
		return nil, err
	}
	msg, err := g.protect(ac)
	if err != nil {
		return nil, err
	}
	if len(g.proposals) >= maxCachedProposals {
		return nil, wrapf(ErrInvalidProposal, "too many proposals in this epoch")
	}
	g.proposals = append(g.proposals[:len(g.proposals):len(g.proposals)], cachedProposal{ref: ref, proposal: p, sender: me, raw: msg})
	return msg, nil
}

// ProposeAdd proposes adding the owner of kp. The key package is validated
// against the group first.
func (g *Group) ProposeAdd(kp *KeyPackage) ([]byte, error) {
	if err := checkLifetime(g.cfg, kp.kp); err != nil {
		return nil, err
	}
	return g.propose(&message.Proposal{Type: message.ProposalAdd, Add: &message.Add{KeyPackage: *kp.kp}}, nil)
}

// ProposeRemove proposes removing the member at leaf index i.
func (g *Group) ProposeRemove(i LeafIndex) ([]byte, error) {
	return g.propose(&message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: treemath.LeafIndex(i)}}, nil)
}

// ProposeUpdate proposes replacing our leaf with one holding a fresh
// encryption key. Another member must commit it.
func (g *Group) ProposeUpdate() ([]byte, error) {
	if g.status != statusActive {
		return nil, ErrInactive
	}
	leaf, priv, err := g.freshLeaf(message.SourceUpdate)
	if err != nil {
		return nil, err
	}
	msg, err := g.propose(&message.Proposal{Type: message.ProposalUpdate, Update: &message.Update{LeafNode: *leaf}}, nil)
	if err != nil {
		clear(priv)
		return nil, err
	}
	g.updateKeys = append(g.updateKeys[:len(g.updateKeys):len(g.updateKeys)], updateKey{pub: leaf.EncryptionKey, priv: priv})
	return msg, nil
}

// freshLeaf returns a copy of our leaf with a new encryption key, signed for
// source.
func (g *Group) freshLeaf(source message.LeafNodeSource) (*message.LeafNode, []byte, error) {
	priv, pub, err := generateHPKE(g.cfg, g.cs)
	if err != nil {
		return nil, nil, err
	}
	leaf := *g.tree.Leaf(g.self)
	leaf.EncryptionKey = pub
	leaf.Source = source
	leaf.Lifetime = message.Lifetime{}
	leaf.ParentHash = nil
	if err := leaf.Sign(g.signer.s, g.ep.ctx.GroupID, g.self); err != nil {
		clear(priv)
		return nil, nil, err
	}
	return &leaf, priv, nil
}

// ProposePSK proposes injecting the external pre-shared key with the given
// id (which Config.PSK must know) into the next epoch.
func (g *Group) ProposePSK(id []byte) ([]byte, error) {
	p, err := g.pskProposal(message.PreSharedKeyID{Type: message.PSKExternal, PSKID: bytes.Clone(id)})
	if err != nil {
		return nil, err
	}
	return g.propose(p, nil)
}

// pskProposal returns a PreSharedKey proposal for id with a fresh nonce,
// checking that the key is available.
func (g *Group) pskProposal(id message.PreSharedKeyID) (*message.Proposal, error) {
	pid, err := g.newPSKID(id)
	if err != nil {
		return nil, err
	}
	if _, err := lookupPSK(g.cfg, pid, []*Group{g}); err != nil {
		return nil, err
	}
	return &message.Proposal{Type: message.ProposalPSK, PreSharedKey: &message.PreSharedKey{PSK: *pid}}, nil
}

// ProposeResumptionPSK proposes injecting the resumption secret of one of
// this group's recent epochs.
func (g *Group) ProposeResumptionPSK(epoch uint64) ([]byte, error) {
	p, err := g.pskProposal(message.PreSharedKeyID{Type: message.PSKResumption, Usage: message.ResumptionApplication,
		PSKGroupID: bytes.Clone(g.ep.ctx.GroupID), PSKEpoch: epoch})
	if err != nil {
		return nil, err
	}
	return g.propose(p, nil)
}

func (g *Group) newPSKID(id message.PreSharedKeyID) (*message.PreSharedKeyID, error) {
	id.Nonce = make([]byte, g.cs.HashSize())
	if _, err := io.ReadFull(g.cfg.rand(), id.Nonce); err != nil {
		return nil, fmt.Errorf("failed to read randomness: %w", err)
	}
	return &id, nil
}

// ProposeReInit proposes closing the group and continuing it as a new
// group with id newID, suite cs and the given extensions.
func (g *Group) ProposeReInit(newID GroupID, cs CipherSuite, opts *GroupOptions) ([]byte, error) {
	p, err := (&ReInit{ID: newID, Suite: cs, Options: opts}).proposal()
	if err != nil {
		return nil, err
	}
	return g.propose(p, nil)
}

// ProposeGroupContextExtensions proposes replacing the group's extensions
// with those opts describes.
func (g *Group) ProposeGroupContextExtensions(opts *GroupOptions) ([]byte, error) {
	exts, err := groupExtensions(opts)
	if err != nil {
		return nil, err
	}
	return g.propose(&message.Proposal{Type: message.ProposalGroupContextExtensions,
		GroupContextExtensions: &message.GroupContextExtensions{Extensions: exts}}, nil)
}

// PendingProposals reports how many proposals wait for a commit.
func (g *Group) PendingProposals() int { return len(g.proposals) }

// Encrypt protects application data for the group as a PrivateMessage.
// aad is sent unencrypted but authenticated.
func (g *Group) Encrypt(plaintext, aad []byte) ([]byte, error) {
	if g.status != statusActive {
		return nil, ErrInactive
	}
	if len(g.proposals) > 0 {
		return nil, ErrPendingProposals
	}
	ac, err := g.ep.fr.Sign(g.signer.s, message.WireFormatPrivateMessage, &message.FramedContent{
		GroupID: g.ep.ctx.GroupID, Epoch: g.ep.ctx.Epoch,
		Sender:            message.Sender{Type: message.SenderMember, LeafIndex: g.self},
		AuthenticatedData: aad, ContentType: message.ContentApplication, ApplicationData: plaintext,
	})
	if err != nil {
		return nil, err
	}
	pm, err := g.ep.fr.ProtectPrivate(g.cfg.rand(), ac)
	if err != nil {
		return nil, err
	}
	return message.NewPrivateMessage(pm).Bytes()
}
