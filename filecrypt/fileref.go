package filecrypt

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// BlobIDSize is the size of a blob id.
const BlobIDSize = 32

// BlobID is the capability that names an uploaded ciphertext on the blob
// service. Whoever knows it can download the ciphertext, so it travels only
// inside end-to-end encrypted messages. Its text form is unpadded base64url.
type BlobID [BlobIDSize]byte

// String returns the unpadded base64url form used in blob URLs.
func (b BlobID) String() string { return base64.RawURLEncoding.EncodeToString(b[:]) }

// ParseBlobID parses the text form of a blob id.
func ParseBlobID(s string) (BlobID, error) {
	var b BlobID
	if base64.RawURLEncoding.DecodedLen(len(s)) != BlobIDSize {
		return BlobID{}, fmt.Errorf("%w: blob id has %d characters", ErrFileRef, len(s))
	}
	n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(s))
	if err != nil || n != BlobIDSize {
		return BlobID{}, fmt.Errorf("%w: blob id is not base64url", ErrFileRef)
	}
	return b, nil
}

// Limits of the text fields of a [FileRef].
const (
	MaxNameLen      = 255
	MaxMediaTypeLen = 255
	MaxOriginLen    = 255
	fileRefVersion  = 1
)

// ErrFileRef means a file reference is malformed.
var ErrFileRef = errors.New("filecrypt: invalid file reference")

// FileRef is what a recipient needs to fetch and decrypt a file. It travels
// inside an MLS application message, never to the server in clear.
type FileRef struct {
	Blob BlobID // where the ciphertext is
	Key  Key    // the file key
	// Hash is the SHA-256 of the plaintext, checked after decryption.
	Hash Hash
	// Size is the plaintext size in bytes.
	Size int64
	// Name is the file's base name as the sender saw it (UTF-8, no path
	// separators, no control characters, at most MaxNameLen bytes).
	Name string
	// MediaType is a MIME type such as "image/png" (printable ASCII, at most
	// MaxMediaTypeLen bytes; may be empty).
	MediaType string
	// Origin is the server that holds the blob (such as "example.org"), for
	// recipients on other servers; empty means the sender's own server.
	// Printable ASCII without spaces, at most MaxOriginLen bytes.
	Origin string
}

// Validate checks the reference's fields.
func (r *FileRef) Validate() error {
	if r.Size < 0 || r.Size > MaxSize {
		return fmt.Errorf("%w: size %d", ErrFileRef, r.Size)
	}
	if err := validName(r.Name); err != nil {
		return err
	}
	if len(r.MediaType) > MaxMediaTypeLen {
		return fmt.Errorf("%w: media type too long", ErrFileRef)
	}
	for i := 0; i < len(r.MediaType); i++ {
		if c := r.MediaType[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: media type is not printable ASCII", ErrFileRef)
		}
	}
	if len(r.Origin) > MaxOriginLen {
		return fmt.Errorf("%w: origin too long", ErrFileRef)
	}
	for i := 0; i < len(r.Origin); i++ {
		if c := r.Origin[i]; c <= 0x20 || c > 0x7e {
			return fmt.Errorf("%w: origin is not printable ASCII without spaces", ErrFileRef)
		}
	}
	return nil
}

func validName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: file name %q", ErrFileRef, name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: file name longer than %d bytes", ErrFileRef, MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: file name is not UTF-8", ErrFileRef)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("%w: file name contains a path separator", ErrFileRef)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: file name contains a control character", ErrFileRef)
	}
	return nil
}

// MarshalBinary encodes the reference:
//
//	uint8  version = 1
//	opaque blob[32]; opaque key[32]; opaque sha256[32]
//	uint64 size
//	opaque name<1..255>        (uint8 length)
//	opaque media_type<0..255>  (uint8 length)
//	opaque origin<0..255>      (uint8 length)
func (r *FileRef) MarshalBinary() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, 1+3*32+8+3+len(r.Name)+len(r.MediaType)+len(r.Origin)))
	b.AddUint8(fileRefVersion)
	b.AddBytes(r.Blob[:])
	b.AddBytes(r.Key[:])
	b.AddBytes(r.Hash[:])
	b.AddUint64(uint64(r.Size))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Name)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.MediaType)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Origin)) })
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("failed to encode file reference: %w", err)
	}
	return out, nil
}

// ParseFileRef decodes a reference written by [FileRef.MarshalBinary],
// rejecting unknown versions, invalid fields and trailing bytes.
func ParseFileRef(data []byte) (FileRef, error) {
	s := cryptobyte.String(data)
	var (
		r         FileRef
		version   uint8
		size      uint64
		name, typ cryptobyte.String
		origin    cryptobyte.String
	)
	if !s.ReadUint8(&version) {
		return FileRef{}, fmt.Errorf("%w: empty", ErrFileRef)
	}
	if version != fileRefVersion {
		return FileRef{}, fmt.Errorf("%w: version %d", ErrFileRef, version)
	}
	if !s.CopyBytes(r.Blob[:]) || !s.CopyBytes(r.Key[:]) || !s.CopyBytes(r.Hash[:]) ||
		!s.ReadUint64(&size) || !s.ReadUint8LengthPrefixed(&name) || !s.ReadUint8LengthPrefixed(&typ) ||
		!s.ReadUint8LengthPrefixed(&origin) {
		return FileRef{}, fmt.Errorf("%w: truncated", ErrFileRef)
	}
	if !s.Empty() {
		return FileRef{}, fmt.Errorf("%w: %d trailing bytes", ErrFileRef, len(s))
	}
	if size > MaxSize {
		return FileRef{}, fmt.Errorf("%w: size %d", ErrFileRef, size)
	}
	r.Size = int64(size)
	r.Name = string(name)
	r.MediaType = string(typ)
	r.Origin = string(origin)
	if err := r.Validate(); err != nil {
		return FileRef{}, err
	}
	return r, nil
}
