package keyschedule

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// Format versions of the persisted states. A decoder rejects versions it
// does not know.
const (
	epochSecretsVersion = 1
	secretTreeVersion   = 1
)

// MarshalBinary encodes the epoch secrets for persistence. The encoding holds
// secrets: store it encrypted.
func (e *EpochSecrets) MarshalBinary() ([]byte, error) {
	if e.suite == nil {
		return nil, fmt.Errorf("%w: epoch secrets without a suite", ErrInvalidState)
	}
	return codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(epochSecretsVersion)
		b.AddUint16(uint16(e.suite.ID()))
		for _, f := range e.fields() {
			codec.AddOpaque(b, *f)
		}
	})
}

// UnmarshalEpochSecrets decodes what [EpochSecrets.MarshalBinary] produced.
// Every secret must be Nh bytes long, except the encryption secret, which
// may be empty once the secret tree has been built.
func UnmarshalEpochSecrets(data []byte) (*EpochSecrets, error) {
	var (
		version uint8
		id      uint16
		e       EpochSecrets
	)
	err := codec.Unmarshal(data, "epoch secrets", func(s *cryptobyte.String) bool {
		if !s.ReadUint8(&version) || version != epochSecretsVersion || !s.ReadUint16(&id) {
			return false
		}
		for _, f := range e.fields() {
			if !codec.ReadOpaque(s, f) {
				return false
			}
		}
		return true
	})
	if err != nil {
		e.Erase()
		return nil, fmt.Errorf("failed to decode epoch secrets: %w", err)
	}
	if e.suite, err = suite.Get(suite.ID(id)); err != nil {
		e.Erase()
		return nil, fmt.Errorf("failed to decode epoch secrets: %w", err)
	}
	for _, f := range e.fields() {
		if len(*f) == e.suite.HashSize() || (f == &e.Encryption && len(*f) == 0) {
			continue
		}
		e.Erase()
		return nil, fmt.Errorf("%w: epoch secret of %d bytes", ErrInvalidState, len(*f))
	}
	return &e, nil
}

// MarshalBinary encodes the secret tree for persistence: the node secrets
// not yet consumed, and each derived ratchet with its retained keys. The
// encoding holds secrets: store it encrypted.
func (t *SecretTree) MarshalBinary() ([]byte, error) {
	if t.suite == nil {
		return nil, fmt.Errorf("%w: secret tree without a suite", ErrInvalidState)
	}
	nodes := make([]treemath.NodeIndex, 0, len(t.nodes))
	for n := range t.nodes {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	leaves := make([]treemath.LeafIndex, 0, len(t.ratchets))
	for l := range t.ratchets {
		leaves = append(leaves, l)
	}
	slices.Sort(leaves)
	return codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(secretTreeVersion)
		b.AddUint16(uint16(t.suite.ID()))
		b.AddUint32(uint32(t.leaves))
		b.AddUint32(t.opts.MaxForward)
		b.AddUint32(t.opts.MaxRetained)
		codec.AddVector(b, func(b *cryptobyte.Builder) {
			for _, n := range nodes {
				b.AddUint32(uint32(n))
				codec.AddOpaque(b, t.nodes[n])
			}
		})
		codec.AddVector(b, func(b *cryptobyte.Builder) {
			for _, l := range leaves {
				b.AddUint32(uint32(l))
				for _, r := range t.ratchets[l] {
					b.AddUint32(r.next)
					codec.AddOpaque(b, r.secret)
					codec.AddVector(b, func(b *cryptobyte.Builder) {
						for _, k := range r.retained {
							b.AddUint32(k.gen)
							codec.AddOpaque(b, k.key)
							codec.AddOpaque(b, k.nonce)
						}
					})
				}
			}
		})
	})
}

// UnmarshalSecretTree decodes what [SecretTree.MarshalBinary] produced and
// checks that the state is consistent: sizes match the suite, indices lie in
// the tree, no secret is held for a node whose descendant was already
// derived, and retained generations are ordered, below the ratchet's
// position and within the window.
func UnmarshalSecretTree(data []byte) (*SecretTree, error) {
	t := &SecretTree{
		nodes:    make(map[treemath.NodeIndex][]byte),
		ratchets: make(map[treemath.LeafIndex]*[2]ratchet),
	}
	if err := t.decode(data); err != nil {
		t.Erase()
		return nil, fmt.Errorf("failed to decode secret tree: %w", err)
	}
	return t, nil
}

func (t *SecretTree) decode(data []byte) error {
	var (
		version uint8
		id      uint16
		leaves  uint32
		dupe    bool
	)
	err := codec.Unmarshal(data, "secret tree", func(s *cryptobyte.String) bool {
		if !s.ReadUint8(&version) || version != secretTreeVersion || !s.ReadUint16(&id) ||
			!s.ReadUint32(&leaves) || !s.ReadUint32(&t.opts.MaxForward) || !s.ReadUint32(&t.opts.MaxRetained) {
			return false
		}
		ok := codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
			var n uint32
			var secret []byte
			if !s.ReadUint32(&n) || !codec.ReadOpaque(s, &secret) {
				return false
			}
			if _, ok := t.nodes[treemath.NodeIndex(n)]; ok {
				dupe = true
			}
			t.nodes[treemath.NodeIndex(n)] = secret
			return true
		})
		if !ok {
			return false
		}
		return codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
			var l uint32
			if !s.ReadUint32(&l) {
				return false
			}
			rs := new([2]ratchet)
			if _, ok := t.ratchets[treemath.LeafIndex(l)]; ok {
				dupe = true
			}
			t.ratchets[treemath.LeafIndex(l)] = rs
			for i := range rs {
				r := &rs[i]
				if !s.ReadUint32(&r.next) || !codec.ReadOpaque(s, &r.secret) {
					return false
				}
				ok := codec.ReadVectorFunc(s, func(s *cryptobyte.String) bool {
					var k retainedKey
					if !s.ReadUint32(&k.gen) || !codec.ReadOpaque(s, &k.key) || !codec.ReadOpaque(s, &k.nonce) {
						return false
					}
					r.retained = append(r.retained, k)
					return true
				})
				if !ok {
					return false
				}
			}
			return true
		})
	})
	if err != nil {
		return err
	}
	if dupe {
		return fmt.Errorf("%w: duplicate entry", ErrInvalidState)
	}
	if t.suite, err = suite.Get(suite.ID(id)); err != nil {
		return err
	}
	t.leaves = treemath.LeafCount(leaves)
	if leaves == 0 || leaves > 1<<30 {
		return fmt.Errorf("%w: secret tree of %d leaves", ErrInvalidState, leaves)
	}
	if t.opts.MaxForward == 0 || t.opts.MaxRetained == 0 || t.opts.MaxForward > MaxWindow || t.opts.MaxRetained > MaxWindow {
		return fmt.Errorf("%w: out-of-order window", ErrInvalidState)
	}
	return t.validate()
}

// validate checks the invariants UnmarshalSecretTree promises.
func (t *SecretTree) validate() error {
	// The secret tree spans the complete tree above the leaves, so node
	// indices run up to twice the root's.
	root := t.leaves.Root()
	// hasStoredAncestor reports whether x or a node above it holds a secret.
	hasStoredAncestor := func(x treemath.NodeIndex) bool {
		for {
			if _, ok := t.nodes[x]; ok {
				return true
			}
			if x == root {
				return false
			}
			x = x.Parent(t.leaves)
		}
	}
	for n, secret := range t.nodes {
		if n > 2*root {
			return fmt.Errorf("%w: node %d outside the tree", ErrInvalidState, n)
		}
		if len(secret) != t.suite.HashSize() {
			return fmt.Errorf("%w: node secret of %d bytes", ErrInvalidState, len(secret))
		}
		if n != root && hasStoredAncestor(n.Parent(t.leaves)) {
			return fmt.Errorf("%w: node %d and an ancestor both held", ErrInvalidState, n)
		}
	}
	for l, rs := range t.ratchets {
		if uint32(l) >= uint32(t.leaves) {
			return fmt.Errorf("%w: ratchet for leaf %d outside the tree", ErrInvalidState, l)
		}
		if hasStoredAncestor(l.Node()) {
			return fmt.Errorf("%w: leaf %d derived twice", ErrInvalidState, l)
		}
		for _, r := range rs {
			if len(r.secret) != t.suite.HashSize() {
				return fmt.Errorf("%w: ratchet secret of %d bytes", ErrInvalidState, len(r.secret))
			}
			if len(r.retained) > int(t.opts.MaxRetained) {
				return fmt.Errorf("%w: %d retained keys", ErrInvalidState, len(r.retained))
			}
			for i, k := range r.retained {
				if k.gen >= r.next || (i > 0 && k.gen <= r.retained[i-1].gen) ||
					len(k.key) != t.suite.KeySize() || len(k.nonce) != t.suite.NonceSize() {
					return fmt.Errorf("%w: retained key for generation %d", ErrInvalidState, k.gen)
				}
			}
		}
	}
	return nil
}
