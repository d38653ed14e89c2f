package store

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on. Errors returned by the store wrap one of
// these (test with errors.Is) or a database error.
var (
	// ErrNoProfile means the folder holds no profile: no key file or no
	// database.
	ErrNoProfile = errors.New("store: no profile in this folder")
	// ErrProfileExists is returned by Create when the folder already holds a
	// profile.
	ErrProfileExists = errors.New("store: a profile already exists in this folder")
	// ErrPassphraseRequired means the profile key is wrapped with a
	// passphrase and none was given.
	ErrPassphraseRequired = errors.New("store: this profile is protected by a passphrase")
	// ErrWrongPassphrase means the passphrase does not unwrap the profile key.
	ErrWrongPassphrase = errors.New("store: wrong passphrase")
	// ErrNoPassphraseSet means a passphrase was given for a profile that has
	// none.
	ErrNoPassphraseSet = errors.New("store: this profile has no passphrase")
	// ErrWrongKey means the profile key does not belong to this database
	// (for example, profile.key was replaced by another profile's key).
	ErrWrongKey = errors.New("store: the profile key does not open this database")
	// ErrBadKeyFile means profile.key is malformed.
	ErrBadKeyFile = errors.New("store: malformed profile key file")
	// ErrCorrupt means a stored value failed authentication or decoding: it
	// was altered, moved to another row, or damaged.
	ErrCorrupt = errors.New("store: stored value failed authentication")
	// ErrNotFound means the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrInvalid means an argument is out of range or malformed.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("store: closed")
	// ErrSeqTaken means the server sequence number given could not be
	// taken. A number held by another message is not an error (that message
	// is displaced, see [Tx.Displaced]); this is left for the corner cases
	// where that is impossible. The transaction stays usable: only the
	// failing statement was undone.
	ErrSeqTaken = errors.New("store: sequence number already used in this conversation")
	// ErrSchemaTooNew means the database was written by a newer version of
	// Parley whose schema this version does not know.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this program")
)

// CorruptError names the row whose stored value failed authentication or
// decoding. It matches [ErrCorrupt].
type CorruptError struct {
	Table  string
	Column string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *CorruptError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("store: stored %s.%s failed authentication: %v", e.Table, e.Column, e.Err)
	}
	return fmt.Sprintf("store: stored %s.%s failed authentication", e.Table, e.Column)
}

// Unwrap returns ErrCorrupt, so errors.Is(err, ErrCorrupt) holds.
func (e *CorruptError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrCorrupt, e.Err}
	}
	return []error{ErrCorrupt}
}

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
