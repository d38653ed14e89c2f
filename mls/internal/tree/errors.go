package tree

import (
	"errors"
	"fmt"

	"github.com/parley-im/parley/mls/internal/treemath"
)

// Errors returned by this package. Validation failures wrap one of them in a
// [NodeError] naming the node at fault, so callers match with errors.Is and
// find the node with errors.As.
var (
	// ErrMalformedTree reports a tree whose structure is invalid: an empty
	// tree, a node of the wrong type at a position, a blank last node, an
	// unmerged leaf outside the tree, or too many leaves.
	ErrMalformedTree = errors.New("mls: malformed ratchet tree")
	// ErrBlankLeaf reports an operation on a leaf that is blank.
	ErrBlankLeaf = errors.New("mls: leaf is blank")
	// ErrLeafIndex reports a leaf index outside the tree.
	ErrLeafIndex = errors.New("mls: leaf index out of range")
	// ErrTreeHash reports a tree whose root hash is not the expected one.
	ErrTreeHash = errors.New("mls: tree hash mismatch")
	// ErrParentHash reports a parent node that is not parent-hash valid, or
	// a leaf whose parent_hash is not the one its path implies.
	ErrParentHash = errors.New("mls: invalid parent hash")
	// ErrUnmergedLeaves reports an invalid unmerged_leaves list.
	ErrUnmergedLeaves = errors.New("mls: invalid unmerged leaves")
	// ErrDuplicateKey reports an encryption or signature key that appears
	// in more than one place where it must be unique.
	ErrDuplicateKey = errors.New("mls: duplicate public key")
	// ErrInvalidLeaf reports a leaf node that fails validation (RFC 9420,
	// Section 7.3); the underlying cause is wrapped as well.
	ErrInvalidLeaf = errors.New("mls: invalid leaf node")
	// ErrIncompatible reports a leaf node whose capabilities do not meet
	// the group's required capabilities or the credential types in use.
	ErrIncompatible = errors.New("mls: leaf node incompatible with the group")
	// ErrInvalidPath reports an UpdatePath that does not fit the tree: the
	// wrong number of nodes or ciphertexts, an invalid key, or derived keys
	// that differ from the ones sent.
	ErrInvalidPath = errors.New("mls: invalid update path")
	// ErrNoPathKey reports that the member holds no private key with which
	// to decrypt an UpdatePath.
	ErrNoPathKey = errors.New("mls: no private key to decrypt the update path")
	// ErrPrivateKeys reports private keys that do not match the tree.
	ErrPrivateKeys = errors.New("mls: private keys do not match the tree")
)

// NodeError is a validation failure at one node of the tree.
type NodeError struct {
	Node treemath.NodeIndex
	Err  error
}

// Error describes the failure.
func (e *NodeError) Error() string {
	kind := "parent"
	if e.Node.IsLeaf() {
		return fmt.Sprintf("leaf %d (node %d): %v", e.Node.Leaf(), e.Node, e.Err)
	}
	return fmt.Sprintf("%s node %d: %v", kind, e.Node, e.Err)
}

// Unwrap returns the underlying error.
func (e *NodeError) Unwrap() error { return e.Err }

func nodeErr(x treemath.NodeIndex, sentinel error, format string, args ...any) error {
	return &NodeError{Node: x, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
