// Package content is the end-to-end content format of Parley: what travels
// inside MLS application messages. The server never sees it.
//
// A [Content] is encoded with [Marshal] into a strict binary form (TLS
// presentation style, see the format below) and padded to a size class, so
// that a typing notice, a read receipt and a short chat message look alike
// to anyone who only sees ciphertext sizes. [Unmarshal] accepts exactly one
// encoding per value: unknown versions and kinds, trailing bytes, over-long
// fields and non-zero padding are rejected.
//
// Format (version 1), big-endian:
//
//	uint8  version = 1
//	uint8  kind
//	opaque id[16]
//	opaque target[16]        // zero when the kind has none
//	uint64 sent_at           // Unix milliseconds
//	uint32 expire_after      // seconds; 0 = never
//	opaque body<0..2^24-1>    // KindDelivered: 1 to 256 ids of 16 bytes
//	opaque name<0..255>      // group name (KindGroupInfo), key (KindAccount)
//	opaque admins<0..2^16-1> // list of opaque account_id<1..255>
//	opaque padding<0..2^16-1> // all zero bytes
package content

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// Version is the format version this package writes.
const Version = 1

// ErrMalformed is wrapped by every error of [Unmarshal].
var ErrMalformed = errors.New("content: malformed")

// Kind says what a content is.
type Kind uint8

// Content kinds.
const (
	KindText      Kind = 1  // a chat message
	KindReply     Kind = 2  // a chat message replying to Target
	KindEdit      Kind = 3  // replaces Target's body
	KindDelete    Kind = 4  // deletes Target for everyone
	KindReaction  Kind = 5  // Body is the reaction; empty withdraws it
	KindReceipt   Kind = 6  // Target was read (sent only when enabled)
	KindTyping    Kind = 7  // Body is "1" (typing) or "0" (stopped)
	KindGroupInfo Kind = 8  // Name and Admins of a group
	KindTimer     Kind = 9  // ExpireAfter is the chat's disappearing timer
	KindSetting   Kind = 10 // self group: Body is "name=value"
	KindReadMark  Kind = 11 // self group: Body is "chat=seq" (read state)
	KindLastSeen  Kind = 12 // presence (sent only when enabled)
	KindLeave     Kind = 13 // the sender's account leaves the group
	KindAccount   Kind = 14 // self group: Name is a key, Body its account data
	KindFile      Kind = 15 // Body is a file descriptor (key, hash, size, name, type)
	KindDelivered Kind = 16 // Body is the ids (IDSize bytes each) of messages the sending device received
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= KindText && k <= KindDelivered }

// HasTarget reports whether contents of this kind must name a target.
func (k Kind) HasTarget() bool {
	return k == KindReply || k == KindEdit || k == KindDelete || k == KindReaction || k == KindReceipt
}

// Limits.
const (
	IDSize       = 16
	MaxBody      = 1 << 20
	MaxName      = 255
	MaxAdmins    = 1000
	MaxAccountID = 255
	// MaxDeliveredIDs is how many message ids one delivery receipt
	// (KindDelivered) acknowledges at most.
	MaxDeliveredIDs = 256
	// MaxReaction is the longest reaction (KindReaction body) in bytes:
	// any short text or emoji; a longer one is malformed.
	MaxReaction = 64
)

// ErrReactionTooLong is returned for a reaction over MaxReaction bytes or
// not valid UTF-8.
var ErrReactionTooLong = fmt.Errorf("content: a reaction is at most %d bytes of UTF-8", MaxReaction)

// ValidReaction reports whether body is an acceptable reaction: valid
// UTF-8 of at most MaxReaction bytes (empty withdraws a reaction).
func ValidReaction(body []byte) bool {
	return len(body) <= MaxReaction && utf8.Valid(body)
}

// ID is a message id.
type ID [IDSize]byte

// Content is one end-to-end message.
type Content struct {
	Kind        Kind
	ID          ID
	Target      ID
	SentAtMilli uint64
	ExpireAfter uint32
	Body        []byte
	Name        string
	Admins      []string
}

// sizeClass returns the padded size for an encoding of n bytes: powers of
// two from 256 up to 16 KiB, then multiples of 16 KiB.
func sizeClass(n int) int {
	c := 256
	for c < n && c < 16<<10 {
		c *= 2
	}
	if n <= c {
		return c
	}
	return (n + (16<<10 - 1)) / (16 << 10) * (16 << 10)
}

// Marshal encodes c, padded to its size class.
func Marshal(c *Content) ([]byte, error) {
	if c == nil || !c.Kind.Valid() {
		return nil, fmt.Errorf("content: cannot encode kind %v", c.Kind)
	}
	if len(c.Body) > MaxBody || len(c.Name) > MaxName || len(c.Admins) > MaxAdmins {
		return nil, errors.New("content: field over its limit")
	}
	if c.Kind.HasTarget() && c.Target == (ID{}) {
		return nil, errors.New("content: kind needs a target")
	}
	if c.Kind == KindDelivered && !validDelivered(c.Body) {
		return nil, errors.New("content: a delivery receipt lists 1 to MaxDeliveredIDs message ids")
	}
	if c.Kind == KindReaction && !ValidReaction(c.Body) {
		return nil, ErrReactionTooLong
	}
	var b cryptobyte.Builder
	b.AddUint8(Version)
	b.AddUint8(uint8(c.Kind))
	b.AddBytes(c.ID[:])
	b.AddBytes(c.Target[:])
	b.AddUint64(c.SentAtMilli)
	b.AddUint32(c.ExpireAfter)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.Body) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.Name)) })
	var adminErr error
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, a := range c.Admins {
			if len(a) == 0 || len(a) > MaxAccountID {
				adminErr = errors.New("content: bad admin id length")
				return
			}
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(a)) })
		}
	})
	if adminErr != nil {
		return nil, adminErr
	}
	head, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("content: failed to encode: %w", err)
	}
	pad := sizeClass(len(head)+2) - len(head) - 2
	if pad > 0xffff {
		pad = 0xffff
	}
	out := make([]byte, len(head), len(head)+2+pad)
	copy(out, head)
	out = append(out, byte(pad>>8), byte(pad))
	out = append(out, make([]byte, pad)...)
	return out, nil
}

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// Unmarshal decodes one content, strictly.
func Unmarshal(data []byte) (*Content, error) {
	s := cryptobyte.String(data)
	var c Content
	var version, kind uint8
	var id, target []byte
	if !s.ReadUint8(&version) || version != Version {
		return nil, malformed("unknown version")
	}
	if !s.ReadUint8(&kind) || !Kind(kind).Valid() {
		return nil, malformed("unknown kind")
	}
	c.Kind = Kind(kind)
	if !s.ReadBytes(&id, IDSize) || !s.ReadBytes(&target, IDSize) ||
		!s.ReadUint64(&c.SentAtMilli) || !s.ReadUint32(&c.ExpireAfter) {
		return nil, malformed("truncated header")
	}
	copy(c.ID[:], id)
	copy(c.Target[:], target)
	if c.Kind.HasTarget() && c.Target == (ID{}) {
		return nil, malformed("missing target")
	}
	var body, name, admins, pad cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&body) || len(body) > MaxBody {
		return nil, malformed("body")
	}
	if !s.ReadUint8LengthPrefixed(&name) {
		return nil, malformed("name")
	}
	if !s.ReadUint16LengthPrefixed(&admins) {
		return nil, malformed("admins")
	}
	for !admins.Empty() {
		var a cryptobyte.String
		if !admins.ReadUint8LengthPrefixed(&a) || len(a) == 0 || len(c.Admins) >= MaxAdmins {
			return nil, malformed("admin id")
		}
		c.Admins = append(c.Admins, string(a))
	}
	if !s.ReadUint16LengthPrefixed(&pad) || !s.Empty() {
		return nil, malformed("padding or trailing bytes")
	}
	for _, x := range pad {
		if x != 0 {
			return nil, malformed("non-zero padding")
		}
	}
	if c.Kind == KindDelivered && !validDelivered(body) {
		return nil, malformed("delivery receipt ids")
	}
	if c.Kind == KindReaction && !ValidReaction(body) {
		return nil, malformed("reaction over its limit")
	}
	if len(body) > 0 {
		c.Body = []byte(body)
	}
	c.Name = string(name)
	return &c, nil
}

func validDelivered(body []byte) bool {
	return len(body) > 0 && len(body)%IDSize == 0 && len(body) <= MaxDeliveredIDs*IDSize
}

// DeliveredIDs returns the message ids a delivery receipt (KindDelivered)
// acknowledges, or nil if c is not one.
func DeliveredIDs(c *Content) []ID {
	if c == nil || c.Kind != KindDelivered || !validDelivered(c.Body) {
		return nil
	}
	out := make([]ID, len(c.Body)/IDSize)
	for i := range out {
		copy(out[i][:], c.Body[i*IDSize:])
	}
	return out
}

// Delivered builds the body of a delivery receipt for ids (1 to
// MaxDeliveredIDs of them).
func Delivered(ids []ID) []byte {
	out := make([]byte, 0, len(ids)*IDSize)
	for _, id := range ids {
		out = append(out, id[:]...)
	}
	return out
}
