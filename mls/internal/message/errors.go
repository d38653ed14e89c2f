package message

import "errors"

// Validation errors. Each is returned wrapped with details, so callers match
// them with errors.Is.
var (
	// ErrLeafNodeSource reports a LeafNode whose leaf_node_source is not
	// the one its context requires.
	ErrLeafNodeSource = errors.New("mls: wrong leaf node source")
	// ErrLifetime reports a LeafNode lifetime that does not cover the
	// current time, is inverted, or is longer than allowed.
	ErrLifetime = errors.New("mls: invalid leaf node lifetime")
	// ErrCapabilities reports a LeafNode whose capabilities do not list its
	// own credential type or a non-default extension it carries.
	ErrCapabilities = errors.New("mls: capabilities do not cover the leaf node")
	// ErrDuplicateExtension reports a list of extensions holding the same
	// type twice.
	ErrDuplicateExtension = errors.New("mls: duplicate extension type")
	// ErrInitKeyReuse reports a KeyPackage whose init_key equals its leaf
	// node's encryption_key.
	ErrInitKeyReuse = errors.New("mls: key package init key equals leaf encryption key")
	// ErrVersion reports an unsupported protocol version.
	ErrVersion = errors.New("mls: unsupported protocol version")
	// ErrEncode reports a value that cannot be encoded because its fields
	// disagree (for example a proposal whose body does not match its type).
	ErrEncode = errors.New("mls: inconsistent value cannot be encoded")
	// ErrContentType reports content of the wrong type for an operation.
	ErrContentType = errors.New("mls: unexpected content type")
	// ErrCredential reports a credential that cannot be valid whatever the
	// authentication service says (an X.509 credential without a
	// certificate).
	ErrCredential = errors.New("mls: invalid credential")
)
