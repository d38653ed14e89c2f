package message

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
)

// Extension is one typed extension (RFC 9420, Section 7.2). Unknown types are
// carried with their data unchanged.
type Extension struct {
	Type ExtensionType
	Data []byte
}

// Encode appends the extension to b.
func (e *Extension) Encode(b *cryptobyte.Builder) {
	b.AddUint16(uint16(e.Type))
	codec.AddOpaque(b, e.Data)
}

// Decode reads an extension from s.
func (e *Extension) Decode(s *cryptobyte.String) bool {
	var t uint16
	if !s.ReadUint16(&t) || !codec.ReadOpaque(s, &e.Data) {
		return false
	}
	e.Type = ExtensionType(t)
	return true
}

// Extensions is a list of extensions, Extension extensions<V>.
type Extensions []Extension

// Encode appends the list to b.
func (es Extensions) Encode(b *cryptobyte.Builder) {
	addList(b, es, func(b *cryptobyte.Builder, e Extension) { e.Encode(b) })
}

// Decode reads a list of extensions from s.
func (es *Extensions) Decode(s *cryptobyte.String) bool {
	var list []Extension
	if !readList(s, &list, func(s *cryptobyte.String, e *Extension) bool { return e.Decode(s) }) {
		return false
	}
	*es = list
	return true
}

// Find returns the first extension of type t, or nil.
func (es Extensions) Find(t ExtensionType) *Extension {
	for i := range es {
		if es[i].Type == t {
			return &es[i]
		}
	}
	return nil
}

// Has reports whether the list holds an extension of type t.
func (es Extensions) Has(t ExtensionType) bool { return es.Find(t) != nil }

// Types returns the extension types in order.
func (es Extensions) Types() []ExtensionType {
	out := make([]ExtensionType, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// Validate checks that no extension type appears twice (RFC 9420, Section
// 13.4).
func (es Extensions) Validate() error {
	seen := make(map[ExtensionType]struct{}, len(es))
	for _, e := range es {
		if _, dup := seen[e.Type]; dup {
			return fmt.Errorf("%w: 0x%04x", ErrDuplicateExtension, uint16(e.Type))
		}
		seen[e.Type] = struct{}{}
	}
	return nil
}

// Clone returns a deep copy of the list.
func (es Extensions) Clone() Extensions {
	if es == nil {
		return nil
	}
	out := make(Extensions, len(es))
	for i, e := range es {
		out[i] = Extension{Type: e.Type, Data: append([]byte(nil), e.Data...)}
	}
	return out
}
