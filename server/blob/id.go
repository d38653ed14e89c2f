package blob

import (
	"encoding/base64"
	"fmt"
	"io"
)

// IDSize is the size of a blob id in bytes.
const IDSize = 32

// ID is a blob's capability id: 32 random bytes, text form unpadded
// base64url.
type ID [IDSize]byte

// NewID reads a fresh id from rand.
func NewID(rand io.Reader) (ID, error) {
	var id ID
	if _, err := io.ReadFull(rand, id[:]); err != nil {
		return ID{}, fmt.Errorf("failed to generate blob id: %w", err)
	}
	return id, nil
}

// String returns the text form.
func (id ID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// ParseID parses the text form of an id.
func ParseID(s string) (ID, error) {
	var id ID
	if base64.RawURLEncoding.DecodedLen(len(s)) != IDSize {
		return ID{}, fmt.Errorf("%w: id has %d characters", ErrNotFound, len(s))
	}
	n, err := base64.RawURLEncoding.Strict().Decode(id[:], []byte(s))
	if err != nil || n != IDSize {
		return ID{}, fmt.Errorf("%w: id is not base64url", ErrNotFound)
	}
	return id, nil
}
