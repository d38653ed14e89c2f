// Package message defines every RFC 9420 wire structure as a Go type with a
// canonical encoder and a strict decoder.
//
// Each structure has an Encode method that appends it to a
// cryptobyte.Builder and a Decode method that reads it from a
// cryptobyte.String; Decode returns false on malformed input and never
// panics. Structures that arrive on their own (for example [MLSMessage],
// [KeyPackage], [Welcome], [GroupInfo], [GroupSecrets] and [RatchetTree])
// also have a top-level DecodeXxx function that rejects trailing bytes and
// wraps [codec.ErrDecode], and a Bytes method returning the encoding.
//
// Decoding follows the RFC's rules for unknown values: lists inside
// [Capabilities] and [Extensions] carry unknown (GREASE) types unchanged,
// while an unknown enum value that selects the shape of what follows (a
// proposal type, content type, wire format, sender type, credential type,
// leaf node source or PSK type) is a decoding error, because the rest of the
// message cannot be parsed.
//
// The package also holds the signatures and references that depend only on
// a structure and its cipher suite (LeafNode and KeyPackage signatures,
// GroupInfo signatures, KeyPackage and proposal references) and the
// validation checks that need no group state, such as
// [LeafNode.Validate] and [KeyPackage.Validate].
package message
