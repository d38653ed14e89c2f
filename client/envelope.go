package client

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/client/store"
)

// errEnvelope means a mailbox payload is malformed.
var errEnvelope = errors.New("client: malformed mailbox payload")

// welcomeVersion is the version of the Welcome envelope.
const welcomeVersion = 1

// marshalWelcome wraps an MLS Welcome for one added device: the chat kind
// and the reference of the KeyPackage it was made for, so the device finds
// its private key without trying each one.
//
//	uint8 version = 1; uint8 kind; opaque ref<1..255>; opaque welcome<1..2^24-1>
func marshalWelcome(kind store.ChatKind, ref []byte, welcome []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint8(welcomeVersion)
	b.AddUint8(uint8(kind))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ref) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(welcome) })
	return b.BytesOrPanic()
}

// unmarshalWelcome decodes marshalWelcome's output strictly.
func unmarshalWelcome(data []byte) (store.ChatKind, store.KeyPackageRef, []byte, error) {
	s := cryptobyte.String(data)
	var version, kind uint8
	var ref, welcome cryptobyte.String
	if !s.ReadUint8(&version) || version != welcomeVersion || !s.ReadUint8(&kind) ||
		!s.ReadUint8LengthPrefixed(&ref) || !s.ReadUint24LengthPrefixed(&welcome) || !s.Empty() {
		return 0, "", nil, errEnvelope
	}
	k := store.ChatKind(kind)
	if k != store.ChatDirect && k != store.ChatGroup && k != store.ChatSelf ||
		len(ref) == 0 || len(ref) > store.MaxKeyPackageRefLen || len(welcome) == 0 {
		return 0, "", nil, errEnvelope
	}
	return k, store.KeyPackageRef(ref), []byte(welcome), nil
}
