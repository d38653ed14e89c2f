package mls

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/framing"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/tree"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// stateVersion tags the encoding of [Group.Marshal].
const stateVersion = 1

// Marshal encodes the whole group state (secrets included) so that it can
// be stored and restored with [Unmarshal]. Store it encrypted. The
// encoding starts with a version number; later versions of this package
// read older encodings.
func (g *Group) Marshal() ([]byte, error) {
	return codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(stateVersion)
		g.encode(b, true)
	})
}

func addMarshaled(b *cryptobyte.Builder, m interface{ MarshalBinary() ([]byte, error) }) {
	data, err := m.MarshalBinary()
	if err != nil {
		b.SetError(err)
		return
	}
	codec.AddOpaque(b, data)
}

func (g *Group) encode(b *cryptobyte.Builder, withPending bool) {
	b.AddUint16(uint16(g.cs.ID()))
	codec.AddOpaque(b, g.signer.priv)
	treeBytes, err := g.tree.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	codec.AddOpaque(b, treeBytes)
	addMarshaled(b, g.keys)
	b.AddUint32(uint32(g.self))
	encodeEpoch(b, g.ep)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, p := range g.proposals {
			codec.AddOpaque(b, p.ref)
			p.proposal.Encode(b)
			p.sender.Encode(b)
			codec.AddOpaque(b, p.raw)
		}
	})
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, u := range g.updateKeys {
			codec.AddOpaque(b, u.pub)
			codec.AddOpaque(b, u.priv)
		}
	})
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, pe := range g.past {
			tb, err := pe.tree.Bytes()
			if err != nil {
				b.SetError(err)
				return
			}
			codec.AddOpaque(b, tb)
			encodeEpoch(b, pe.ep)
		}
	})
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, r := range g.resumption {
			b.AddUint64(r.epoch)
			codec.AddOpaque(b, r.secret)
		}
	})
	b.AddUint8(uint8(g.status))
	codec.AddOptional(b, g.reinit != nil, func(b *cryptobyte.Builder) { g.reinit.Encode(b) })
	codec.AddOptional(b, withPending && g.pending != nil, func(b *cryptobyte.Builder) {
		codec.AddOpaque(b, g.pending.message)
		g.pending.next.encode(b, false)
	})
}

func encodeEpoch(b *cryptobyte.Builder, ep *epoch) {
	ep.ctx.Encode(b)
	addMarshaled(b, ep.secrets)
	addMarshaled(b, ep.stree)
	codec.AddOpaque(b, ep.interim)
}

// Unmarshal restores a group encoded by [Group.Marshal]. cfg supplies the
// behaviour (randomness, clock, validators); it must name the group's
// cipher suite.
func Unmarshal(data []byte, cfg *Config) (*Group, error) {
	var g *Group
	err := codec.Unmarshal(data, "group state", func(s *cryptobyte.String) bool {
		var version uint8
		if !s.ReadUint8(&version) || version != stateVersion {
			return false
		}
		var ok bool
		g, ok = decodeGroup(s, cfg, true)
		return ok
	})
	if err != nil || g == nil {
		return nil, wrapf(ErrInvalidState, "%v", err)
	}
	return g, nil
}

func decodeGroup(s *cryptobyte.String, cfg *Config, withPending bool) (*Group, bool) {
	var (
		csID           uint16
		sigPriv, treeB []byte
		keysB          []byte
		self           uint32
		statusB        uint8
		hasReinit      bool
		hasPending     bool
		err            error
	)
	if !s.ReadUint16(&csID) || !codec.ReadOpaque(s, &sigPriv) || !codec.ReadOpaque(s, &treeB) ||
		!codec.ReadOpaque(s, &keysB) || !s.ReadUint32(&self) {
		return nil, false
	}
	cs, err := suite.Get(suite.ID(csID))
	if err != nil {
		return nil, false
	}
	g := &Group{cfg: cfg, cs: cs, self: treemath.LeafIndex(self)}
	if g.signer, err = NewSigner(CipherSuite(csID), sigPriv); err != nil {
		return nil, false
	}
	clear(sigPriv)
	if g.tree, err = tree.Decode(cs, treeB); err != nil {
		return nil, false
	}
	if g.keys, err = tree.UnmarshalPrivateKeys(keysB); err != nil {
		return nil, false
	}
	clear(keysB)
	if g.ep, err = decodeEpoch(s, cfg, cs); err != nil {
		return nil, false
	}
	// The tree hash cache is not stored: fill it now, on all cores, rather
	// than in the first commit, and check the tree against the epoch.
	if !bytes.Equal(g.tree.WarmCache(), g.ep.ctx.TreeHash) {
		return nil, false
	}
	ok := codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
		var p cachedProposal
		p.proposal = new(message.Proposal)
		if !codec.ReadOpaque(s, (*[]byte)(&p.ref)) || !p.proposal.Decode(s) || !p.sender.Decode(s) || !codec.ReadOpaque(s, &p.raw) {
			return false
		}
		if len(p.raw) == 0 {
			p.raw = nil
		}
		g.proposals = append(g.proposals, p)
		return true
	}) && codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
		var u updateKey
		if !codec.ReadOpaque(s, &u.pub) || !codec.ReadOpaque(s, (*[]byte)(&u.priv)) {
			return false
		}
		g.updateKeys = append(g.updateKeys, u)
		return true
	}) && codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
		var tb []byte
		if !codec.ReadOpaque(s, &tb) {
			return false
		}
		pe := &pastEpoch{}
		var err error
		if pe.tree, err = tree.Decode(cs, tb); err != nil {
			return false
		}
		if pe.ep, err = decodeEpoch(s, cfg, cs); err != nil {
			return false
		}
		g.past = append(g.past, pe)
		return true
	}) && codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
		var r resumptionSecret
		if !s.ReadUint64(&r.epoch) || !codec.ReadOpaque(s, &r.secret) {
			return false
		}
		g.resumption = append(g.resumption, r)
		return true
	}) && s.ReadUint8(&statusB) && codec.ReadOptional(s, &hasReinit)
	if !ok || statusB > uint8(statusReInit) {
		return nil, false
	}
	g.status = status(statusB)
	if hasReinit {
		g.reinit = new(message.ReInit)
		if !g.reinit.Decode(s) {
			return nil, false
		}
	}
	if !codec.ReadOptional(s, &hasPending) {
		return nil, false
	}
	if hasPending {
		if !withPending {
			return nil, false
		}
		p := &pendingCommit{}
		if !codec.ReadOpaque(s, &p.message) {
			return nil, false
		}
		if p.next, ok = decodeGroup(s, cfg, false); !ok {
			return nil, false
		}
		g.pending = p
	}
	if g.keys.Check(g.tree) != nil && g.status == statusActive {
		return nil, false
	}
	return g, true
}

func decodeEpoch(s *cryptobyte.String, cfg *Config, cs *suite.Suite) (*epoch, error) {
	var (
		ctx              message.GroupContext
		secB, streeB, ih []byte
	)
	if !ctx.Decode(s) || !codec.ReadOpaque(s, &secB) || !codec.ReadOpaque(s, &streeB) || !codec.ReadOpaque(s, &ih) {
		return nil, fmt.Errorf("%w: epoch", ErrInvalidState)
	}
	if ctx.CipherSuite != cs.ID() {
		return nil, fmt.Errorf("%w: epoch suite", ErrInvalidState)
	}
	secrets, err := keyschedule.UnmarshalEpochSecrets(secB)
	clear(secB)
	if err != nil {
		return nil, err
	}
	stree, err := keyschedule.UnmarshalSecretTree(streeB)
	clear(streeB)
	if err != nil {
		return nil, err
	}
	pad := cfg.PaddingBlock
	if pad <= 0 {
		pad = 1
	}
	fr, err := framing.NewEpoch(cs, &ctx, framing.Keys{
		MembershipKey: secrets.Membership, SenderDataSecret: secrets.SenderData, Tree: stree, PaddingBlock: pad,
	})
	if err != nil {
		return nil, err
	}
	return &epoch{ctx: &ctx, secrets: secrets, stree: stree, fr: fr, interim: ih}, nil
}
