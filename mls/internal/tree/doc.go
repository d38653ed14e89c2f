// Package tree implements the MLS ratchet tree (RFC 9420, Sections 4, 7 and
// 12.4.3): the array of leaf and parent nodes, the tree operations that
// proposals perform (add, update, remove, truncate), resolutions and
// filtered direct paths, tree and parent hashes, TreeKEM (creating and
// processing an UpdatePath), validation of a tree received on joining, and
// the ratchet_tree encoding.
//
// A [Tree] holds the public state. Tree hashes are cached per node and
// invalidated along the paths a change touches, so a commit in a large group
// rehashes O(log n) nodes, not the whole tree. Nodes handed to a Tree, and
// nodes it hands out, are shared and must not be modified; the tree replaces
// nodes instead of changing them, which makes [Tree.Clone] cheap.
//
// A [PrivateKeys] holds one member's HPKE private keys: its leaf's and those
// of the parent nodes on its direct path that it knows. Keys that are
// replaced or dropped are zeroed.
//
// The usual flows:
//
//   - joining: [Decode] (or [FromRatchetTree]), then [Tree.Validate];
//   - committing with a path: [Tree.GenerateUpdatePath];
//   - processing a commit's path: [Tree.MergeUpdatePath], build the
//     provisional group context from [Tree.TreeHash], then
//     [Tree.DecryptPath] (or both at once with [Tree.ProcessUpdatePath]).
//
// A Tree and a PrivateKeys are not safe for concurrent use; even reading a
// tree hash may fill the cache.
package tree
