package keyschedule

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// Errors returned by the secret tree.
var (
	// ErrUnknownLeaf is returned for a leaf index outside the tree.
	ErrUnknownLeaf = errors.New("mls: leaf index outside the secret tree")
	// ErrGenerationConsumed is returned for a generation whose key was
	// already used or fell out of the out-of-order window.
	ErrGenerationConsumed = errors.New("mls: ratchet generation already consumed or expired")
	// ErrGenerationTooFar is returned for a generation further ahead of the
	// ratchet than Options.MaxForward allows.
	ErrGenerationTooFar = errors.New("mls: ratchet generation too far ahead")
	// ErrRatchetExhausted is returned when a ratchet has no generation left.
	ErrRatchetExhausted = errors.New("mls: ratchet exhausted")
)

// RatchetType selects one of a leaf's two hash ratchets.
type RatchetType uint8

// The two ratchets of every leaf (RFC 9420, Section 9).
const (
	Handshake   RatchetType = 0
	Application RatchetType = 1
)

// String returns "handshake" or "application".
func (r RatchetType) String() string {
	if r == Handshake {
		return "handshake"
	}
	return "application"
}

// Default and maximum bounds of the out-of-order window.
const (
	DefaultMaxForward  = 1000
	DefaultMaxRetained = 128
	// MaxWindow bounds both options, so that one message cannot make a
	// receiver derive or store without limit.
	MaxWindow = 1 << 16
)

// Options bound the out-of-order window of every ratchet in a [SecretTree].
// A zero field takes its default.
type Options struct {
	// MaxForward is how many generations a received message may skip ahead
	// of the next expected one (default DefaultMaxForward).
	MaxForward uint32
	// MaxRetained is how many keys of skipped generations a ratchet keeps
	// for messages that arrive late (default DefaultMaxRetained). When more
	// are skipped, the oldest are erased.
	MaxRetained uint32
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxForward == 0 {
		o.MaxForward = DefaultMaxForward
	}
	if o.MaxRetained == 0 {
		o.MaxRetained = DefaultMaxRetained
	}
	if o.MaxForward > MaxWindow || o.MaxRetained > MaxWindow {
		return o, fmt.Errorf("%w: out-of-order window larger than %d", ErrInvalidState, MaxWindow)
	}
	return o, nil
}

// RatchetKey is the key and nonce of one ratchet generation. Erase it once
// the message is sealed or opened.
type RatchetKey struct {
	Generation uint32
	Key        []byte
	Nonce      []byte
}

// Erase zeroes the key and nonce.
func (k *RatchetKey) Erase() {
	clear(k.Key)
	clear(k.Nonce)
	k.Key, k.Nonce = nil, nil
}

// retainedKey is the key of a skipped generation kept for late messages.
type retainedKey struct {
	gen        uint32
	key, nonce []byte
}

// ratchet is one sender ratchet: secret is ratchet_secret_[next], and
// retained lists skipped generations below next in ascending order.
type ratchet struct {
	next     uint32
	secret   []byte
	retained []retainedKey
}

func (r *ratchet) erase() {
	clear(r.secret)
	r.secret = nil
	for i := range r.retained {
		clear(r.retained[i].key)
		clear(r.retained[i].nonce)
	}
	r.retained = nil
}

func (r *ratchet) clone() ratchet {
	c := ratchet{next: r.next, secret: clone(r.secret)}
	if r.retained != nil {
		c.retained = make([]retainedKey, len(r.retained))
		for i, k := range r.retained {
			c.retained[i] = retainedKey{gen: k.gen, key: clone(k.key), nonce: clone(k.nonce)}
		}
	}
	return c
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// SecretTree is an epoch's secret tree (RFC 9420, Section 9). Node secrets
// are derived on demand: only the leaves that send, and the siblings on their
// paths, are ever computed. A node's secret is erased as soon as both of its
// children are derived, a leaf's as soon as its ratchets are, and each
// ratchet secret and key as soon as it is used.
//
// A SecretTree is not safe for concurrent use.
type SecretTree struct {
	suite    *suite.Suite
	leaves   treemath.LeafCount
	opts     Options
	nodes    map[treemath.NodeIndex][]byte
	ratchets map[treemath.LeafIndex]*[2]ratchet
}

// NewSecretTree returns the secret tree of a group with the given number of
// leaves, rooted at encryptionSecret (which it copies; the caller erases its
// own copy).
func NewSecretTree(s *suite.Suite, encryptionSecret []byte, leaves treemath.LeafCount, opts Options) (*SecretTree, error) {
	if len(encryptionSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: encryption_secret must be %d bytes", ErrInvalidSecret, s.HashSize())
	}
	if leaves == 0 || leaves > 1<<30 {
		return nil, fmt.Errorf("%w: secret tree of %d leaves", ErrInvalidState, leaves)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &SecretTree{
		suite:    s,
		leaves:   leaves,
		opts:     opts,
		nodes:    map[treemath.NodeIndex][]byte{leaves.Root(): clone(encryptionSecret)},
		ratchets: make(map[treemath.LeafIndex]*[2]ratchet),
	}, nil
}

// NewSecretTree builds the epoch's secret tree from the encryption secret and
// erases that secret from e.
func (e *EpochSecrets) NewSecretTree(leaves treemath.LeafCount, opts Options) (*SecretTree, error) {
	if e.suite == nil || len(e.Encryption) == 0 {
		return nil, fmt.Errorf("%w: encryption secret already used", ErrInvalidState)
	}
	t, err := NewSecretTree(e.suite, e.Encryption, leaves, opts)
	if err != nil {
		return nil, err
	}
	clear(e.Encryption)
	e.Encryption = nil
	return t, nil
}

// LeafCount returns the number of leaves the tree was built for.
func (t *SecretTree) LeafCount() treemath.LeafCount { return t.leaves }

// Options returns the tree's out-of-order window.
func (t *SecretTree) Options() Options { return t.opts }

// Erase zeroes every secret in the tree. The tree is unusable afterwards.
func (t *SecretTree) Erase() {
	for n, s := range t.nodes {
		clear(s)
		delete(t.nodes, n)
	}
	for l, r := range t.ratchets {
		r[0].erase()
		r[1].erase()
		delete(t.ratchets, l)
	}
}

// Clone returns an independent deep copy of the tree, so that a caller can
// process a message on the copy and keep the original if it is rejected.
func (t *SecretTree) Clone() *SecretTree {
	c := &SecretTree{
		suite:    t.suite,
		leaves:   t.leaves,
		opts:     t.opts,
		nodes:    make(map[treemath.NodeIndex][]byte, len(t.nodes)),
		ratchets: make(map[treemath.LeafIndex]*[2]ratchet, len(t.ratchets)),
	}
	for n, s := range t.nodes {
		c.nodes[n] = clone(s)
	}
	for l, r := range t.ratchets {
		c.ratchets[l] = &[2]ratchet{r[0].clone(), r[1].clone()}
	}
	return c
}

func (t *SecretTree) checkLeaf(leaf treemath.LeafIndex, typ RatchetType) error {
	if uint32(leaf) >= uint32(t.leaves) {
		return fmt.Errorf("%w: leaf %d of %d", ErrUnknownLeaf, leaf, t.leaves)
	}
	if typ > Application {
		return fmt.Errorf("%w: ratchet type %d", ErrInvalidState, typ)
	}
	return nil
}

// storedAncestor returns the lowest node on the path from leaf to the root
// (the leaf included) whose secret is still held.
func (t *SecretTree) storedAncestor(leaf treemath.LeafIndex) (treemath.NodeIndex, bool) {
	root := t.leaves.Root()
	for x := leaf.Node(); ; x = x.Parent(t.leaves) {
		if _, ok := t.nodes[x]; ok {
			return x, true
		}
		if x == root {
			return 0, false
		}
	}
}

// childSecrets derives the secrets of the two children of a node.
func (t *SecretTree) childSecrets(secret []byte) (left, right []byte, err error) {
	n := t.suite.HashSize()
	if left, err = t.suite.ExpandWithLabel(secret, "tree", []byte("left"), n); err != nil {
		return nil, nil, err
	}
	if right, err = t.suite.ExpandWithLabel(secret, "tree", []byte("right"), n); err != nil {
		clear(left)
		return nil, nil, err
	}
	return left, right, nil
}

// leafSecret derives the secret of leaf without changing the tree.
func (t *SecretTree) leafSecret(leaf treemath.LeafIndex) ([]byte, error) {
	top, ok := t.storedAncestor(leaf)
	if !ok {
		return nil, fmt.Errorf("%w: no secret left for leaf %d", ErrInvalidState, leaf)
	}
	target := leaf.Node()
	secret := clone(t.nodes[top])
	for x := top; x != target; {
		left, right, err := t.childSecrets(secret)
		clear(secret)
		if err != nil {
			return nil, fmt.Errorf("failed to derive tree secret: %w", err)
		}
		if treemath.IsAncestor(x.Left(), target) || x.Left() == target {
			x, secret = x.Left(), left
			clear(right)
		} else {
			x, secret = x.Right(), right
			clear(left)
		}
	}
	return secret, nil
}

// ratchetRoots derives the handshake and application ratchet secrets of a
// leaf secret.
func (t *SecretTree) ratchetRoots(leafSecret []byte) (*[2]ratchet, error) {
	n := t.suite.HashSize()
	hs, err := t.suite.ExpandWithLabel(leafSecret, "handshake", nil, n)
	if err != nil {
		return nil, fmt.Errorf("failed to derive handshake ratchet: %w", err)
	}
	app, err := t.suite.ExpandWithLabel(leafSecret, "application", nil, n)
	if err != nil {
		clear(hs)
		return nil, fmt.Errorf("failed to derive application ratchet: %w", err)
	}
	return &[2]ratchet{{secret: hs}, {secret: app}}, nil
}

// peekRatchet returns the leaf's ratchet of the given type without changing
// the tree: the stored one, or a fresh one derived on a scratch copy. fresh
// reports whether the caller owns (and must erase) the result.
func (t *SecretTree) peekRatchet(leaf treemath.LeafIndex, typ RatchetType) (r *ratchet, fresh bool, err error) {
	if rs, ok := t.ratchets[leaf]; ok {
		return &rs[typ], false, nil
	}
	secret, err := t.leafSecret(leaf)
	if err != nil {
		return nil, false, err
	}
	defer clear(secret)
	rs, err := t.ratchetRoots(secret)
	if err != nil {
		return nil, false, err
	}
	rs[1-typ].erase()
	return &rs[typ], true, nil
}

// ratchet returns the leaf's ratchets, deriving and storing them (and the
// siblings on the way down) if needed, and erasing every node secret that is
// no longer needed.
func (t *SecretTree) ratchet(leaf treemath.LeafIndex) (*[2]ratchet, error) {
	if rs, ok := t.ratchets[leaf]; ok {
		return rs, nil
	}
	top, ok := t.storedAncestor(leaf)
	if !ok {
		return nil, fmt.Errorf("%w: no secret left for leaf %d", ErrInvalidState, leaf)
	}
	target := leaf.Node()
	for x := top; x != target; {
		left, right, err := t.childSecrets(t.nodes[x])
		if err != nil {
			return nil, fmt.Errorf("failed to derive tree secret: %w", err)
		}
		clear(t.nodes[x])
		delete(t.nodes, x)
		t.nodes[x.Left()], t.nodes[x.Right()] = left, right
		if treemath.IsAncestor(x.Left(), target) || x.Left() == target {
			x = x.Left()
		} else {
			x = x.Right()
		}
	}
	rs, err := t.ratchetRoots(t.nodes[target])
	if err != nil {
		return nil, err
	}
	clear(t.nodes[target])
	delete(t.nodes, target)
	t.ratchets[leaf] = rs
	return rs, nil
}

// genContext encodes a generation as DeriveTreeSecret's context.
func genContext(gen uint32) [4]byte {
	var ctx [4]byte
	binary.BigEndian.PutUint32(ctx[:], gen)
	return ctx
}

// keyAt derives the key and nonce of generation gen from x, an expander
// keyed with ratchet_secret_[gen].
func (t *SecretTree) keyAt(x *expander, gen uint32) (RatchetKey, error) {
	ctx := genContext(gen)
	key, err := x.expand("key", ctx[:], t.suite.KeySize())
	if err != nil {
		return RatchetKey{}, fmt.Errorf("failed to derive ratchet key: %w", err)
	}
	nonce, err := x.expand("nonce", ctx[:], t.suite.NonceSize())
	if err != nil {
		clear(key)
		return RatchetKey{}, fmt.Errorf("failed to derive ratchet nonce: %w", err)
	}
	return RatchetKey{Generation: gen, Key: key, Nonce: nonce}, nil
}

// nextSecret derives ratchet_secret_[gen+1] from x, keyed with
// ratchet_secret_[gen].
func (t *SecretTree) nextSecret(x *expander, gen uint32) ([]byte, error) {
	ctx := genContext(gen)
	next, err := x.expand("secret", ctx[:], t.suite.HashSize())
	if err != nil {
		return nil, fmt.Errorf("failed to advance ratchet: %w", err)
	}
	return next, nil
}

// advance replaces r.secret with the next generation's secret, using x if it
// is keyed with r.secret already.
func (t *SecretTree) advance(r *ratchet, x *expander) error {
	if r.next == math.MaxUint32 {
		return ErrRatchetExhausted
	}
	if x == nil {
		x = newExpander(t.suite, r.secret)
		defer x.erase()
	}
	next, err := t.nextSecret(x, r.next)
	if err != nil {
		return err
	}
	clear(r.secret)
	r.secret, r.next = next, r.next+1
	return nil
}

// Next returns the key for the next generation of the leaf's own ratchet and
// advances the ratchet, erasing its secret: the sender's side.
func (t *SecretTree) Next(leaf treemath.LeafIndex, typ RatchetType) (RatchetKey, error) {
	if err := t.checkLeaf(leaf, typ); err != nil {
		return RatchetKey{}, err
	}
	rs, err := t.ratchet(leaf)
	if err != nil {
		return RatchetKey{}, err
	}
	r := &rs[typ]
	if r.next == math.MaxUint32 {
		return RatchetKey{}, ErrRatchetExhausted
	}
	x := newExpander(t.suite, r.secret)
	defer x.erase()
	k, err := t.keyAt(x, r.next)
	if err != nil {
		return RatchetKey{}, err
	}
	if err := t.advance(r, x); err != nil {
		k.Erase()
		return RatchetKey{}, err
	}
	return k, nil
}

// checkGeneration reports whether gen is within reach of r.
func (t *SecretTree) checkGeneration(r *ratchet, gen uint32) error {
	if gen == math.MaxUint32 {
		return ErrRatchetExhausted
	}
	if gen >= r.next && gen-r.next > t.opts.MaxForward {
		return fmt.Errorf("%w: generation %d, expected %d", ErrGenerationTooFar, gen, r.next)
	}
	return nil
}

func findRetained(r *ratchet, gen uint32) int {
	for i := range r.retained {
		if r.retained[i].gen == gen {
			return i
		}
	}
	return -1
}

// Key returns the key of generation gen of a leaf's ratchet without
// changing the tree: the receiver's side. Call [SecretTree.Consume] once the
// message it opens has been accepted.
func (t *SecretTree) Key(leaf treemath.LeafIndex, typ RatchetType, gen uint32) (RatchetKey, error) {
	if err := t.checkLeaf(leaf, typ); err != nil {
		return RatchetKey{}, err
	}
	r, fresh, err := t.peekRatchet(leaf, typ)
	if err != nil {
		return RatchetKey{}, err
	}
	if fresh {
		defer r.erase()
	}
	if gen < r.next {
		i := findRetained(r, gen)
		if i < 0 {
			return RatchetKey{}, fmt.Errorf("%w: %s generation %d of leaf %d", ErrGenerationConsumed, typ, gen, leaf)
		}
		k := r.retained[i]
		return RatchetKey{Generation: gen, Key: clone(k.key), Nonce: clone(k.nonce)}, nil
	}
	if err := t.checkGeneration(r, gen); err != nil {
		return RatchetKey{}, err
	}
	x := newExpander(t.suite, r.secret)
	defer func() { x.erase() }()
	for g := r.next; g < gen; g++ {
		next, err := t.nextSecret(x, g)
		if err != nil {
			return RatchetKey{}, err
		}
		x.erase()
		x = newExpander(t.suite, next)
		clear(next)
	}
	return t.keyAt(x, gen)
}

// Consume marks generation gen of a leaf's ratchet as used: its key is
// erased, the ratchet moves past it, and the keys of skipped generations are
// kept (up to Options.MaxRetained, the oldest erased first) for late
// messages.
func (t *SecretTree) Consume(leaf treemath.LeafIndex, typ RatchetType, gen uint32) error {
	if err := t.checkLeaf(leaf, typ); err != nil {
		return err
	}
	// Check the bound before deriving anything, so that a rejected
	// generation leaves the tree as it was.
	probe := &ratchet{}
	if rs, ok := t.ratchets[leaf]; ok {
		probe = &rs[typ]
	}
	if err := t.checkGeneration(probe, gen); err != nil {
		return err
	}
	rs, err := t.ratchet(leaf)
	if err != nil {
		return err
	}
	r := &rs[typ]
	if gen < r.next {
		i := findRetained(r, gen)
		if i < 0 {
			return fmt.Errorf("%w: %s generation %d of leaf %d", ErrGenerationConsumed, typ, gen, leaf)
		}
		clear(r.retained[i].key)
		clear(r.retained[i].nonce)
		r.retained = append(r.retained[:i], r.retained[i+1:]...)
		return nil
	}
	if err := t.checkGeneration(r, gen); err != nil {
		return err
	}
	for r.next < gen {
		x := newExpander(t.suite, r.secret)
		if gen-r.next <= t.opts.MaxRetained {
			k, err := t.keyAt(x, r.next)
			if err != nil {
				x.erase()
				return err
			}
			r.retained = append(r.retained, retainedKey{gen: k.Generation, key: k.Key, nonce: k.Nonce})
		}
		err := t.advance(r, x)
		x.erase()
		if err != nil {
			return err
		}
	}
	if err := t.advance(r, nil); err != nil {
		return err
	}
	if extra := len(r.retained) - int(t.opts.MaxRetained); extra > 0 {
		for i := range extra {
			clear(r.retained[i].key)
			clear(r.retained[i].nonce)
		}
		r.retained = append(r.retained[:0], r.retained[extra:]...)
	}
	return nil
}
