package server

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// This file holds the few RFC 9420 encodings the interop service must
// handle itself because package mls keeps its wire types internal: the
// ExternalSender structure (CreateExternalSigner returns it, AddExternalSigner
// receives it), the payloads of the required_capabilities and
// external_senders extensions (the runner sends extensions raw), and the
// GroupContext at the head of a GroupInfo (to read a group's current
// extensions). Everything is decoded strictly: minimal varints, bounded
// vectors, no trailing bytes.

// errDecode reports bytes that do not decode as the expected structure.
var errDecode = errors.New("interop: malformed encoding")

// Extension types of RFC 9420, Section 17.3, that the service interprets.
const extExternalSenders uint16 = 5

// credentialBasic is the basic credential type (RFC 9420, Section 5.3).
const credentialBasic uint16 = 1

// maxVector bounds every variable-length vector this file decodes (a
// ratchet tree of some ten thousand members fits).
const maxVector = 16 << 20

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

// rawExtension is an extension as the runner sends it.
type rawExtension struct {
	typ  uint16
	data []byte
}

// groupContextHead is the part of a GroupInfo the service reads: its
// GroupContext and its own extensions.
type groupContextHead struct {
	version, cipherSuite uint16
	groupID              []byte
	epoch                uint64
	extensions           []rawExtension
	// infoExtensions are the GroupInfo's extensions (ratchet_tree, ...).
	infoExtensions []rawExtension
}

// extRatchetTree is the ratchet_tree extension type.
const extRatchetTree uint16 = 2

// readExtensions reads an extension list.
func readExtensions(s *cryptobyte.String, out *[]rawExtension) bool {
	return readVector(s, func(body *cryptobyte.String) bool {
		for !body.Empty() {
			var e rawExtension
			if len(*out) == maxListItems || !body.ReadUint16(&e.typ) || !readOpaque(body, &e.data) {
				return false
			}
			*out = append(*out, e)
		}
		return true
	})
}

// find returns the data of the extension of type typ.
func findExtension(exts []rawExtension, typ uint16) ([]byte, bool) {
	for _, e := range exts {
		if e.typ == typ {
			return e.data, true
		}
	}
	return nil, false
}

// Wire constants of an MLSMessage carrying a GroupInfo.
const (
	mls10               uint16 = 1
	wireFormatGroupInfo uint16 = 4
)

// parseGroupInfoContext decodes the GroupContext and the extensions at the
// head of a GroupInfo MLSMessage. The rest (confirmation tag, signer,
// signature) is not examined, nor is anything verified: package mls verifies
// GroupInfos. The service only uses this to read ids, epochs and extensions
// to address proposals that the group itself then validates.
func parseGroupInfoContext(data []byte) (*groupContextHead, error) {
	s := cryptobyte.String(data)
	var version, wf uint16
	if !s.ReadUint16(&version) || version != mls10 || !s.ReadUint16(&wf) || wf != wireFormatGroupInfo {
		return nil, fmt.Errorf("%w: not an MLS 1.0 GroupInfo message", errDecode)
	}
	var h groupContextHead
	var treeHash, transcript []byte
	ok := s.ReadUint16(&h.version) && s.ReadUint16(&h.cipherSuite) && readOpaque(&s, &h.groupID) &&
		s.ReadUint64(&h.epoch) && readOpaque(&s, &treeHash) && readOpaque(&s, &transcript) &&
		readExtensions(&s, &h.extensions) && readExtensions(&s, &h.infoExtensions)
	if !ok {
		return nil, fmt.Errorf("%w: group context", errDecode)
	}
	return &h, nil
}

// leafIdentities decodes a ratchet tree (vector<optional<Node>>, RFC 9420,
// Section 12.4.3.3) far enough to list the identity of each leaf's basic
// credential, by leaf index; blank leaves and other credential types give
// nil. Like parseGroupInfoContext it verifies nothing.
func leafIdentities(tree []byte) ([][]byte, error) {
	s := cryptobyte.String(tree)
	var out [][]byte
	nodes := 0
	ok := readVector(&s, func(body *cryptobyte.String) bool {
		for !body.Empty() {
			var present, nodeType uint8
			if !body.ReadUint8(&present) || present > 1 {
				return false
			}
			leafPos := nodes%2 == 0
			nodes++
			if present == 0 {
				if leafPos {
					out = append(out, nil)
				}
				continue
			}
			if !body.ReadUint8(&nodeType) {
				return false
			}
			switch {
			case nodeType == 1 && leafPos:
				id, ok := readLeafIdentity(body)
				if !ok {
					return false
				}
				out = append(out, id)
			case nodeType == 2 && !leafPos:
				var key, hash, unmerged []byte
				if !readOpaque(body, &key) || !readOpaque(body, &hash) || !readOpaque(body, &unmerged) {
					return false
				}
			default:
				return false
			}
		}
		return true
	})
	if !ok || !s.Empty() {
		return nil, fmt.Errorf("%w: ratchet tree", errDecode)
	}
	return out, nil
}

// readLeafIdentity reads a LeafNode and returns its basic credential's
// identity (nil for other credential types).
func readLeafIdentity(s *cryptobyte.String) ([]byte, bool) {
	var encKey, sigKey, skip, identity []byte
	var credType uint16
	if !readOpaque(s, &encKey) || !readOpaque(s, &sigKey) || !s.ReadUint16(&credType) {
		return nil, false
	}
	switch credType {
	case credentialBasic:
		if !readOpaque(s, &identity) {
			return nil, false
		}
	case 2: // x509: vector of opaque certificates
		if !readOpaque(s, &skip) {
			return nil, false
		}
	default:
		return nil, false
	}
	for range 5 { // capabilities: versions, suites, extensions, proposals, credentials
		if !readOpaque(s, &skip) {
			return nil, false
		}
	}
	var source uint8
	if !s.ReadUint8(&source) {
		return nil, false
	}
	switch source {
	case 1: // key_package: lifetime
		var notBefore, notAfter uint64
		if !s.ReadUint64(&notBefore) || !s.ReadUint64(&notAfter) {
			return nil, false
		}
	case 2: // update
	case 3: // commit: parent hash
		if !readOpaque(s, &skip) {
			return nil, false
		}
	default:
		return nil, false
	}
	if !readOpaque(s, &skip) || !readOpaque(s, &skip) { // extensions, signature
		return nil, false
	}
	return identity, true
}
