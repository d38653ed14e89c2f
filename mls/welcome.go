package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// pskSecrets looks up the secrets of PSK ids: external ones with
// Config.PSK, resumption ones among this group's recent epochs or the
// groups in others.
func (g *Group) pskSecrets(ids []message.PreSharedKeyID, others []*Group) ([]keyschedule.PSK, error) {
	out := make([]keyschedule.PSK, 0, len(ids))
	for i := range ids {
		id := &ids[i]
		enc, err := id.Bytes()
		if err != nil {
			return nil, wrapf(ErrMalformed, "PSK id: %v", err)
		}
		secret, err := lookupPSK(g.cfg, id, append([]*Group{g}, others...))
		if err != nil {
			return nil, err
		}
		out = append(out, keyschedule.PSK{ID: enc, Secret: secret})
	}
	return out, nil
}

func lookupPSK(cfg *Config, id *message.PreSharedKeyID, groups []*Group) ([]byte, error) {
	switch id.Type {
	case message.PSKExternal:
		if cfg.PSK != nil {
			if s, ok := cfg.PSK(id.PSKID); ok {
				return s, nil
			}
		}
		return nil, wrapf(ErrMissingPSK, "external PSK %x", id.PSKID)
	case message.PSKResumption:
		for _, g := range groups {
			if g == nil || !bytes.Equal(g.ep.ctx.GroupID, id.PSKGroupID) {
				continue
			}
			for _, r := range g.resumption {
				if r.epoch == id.PSKEpoch {
					return r.secret, nil
				}
			}
		}
		return nil, wrapf(ErrMissingPSK, "resumption PSK of group %x epoch %d", []byte(id.PSKGroupID), id.PSKEpoch)
	}
	return nil, wrapf(ErrMissingPSK, "PSK type %d", id.Type)
}

// groupInfo builds and signs the GroupInfo of the current epoch.
func (g *Group) groupInfo(tag []byte, externalPub, inlineTree bool) (*message.GroupInfo, error) {
	gi := &message.GroupInfo{GroupContext: *g.ep.ctx, ConfirmationTag: tag, Signer: g.self}
	if inlineTree {
		e, err := message.NewExtension(message.ExtensionRatchetTree, g.tree.RatchetTree())
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, e)
	}
	if externalPub {
		_, pub, err := g.ep.secrets.ExternalKeyPair()
		if err != nil {
			return nil, err
		}
		e, err := message.NewExtension(message.ExtensionExternalPub, &message.ExternalPub{PublicKey: pub})
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, e)
	}
	if err := gi.Sign(g.signer.s); err != nil {
		return nil, err
	}
	return gi, nil
}

// GroupInfo returns a signed GroupInfo of the current epoch as an
// MLSMessage. With externalPub it carries the external_pub extension
// (needed by [JoinExternal]); with inlineTree the ratchet tree.
func (g *Group) GroupInfo(externalPub, inlineTree bool) ([]byte, error) {
	tag := g.confirmationTag()
	gi, err := g.groupInfo(tag, externalPub, inlineTree)
	if err != nil {
		return nil, err
	}
	return message.NewGroupInfo(gi).Bytes()
}

// RatchetTree returns the group's ratchet tree in its wire form, for joiners
// whose Welcome does not carry it.
func (g *Group) RatchetTree() ([]byte, error) { return g.tree.Bytes() }

// welcome builds the Welcome for the members a commit adds.
func (n *Group) welcome(tag []byte, inlineTree bool, joiner keyschedule.JoinerSecret, psk keyschedule.PSKSecret, a *applied, path *tree.PathResult) ([]byte, error) {
	gi, err := n.groupInfo(tag, false, inlineTree)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := keyschedule.WelcomeSecret(n.cs, joiner, psk)
	if err != nil {
		return nil, err
	}
	defer clear(welcomeSecret)
	w := &message.Welcome{CipherSuite: n.cs.ID()}
	if err := w.SealGroupInfo(n.cs, welcomeSecret, gi); err != nil {
		return nil, err
	}
	for _, m := range a.added {
		gs := &message.GroupSecrets{JoinerSecret: joiner, PSKs: a.psks}
		if path != nil {
			if ps, _, ok := path.PathSecret(m.leaf); ok {
				gs.PathSecret = &message.PathSecret{PathSecret: ps}
			}
		}
		ref, err := m.kp.Ref(n.cs)
		if err != nil {
			return nil, err
		}
		err = w.SealGroupSecrets(n.cs, ref, m.kp.InitKey, gs)
		if gs.PathSecret != nil {
			clear(gs.PathSecret.PathSecret)
		}
		if err != nil {
			return nil, err
		}
	}
	return message.NewWelcome(w).Bytes()
}

// JoinOptions are the optional inputs of [Join].
type JoinOptions struct {
	// RatchetTree is the group's tree (as [Group.RatchetTree] returns),
	// needed when the Welcome does not carry it.
	RatchetTree []byte
	// Resume lists groups whose resumption secrets the Welcome may refer
	// to (the old group of a reinitialisation or the parent of a branch).
	Resume []*Group
}

// Join joins a group from a Welcome addressed to one of our key packages
// (RFC 9420, Section 12.4.3.1).
func Join(cfg *Config, welcome []byte, kp *KeyPackageBundle, opts *JoinOptions) (*Group, error) {
	if opts == nil {
		opts = &JoinOptions{}
	}
	m, err := message.DecodeMLSMessage(welcome)
	if err != nil {
		return nil, wrapf(ErrMalformed, "welcome: %v", err)
	}
	if m.WireFormat != message.WireFormatWelcome || m.Welcome == nil {
		return nil, wrapf(ErrMalformed, "not a welcome but wire format %d", m.WireFormat)
	}
	w := m.Welcome
	if w.CipherSuite != kp.KeyPackage.kp.CipherSuite {
		return nil, wrapf(ErrInvalidWelcome, "welcome suite 0x%04x differs from the key package's", uint16(w.CipherSuite))
	}
	cs, err := suite.Get(w.CipherSuite)
	if err != nil {
		return nil, wrapf(ErrUnsupported, "cipher suite 0x%04x", uint16(w.CipherSuite))
	}
	gs, err := w.OpenGroupSecrets(cs, message.KeyPackageRef(kp.KeyPackage.ref), kp.initPriv)
	if err != nil {
		return nil, wrapf(ErrInvalidWelcome, "%v", err)
	}
	defer gs.Erase()
	g := &Group{cfg: cfg, signer: kp.signer, cs: cs}
	psks, err := g.joinPSKs(gs.PSKs, opts.Resume)
	if err != nil {
		return nil, err
	}
	pskSecret, err := keyschedule.CombinePSKs(cs, psks)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := keyschedule.WelcomeSecret(cs, gs.JoinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	gi, err := w.OpenGroupInfo(cs, welcomeSecret)
	clear(welcomeSecret)
	if err != nil {
		return nil, wrapf(ErrInvalidWelcome, "%v", err)
	}
	ctx := gi.GroupContext
	if ctx.CipherSuite != cs.ID() || ctx.Version != message.MLS10 {
		return nil, wrapf(ErrInvalidWelcome, "group suite or version differs from the welcome's")
	}
	t, err := g.receivedTree(gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	if err := g.verifyGroupInfo(gi, t); err != nil {
		return nil, err
	}
	me, ok := t.FindLeaf(func(l *message.LeafNode) bool {
		return bytes.Equal(l.EncryptionKey, kp.KeyPackage.kp.LeafNode.EncryptionKey) &&
			bytes.Equal(l.SignatureKey, kp.KeyPackage.kp.LeafNode.SignatureKey)
	})
	if !ok {
		return nil, wrapf(ErrInvalidWelcome, "our leaf is not in the tree")
	}
	keys, err := tree.NewPrivateKeys(cs, me, kp.encPriv)
	if err != nil {
		return nil, err
	}
	if gs.PathSecret != nil {
		x := treemath.CommonAncestor(me.Node(), gi.Signer.Node())
		if err := keys.SetPathSecret(t, x, gs.PathSecret.PathSecret); err != nil {
			keys.Destroy()
			return nil, wrapf(ErrInvalidWelcome, "path secret: %v", err)
		}
	}
	g.tree, g.keys, g.self = t, keys, me
	ctxBytes, err := ctx.Bytes()
	if err != nil {
		return nil, err
	}
	secrets, err := keyschedule.FromJoiner(cs, gs.JoinerSecret, pskSecret, ctxBytes)
	if err != nil {
		return nil, err
	}
	if err := framing.VerifyConfirmationTag(cs, secrets.Confirmation, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		return nil, wrapf(ErrInvalidMAC, "welcome: %v", err)
	}
	interim, err := framing.InterimTranscriptHash(cs, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	c := ctx
	g.ep, err = g.newEpoch(&c, secrets, t.LeafCount(), interim)
	if err != nil {
		return nil, err
	}
	if err := g.checkResumptionJoin(gs.PSKs, opts.Resume); err != nil {
		return nil, err
	}
	g.rememberResumption()
	return g, nil
}

// joinPSKs resolves the PSKs a Welcome lists.
func (g *Group) joinPSKs(ids []message.PreSharedKeyID, resume []*Group) ([]keyschedule.PSK, error) {
	if len(ids) > maxCachedProposals {
		return nil, wrapf(ErrInvalidWelcome, "%d PSKs", len(ids))
	}
	out := make([]keyschedule.PSK, 0, len(ids))
	for i := range ids {
		enc, err := ids[i].Bytes()
		if err != nil {
			return nil, wrapf(ErrMalformed, "PSK id: %v", err)
		}
		secret, err := lookupPSK(g.cfg, &ids[i], resume)
		if err != nil {
			return nil, err
		}
		out = append(out, keyschedule.PSK{ID: enc, Secret: secret})
	}
	return out, nil
}

// receivedTree decodes and validates the tree of a group we join: from the
// GroupInfo's ratchet_tree extension or given out of band.
func (g *Group) receivedTree(gi *message.GroupInfo, given []byte) (*tree.Tree, error) {
	var rt message.RatchetTree
	found, err := message.DecodeExtension(gi.Extensions, message.ExtensionRatchetTree, &rt)
	if err != nil {
		return nil, wrapf(ErrMalformed, "ratchet_tree: %v", err)
	}
	var t *tree.Tree
	switch {
	case found:
		t, err = tree.FromRatchetTree(g.cs, rt)
	case given != nil:
		t, err = tree.Decode(g.cs, given)
	default:
		return nil, wrapf(ErrInvalidWelcome, "no ratchet tree")
	}
	if err != nil {
		return nil, wrapf(ErrInvalidTree, "%v", err)
	}
	if err := g.validateTree(t, &gi.GroupContext); err != nil {
		return nil, err
	}
	return t, nil
}

// validateTree checks a tree received on joining (RFC 9420, Section
// 12.4.3.1): its hash matches the group context, parent hashes and unmerged
// leaves are consistent, and every leaf node is valid.
func (g *Group) validateTree(t *tree.Tree, ctx *message.GroupContext) error {
	err := t.Validate(tree.ValidateOptions{
		GroupID:    ctx.GroupID,
		Extensions: ctx.Extensions,
		TreeHash:   ctx.TreeHash,
		CheckCredential: func(leaf *message.LeafNode) error {
			cred, err := credentialOf(&leaf.Credential)
			if err != nil {
				return err
			}
			return g.cfg.validateCredential(cred)
		},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTree, err)
	}
	return nil
}

// verifyGroupInfo checks the GroupInfo signature with its signer's leaf.
func (g *Group) verifyGroupInfo(gi *message.GroupInfo, t *tree.Tree) error {
	if uint64(gi.Signer) >= uint64(t.LeafCount()) || t.Leaf(gi.Signer) == nil {
		return wrapf(ErrUnknownMember, "group info signer %d", gi.Signer)
	}
	if err := gi.Verify(g.cs, t.Leaf(gi.Signer).SignatureKey); err != nil {
		return wrapf(ErrInvalidSignature, "group info: %v", err)
	}
	return nil
}

// checkResumptionJoin applies the checks of RFC 9420, Sections 11.2 and
// 11.3 when a Welcome carries a reinit or branch resumption PSK.
func (g *Group) checkResumptionJoin(ids []message.PreSharedKeyID, resume []*Group) error {
	var res *message.PreSharedKeyID
	for i := range ids {
		if ids[i].Type == message.PSKResumption && ids[i].Usage != message.ResumptionApplication {
			if res != nil {
				return wrapf(ErrInvalidWelcome, "several reinit or branch PSKs")
			}
			res = &ids[i]
		}
	}
	if res == nil {
		return nil
	}
	if g.ep.ctx.Epoch != 1 {
		return wrapf(ErrInvalidWelcome, "resumption welcome for epoch %d, not 1", g.ep.ctx.Epoch)
	}
	var old *Group
	for _, o := range resume {
		if o != nil && bytes.Equal(o.ep.ctx.GroupID, res.PSKGroupID) {
			old = o
		}
	}
	if old == nil {
		return wrapf(ErrMissingPSK, "resumed group not given")
	}
	if res.Usage == message.ResumptionReInit {
		ri := old.reinit
		if ri == nil || old.status != statusReInit {
			return wrapf(ErrInvalidWelcome, "old group was not reinitialised")
		}
		if !bytes.Equal(ri.GroupID, g.ep.ctx.GroupID) || ri.Version != g.ep.ctx.Version || ri.CipherSuite != g.ep.ctx.CipherSuite ||
			!extensionsEqual(ri.Extensions, g.ep.ctx.Extensions) {
			return wrapf(ErrInvalidWelcome, "group parameters differ from the ReInit proposal")
		}
		if res.PSKEpoch != old.ep.ctx.Epoch {
			return wrapf(ErrInvalidWelcome, "reinit PSK for epoch %d, group at %d", res.PSKEpoch, old.ep.ctx.Epoch)
		}
	}
	if res.Usage == message.ResumptionReInit && g.tree.MemberCount() != old.tree.MemberCount() {
		return wrapf(ErrInvalidWelcome, "reinitialised group has %d members, the old one %d", g.tree.MemberCount(), old.tree.MemberCount())
	}
	// The new group's members must all have been members of the old one.
	for i, leaf := range g.tree.Leaves() {
		if leaf == nil {
			continue
		}
		if _, ok := old.tree.FindLeaf(func(l *message.LeafNode) bool { return l.Credential.Equal(&leaf.Credential) }); !ok {
			return wrapf(ErrInvalidWelcome, "member %d was not in the resumed group", i)
		}
	}
	return nil
}

func extensionsEqual(a, b message.Extensions) bool {
	return slices.EqualFunc(a, b, func(x, y message.Extension) bool { return x.Type == y.Type && bytes.Equal(x.Data, y.Data) })
}
