package identity

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these
// (or [ErrInvalidID] from ids.go), so callers can branch with [errors.Is].
var (
	// ErrBadSignature is returned when a signature does not verify under the
	// key it claims to be made with.
	ErrBadSignature = errors.New("identity: bad signature")

	// ErrMalformed is returned when bytes are not a well-formed encoding:
	// wrong version, wrong lengths, out-of-range values or trailing bytes.
	ErrMalformed = errors.New("identity: malformed encoding")

	// ErrInvalidKey is returned when a key has the wrong size or is not a
	// valid key for its algorithm.
	ErrInvalidKey = errors.New("identity: invalid key")

	// ErrUnsupportedSuite is returned for an MLS cipher suite whose
	// signature scheme this package does not implement.
	ErrUnsupportedSuite = errors.New("identity: unsupported MLS cipher suite")

	// ErrInvalidDomain is returned when a signature domain label is empty or
	// longer than 255 bytes.
	ErrInvalidDomain = errors.New("identity: invalid signature domain")

	// ErrInvalidTime is returned when a creation time lies outside the years
	// 1970 to 9999.
	ErrInvalidTime = errors.New("identity: time out of range")
)
