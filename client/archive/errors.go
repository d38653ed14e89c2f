package archive

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on. Errors returned by this package wrap
// one of these (test with errors.Is) or an error of the store or Remote.
var (
	// ErrMalformed means an archive blob or record does not decode: it is
	// truncated, has trailing bytes, an unknown version or a field out of
	// range.
	ErrMalformed = errors.New("archive: malformed record")
	// ErrTampered means a blob failed authentication: it was altered,
	// moved to another name, or sealed under another key.
	ErrTampered = errors.New("archive: blob failed authentication")
	// ErrUnknownGeneration means a key record is wrapped under an archive
	// key generation the keyring does not hold.
	ErrUnknownGeneration = errors.New("archive: unknown archive key generation")
	// ErrWrongRecoveryKey means the recovery words are not valid words, or
	// valid words of another recovery key: the bundle does not open.
	ErrWrongRecoveryKey = errors.New("archive: wrong recovery key")
	// ErrNotFound is returned by a [Remote] for a blob it does not hold.
	ErrNotFound = errors.New("archive: blob not found")
	// ErrInvalid means an argument is out of range or missing.
	ErrInvalid = errors.New("archive: invalid argument")
)

// malformedf returns an error wrapping ErrMalformed.
func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
