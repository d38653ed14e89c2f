package tree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
)

// updatePathLabel is the EncryptWithLabel label for path secrets.
const updatePathLabel = "UpdatePathNode"

// PathParams are the inputs of [Tree.GenerateUpdatePath].
type PathParams struct {
	// Rand supplies the fresh leaf secret.
	Rand io.Reader
	// Signer signs the new leaf node; its public key must be the leaf's
	// SignatureKey.
	Signer *suite.Signer
	// GroupID is signed into the new leaf node.
	GroupID message.GroupID
	// Leaf is the template of the committer's new leaf node: its
	// signature key, credential, capabilities and extensions are kept;
	// the encryption key, source, parent hash and signature are set here.
	Leaf *message.LeafNode
	// Exclude lists the leaves added by the same commit, to which no path
	// secret is encrypted.
	Exclude []treemath.LeafIndex
	// GroupContext returns the encoded provisional GroupContext for the
	// tree hash of the tree with the path applied; path secrets are
	// encrypted with it as context.
	GroupContext func(treeHash []byte) ([]byte, error)
}

// PathResult is what a committer keeps from [Tree.GenerateUpdatePath].
type PathResult struct {
	// Path is the UpdatePath to put in the Commit.
	Path *message.UpdatePath
	// CommitSecret is the commit_secret for the key schedule.
	CommitSecret []byte
	// Keys is the committer's new private key set (its new leaf key and
	// the keys of its filtered direct path); it replaces the old set.
	Keys *PrivateKeys

	leaf    treemath.LeafIndex
	nodes   []treemath.NodeIndex
	secrets [][]byte
}

// PathSecret returns the path secret to send in a new member's GroupSecrets:
// the one of the lowest common ancestor of the committer and member, with
// that node.
func (r *PathResult) PathSecret(member treemath.LeafIndex) ([]byte, treemath.NodeIndex, bool) {
	x := treemath.CommonAncestor(r.leaf.Node(), member.Node())
	i := slices.Index(r.nodes, x)
	if i < 0 {
		return nil, 0, false
	}
	return slices.Clone(r.secrets[i]), x, true
}

// Destroy zeroes the path secrets and the commit secret. It leaves Keys
// alone, which now belong to the caller.
func (r *PathResult) Destroy() {
	for _, s := range r.secrets {
		clear(s)
	}
	clear(r.CommitSecret)
	r.secrets = nil
}

// GenerateUpdatePath refreshes the path of the member at leaf from, as a
// committer does (RFC 9420, Sections 7.4 and 7.5): it draws a leaf secret,
// derives the new leaf key and a path secret and key pair for each node of
// the filtered direct path, applies them to the tree with their parent
// hashes, signs the new leaf node, and encrypts each path secret to the
// resolution of the copath child, leaving out p.Exclude. The leaf at from
// may be blank (an external joiner's). On error the tree may be partly
// changed, so callers work on a [Tree.Clone].
func (t *Tree) GenerateUpdatePath(from treemath.LeafIndex, p PathParams) (*PathResult, error) {
	if int64(from) >= int64(len(t.leaves)) {
		return nil, fmt.Errorf("%w: %d", ErrLeafIndex, from)
	}
	if p.Rand == nil || p.Signer == nil || p.Leaf == nil || p.GroupContext == nil {
		return nil, errors.New("mls: incomplete update path parameters")
	}
	if !bytes.Equal(p.Signer.Public(), p.Leaf.SignatureKey) {
		return nil, fmt.Errorf("%w: signer does not match the leaf's signature key", ErrInvalidLeaf)
	}
	cs := t.cs
	path, copath := t.FilteredDirectPath(from)

	r := &PathResult{leaf: from, nodes: path, secrets: make([][]byte, len(path))}
	fail := func(err error) (*PathResult, error) {
		r.Destroy()
		if r.Keys != nil {
			r.Keys.Destroy()
		}
		return nil, err
	}
	leafSecret := make([]byte, cs.HashSize())
	defer clear(leafSecret)
	if _, err := io.ReadFull(p.Rand, leafSecret); err != nil {
		return fail(fmt.Errorf("failed to draw leaf secret: %w", err))
	}
	leafPriv, leafPub, err := deriveNodeKey(cs, leafSecret)
	if err != nil {
		return fail(fmt.Errorf("failed to derive leaf key: %w", err))
	}
	r.Keys = &PrivateKeys{cs: cs, leaf: from}
	r.Keys.set(from.Node(), leafPriv, leafPub)

	secret, err := cs.DeriveSecret(leafSecret, "path")
	if err != nil {
		return fail(err)
	}
	for i := range path {
		r.secrets[i] = secret
		if secret, err = cs.DeriveSecret(secret, "path"); err != nil {
			return fail(err)
		}
	}
	r.CommitSecret = secret
	privs, pubs, err := deriveNodeKeys(cs, r.secrets)
	if err != nil {
		return fail(fmt.Errorf("failed to derive path key: %w", err))
	}
	for i, x := range path {
		r.Keys.set(x, privs[i], pubs[i])
	}

	fields, leafParentHash := t.pathParentHashes(copath, pubs)
	leaf := *p.Leaf
	leaf.EncryptionKey = leafPub
	leaf.Source = message.SourceCommit
	leaf.Lifetime = message.Lifetime{}
	leaf.ParentHash = leafParentHash
	if err := leaf.Sign(p.Signer, p.GroupID, from); err != nil {
		return fail(err)
	}
	if err := checkEncodable(&leaf); err != nil {
		return fail(err)
	}

	t.BlankPath(from)
	for i, x := range path {
		t.setParent(x, &message.ParentNode{EncryptionKey: pubs[i], ParentHash: fields[i]})
	}
	t.setLeaf(from, &leaf)
	ctx, err := p.GroupContext(t.TreeHash())
	if err != nil {
		return fail(fmt.Errorf("failed to build group context: %w", err))
	}

	up := &message.UpdatePath{LeafNode: leaf, Nodes: make([]message.UpdatePathNode, len(path))}
	var recipients []treemath.NodeIndex
	var slots [][2]int
	for i := range path {
		res := t.resolutionExcluding(copath[i], p.Exclude)
		up.Nodes[i] = message.UpdatePathNode{
			EncryptionKey:       pubs[i],
			EncryptedPathSecret: make([]message.HPKECiphertext, len(res)),
		}
		for j, y := range res {
			recipients = append(recipients, y)
			slots = append(slots, [2]int{i, j})
		}
	}
	err = parallel(len(recipients), func(k int) error {
		i, j := slots[k][0], slots[k][1]
		kem, ct, err := cs.EncryptWithLabel(t.EncryptionKey(recipients[k]), updatePathLabel, ctx, r.secrets[i])
		if err != nil {
			return fmt.Errorf("failed to encrypt path secret to node %d: %w", recipients[k], err)
		}
		up.Nodes[i].EncryptedPathSecret[j] = message.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	r.Path = up
	return r, nil
}

// deriveNodeKeys derives the key pair of each path secret, on all cores.
func deriveNodeKeys(cs *suite.Suite, secrets [][]byte) ([]HPKEPrivateKey, []message.HPKEPublicKey, error) {
	privs := make([]HPKEPrivateKey, len(secrets))
	pubs := make([]message.HPKEPublicKey, len(secrets))
	err := parallel(len(secrets), func(i int) error {
		var err error
		privs[i], pubs[i], err = deriveNodeKey(cs, secrets[i])
		return err
	})
	if err != nil {
		for _, p := range privs {
			clear(p)
		}
		return nil, nil, err
	}
	return privs, pubs, nil
}

// resolutionExcluding returns the resolution of x without the leaves in
// exclude.
func (t *Tree) resolutionExcluding(x treemath.NodeIndex, exclude []treemath.LeafIndex) []treemath.NodeIndex {
	res := t.appendResolution(nil, x)
	if len(exclude) == 0 {
		return res
	}
	return slices.DeleteFunc(res, func(y treemath.NodeIndex) bool {
		return y.IsLeaf() && slices.Contains(exclude, y.Leaf())
	})
}

// MergeUpdatePath validates the UpdatePath a member at sender sent and
// merges it into the tree (RFC 9420, Section 7.5): the path must have one
// node per node of sender's filtered direct path, one ciphertext per node of
// each copath child's resolution without the leaves in exclude (the ones
// added by the same commit), valid public keys that appear nowhere in the
// tree, and a leaf node of source commit whose parent_hash is the one the
// path implies. The caller validates the leaf node itself first (see
// [Tree.ValidateLeafNode]). On error the tree is unchanged.
func (t *Tree) MergeUpdatePath(sender treemath.LeafIndex, path *message.UpdatePath, exclude []treemath.LeafIndex) error {
	if int64(sender) >= int64(len(t.leaves)) {
		return fmt.Errorf("%w: %d", ErrLeafIndex, sender)
	}
	fdp, copath := t.FilteredDirectPath(sender)
	if len(path.Nodes) != len(fdp) {
		return fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrInvalidPath, len(path.Nodes), len(fdp))
	}
	if path.LeafNode.Source != message.SourceCommit {
		return nodeErr(sender.Node(), ErrInvalidPath, "leaf node source %d is not commit", path.LeafNode.Source)
	}
	pubs := make([]message.HPKEPublicKey, len(fdp))
	fresh := make(map[string]treemath.NodeIndex, len(fdp)+1)
	fresh[string(path.LeafNode.EncryptionKey)] = sender.Node()
	for i, n := range path.Nodes {
		if err := t.cs.ValidateHPKEPublicKey(n.EncryptionKey); err != nil {
			return nodeErr(fdp[i], ErrInvalidPath, "%v", err)
		}
		if _, dup := fresh[string(n.EncryptionKey)]; dup {
			return nodeErr(fdp[i], ErrDuplicateKey, "encryption key repeated in the update path")
		}
		fresh[string(n.EncryptionKey)] = fdp[i]
		pubs[i] = n.EncryptionKey
		if want := len(t.resolutionExcluding(copath[i], exclude)); len(n.EncryptedPathSecret) != want {
			return nodeErr(fdp[i], ErrInvalidPath, "%d encrypted path secrets for a resolution of %d", len(n.EncryptedPathSecret), want)
		}
	}
	if x, ok := t.findKey(fresh); ok {
		return nodeErr(x, ErrDuplicateKey, "update path key already in the tree")
	}
	fields, leafParentHash := t.pathParentHashes(copath, pubs)
	if !bytes.Equal(leafParentHash, path.LeafNode.ParentHash) {
		return nodeErr(sender.Node(), ErrParentHash, "leaf parent_hash does not match its update path")
	}
	leaf := path.LeafNode
	if err := checkEncodable(&leaf); err != nil {
		return err
	}
	t.BlankPath(sender)
	for i, x := range fdp {
		t.setParent(x, &message.ParentNode{EncryptionKey: pubs[i], ParentHash: fields[i]})
	}
	t.setLeaf(sender, &leaf)
	return nil
}

// findKey returns a node of the tree whose encryption key is in keys. It
// scans every node, so it tests an 8-byte prefix of each key against a
// small bit filter first and hashes the whole key only on a hit.
func (t *Tree) findKey(keys map[string]treemath.NodeIndex) (treemath.NodeIndex, bool) {
	var filter [64]uint64 // 4096 bits
	slot := func(k []byte) uint {
		var p uint64
		if len(k) >= 8 {
			p = binary.LittleEndian.Uint64(k)
		} else {
			for i, c := range k {
				p |= uint64(c) << (8 * i)
			}
		}
		return uint((p * 0x9e3779b97f4a7c15) >> 52)
	}
	for k := range keys {
		s := slot([]byte(k))
		filter[s>>6] |= 1 << (s & 63)
	}
	hit := func(k []byte) bool {
		s := slot(k)
		if filter[s>>6]&(1<<(s&63)) == 0 {
			return false
		}
		_, ok := keys[string(k)]
		return ok
	}
	for i, l := range t.leaves {
		if l != nil && hit(l.EncryptionKey) {
			return treemath.LeafIndex(i).Node(), true
		}
	}
	for i, p := range t.parents {
		if p != nil && hit(p.EncryptionKey) {
			return treemath.NodeIndex(2*i + 1), true
		}
	}
	return 0, false
}

// DecryptPath decrypts the path secret that the member holding keys can
// read from an UpdatePath sent by sender and already merged with
// [Tree.MergeUpdatePath] (RFC 9420, Section 7.5): it finds the node of the
// sender's filtered direct path whose copath child holds the member, the
// node of that child's resolution (without exclude) whose private key it
// holds, decrypts with groupContext (the encoded provisional GroupContext) as
// context, derives the path secrets and key pairs up to the root, checks
// each public key against the path, installs the new keys (zeroing the
// replaced ones) and returns the commit secret. On error keys is unchanged.
func (t *Tree) DecryptPath(keys *PrivateKeys, sender treemath.LeafIndex, path *message.UpdatePath, exclude []treemath.LeafIndex, groupContext []byte) ([]byte, error) {
	ps, commit, err := t.decryptPath(keys, sender, path, exclude, groupContext)
	clear(ps)
	return commit, err
}

// decryptPath is DecryptPath that also returns the decrypted path secret.
func (t *Tree) decryptPath(keys *PrivateKeys, sender treemath.LeafIndex, path *message.UpdatePath, exclude []treemath.LeafIndex, groupContext []byte) (pathSecret, commitSecret []byte, err error) {
	cs := t.cs
	me := keys.leaf
	if me == sender {
		return nil, nil, fmt.Errorf("%w: the committer does not decrypt its own path", ErrNoPathKey)
	}
	if int64(sender) >= int64(len(t.leaves)) || int64(me) >= int64(len(t.leaves)) {
		return nil, nil, fmt.Errorf("%w: sender %d or member %d outside the tree", ErrLeafIndex, sender, me)
	}
	fdp, copath := t.FilteredDirectPath(sender)
	if len(path.Nodes) != len(fdp) {
		return nil, nil, fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrInvalidPath, len(path.Nodes), len(fdp))
	}
	start := slices.IndexFunc(copath, func(c treemath.NodeIndex) bool { return treemath.IsAncestor(c, me.Node()) })
	if start < 0 {
		return nil, nil, fmt.Errorf("%w: leaf %d is under no copath node of leaf %d", ErrNoPathKey, me, sender)
	}
	res := t.resolutionExcluding(copath[start], exclude)
	slot := slices.IndexFunc(res, keys.Has)
	if slot < 0 {
		return nil, nil, fmt.Errorf("%w: none of the resolution of node %d", ErrNoPathKey, copath[start])
	}
	cts := path.Nodes[start].EncryptedPathSecret
	if slot >= len(cts) {
		return nil, nil, nodeErr(fdp[start], ErrInvalidPath, "no ciphertext for resolution position %d", slot)
	}
	nk, _ := keys.key(res[slot])
	secret, err := cs.DecryptWithLabel(nk.priv, updatePathLabel, groupContext, cts[slot].KEMOutput, cts[slot].Ciphertext)
	if err != nil {
		return nil, nil, nodeErr(fdp[start], ErrInvalidPath, "failed to decrypt path secret: %v", err)
	}
	if len(secret) != cs.HashSize() {
		clear(secret)
		return nil, nil, nodeErr(fdp[start], ErrInvalidPath, "path secret of %d bytes", len(secret))
	}
	pathSecret = slices.Clone(secret)

	// The chain of path secrets is cheap; the key pairs are derived on
	// all cores.
	secrets := make([][]byte, 0, len(fdp)-start)
	secrets = append(secrets, secret)
	fail := func(err error) ([]byte, []byte, error) {
		for _, s := range secrets {
			clear(s)
		}
		clear(pathSecret)
		return nil, nil, err
	}
	for k := start + 1; k <= len(fdp); k++ {
		next, err := cs.DeriveSecret(secrets[len(secrets)-1], "path")
		if err != nil {
			return fail(err)
		}
		secrets = append(secrets, next)
	}
	commitSecret = secrets[len(secrets)-1]
	secrets = secrets[:len(secrets)-1]
	privs, pubs, err := deriveNodeKeys(cs, secrets)
	if err != nil {
		clear(commitSecret)
		return fail(err)
	}
	for i, pub := range pubs {
		if !bytes.Equal(pub, path.Nodes[start+i].EncryptionKey) {
			for _, p := range privs {
				clear(p)
			}
			clear(commitSecret)
			return fail(nodeErr(fdp[start+i], ErrInvalidPath, "derived public key differs from the one sent"))
		}
	}
	for _, s := range secrets {
		clear(s)
	}
	for _, x := range sender.Node().DirectPath(t.LeafCount()) {
		if treemath.IsAncestor(x, me.Node()) {
			keys.drop(x)
		}
	}
	for i := range privs {
		keys.set(fdp[start+i], privs[i], pubs[i])
	}
	return pathSecret, commitSecret, nil
}

// ProcessUpdatePath merges an UpdatePath from sender ([Tree.MergeUpdatePath]),
// builds the provisional group context from the new tree hash with
// groupContext, and decrypts the path ([Tree.DecryptPath]), returning the
// commit secret. On error keys is unchanged but the tree may have been
// merged, so callers work on a [Tree.Clone].
func (t *Tree) ProcessUpdatePath(keys *PrivateKeys, sender treemath.LeafIndex, path *message.UpdatePath, exclude []treemath.LeafIndex, groupContext func(treeHash []byte) ([]byte, error)) ([]byte, error) {
	if err := t.MergeUpdatePath(sender, path, exclude); err != nil {
		return nil, err
	}
	ctx, err := groupContext(t.TreeHash())
	if err != nil {
		return nil, fmt.Errorf("failed to build group context: %w", err)
	}
	return t.DecryptPath(keys, sender, path, exclude, ctx)
}
