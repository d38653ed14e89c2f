package server

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// This file holds the few RFC 9420 encodings the interop service must
// handle itself because package mls keeps its wire types internal: the
// ExternalSender structure (CreateExternalSigner returns it, AddExternalSigner
// receives it) and the payload of the external_senders extension, which
// AddExternalSigner extends. Everything is decoded strictly: minimal
// varints, bounded vectors, no trailing bytes.

// errDecode reports bytes that do not decode as the expected structure.
var errDecode = errors.New("interop: malformed encoding")

// extExternalSenders is the external_senders extension type (RFC 9420,
// Section 17.3).
const extExternalSenders uint16 = 5

// credentialBasic is the basic credential type (RFC 9420, Section 5.3).
const credentialBasic uint16 = 1

// maxVector bounds every variable-length vector this file decodes.
const maxVector = 1 << 20

// maxListItems bounds the number of items of a decoded list.
const maxListItems = 4096

// addVarint appends n as an RFC 9420 variable-length integer (Section 2.1.2).
func addVarint(b *cryptobyte.Builder, n int) {
	switch {
	case n < 1<<6:
		b.AddUint8(uint8(n))
	case n < 1<<14:
		b.AddUint16(uint16(n) | 0x4000)
	default:
		b.AddUint32(uint32(n) | 0x80000000)
	}
}

// readVarint reads a minimally encoded variable-length integer.
func readVarint(s *cryptobyte.String) (int, bool) {
	var first uint8
	if !s.ReadUint8(&first) {
		return 0, false
	}
	n := uint32(first & 0x3f)
	var extra int
	switch first >> 6 {
	case 0:
		return int(n), true
	case 1:
		extra = 1
	case 2:
		extra = 3
	default:
		return 0, false
	}
	for range extra {
		var c uint8
		if !s.ReadUint8(&c) {
			return 0, false
		}
		n = n<<8 | uint32(c)
	}
	// Reject non-minimal encodings.
	if (extra == 1 && n < 1<<6) || (extra == 3 && n < 1<<14) {
		return 0, false
	}
	return int(n), true
}

// addOpaque appends data as opaque<V>.
func addOpaque(b *cryptobyte.Builder, data []byte) {
	addVarint(b, len(data))
	b.AddBytes(data)
}

// addVector appends the bytes f builds, prefixed by their varint length.
func addVector(b *cryptobyte.Builder, f func(b *cryptobyte.Builder)) {
	var inner cryptobyte.Builder
	f(&inner)
	addOpaque(b, inner.BytesOrPanic())
}

// readOpaque reads an opaque<V> of at most maxVector bytes.
func readOpaque(s *cryptobyte.String, out *[]byte) bool {
	n, ok := readVarint(s)
	if !ok || n > maxVector {
		return false
	}
	var v []byte
	if !s.ReadBytes(&v, n) {
		return false
	}
	*out = append([]byte(nil), v...)
	return true
}

// readVector reads a varint-prefixed vector and hands its body to f.
func readVector(s *cryptobyte.String, f func(body *cryptobyte.String) bool) bool {
	n, ok := readVarint(s)
	if !ok || n > maxVector {
		return false
	}
	var body cryptobyte.String
	if !s.ReadBytes((*[]byte)(&body), n) {
		return false
	}
	return f(&body)
}

// externalSender is RFC 9420's ExternalSender (Section 12.1.8.1) with a
// basic credential.
type externalSender struct {
	signatureKey []byte
	identity     []byte
}

func (e *externalSender) encode(b *cryptobyte.Builder) {
	addOpaque(b, e.signatureKey)
	b.AddUint16(credentialBasic)
	addOpaque(b, e.identity)
}

func (e *externalSender) decode(s *cryptobyte.String) bool {
	var ct uint16
	return readOpaque(s, &e.signatureKey) && s.ReadUint16(&ct) && ct == credentialBasic && readOpaque(s, &e.identity)
}

// marshalExternalSender encodes one ExternalSender.
func marshalExternalSender(e *externalSender) []byte {
	var b cryptobyte.Builder
	e.encode(&b)
	return b.BytesOrPanic()
}

// parseExternalSender decodes one ExternalSender with a basic credential.
func parseExternalSender(data []byte) (*externalSender, error) {
	s := cryptobyte.String(data)
	var e externalSender
	if !e.decode(&s) || !s.Empty() {
		return nil, fmt.Errorf("%w: external sender", errDecode)
	}
	return &e, nil
}

// marshalExternalSenders encodes the external_senders extension payload.
func marshalExternalSenders(list []externalSender) []byte {
	var b cryptobyte.Builder
	addVector(&b, func(b *cryptobyte.Builder) {
		for i := range list {
			list[i].encode(b)
		}
	})
	return b.BytesOrPanic()
}

// parseExternalSenders decodes the external_senders extension payload.
func parseExternalSenders(data []byte) ([]externalSender, error) {
	s := cryptobyte.String(data)
	var out []externalSender
	ok := readVector(&s, func(body *cryptobyte.String) bool {
		for !body.Empty() {
			if len(out) == maxListItems {
				return false
			}
			var e externalSender
			if !e.decode(body) {
				return false
			}
			out = append(out, e)
		}
		return true
	})
	if !ok || !s.Empty() {
		return nil, fmt.Errorf("%w: external_senders extension", errDecode)
	}
	return out, nil
}
