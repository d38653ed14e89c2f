package tui

import (
	"strings"
	"unicode/utf8"

	"github.com/parley-im/parley/client/store"
)

// clean makes text from peers and servers safe to draw: it removes control
// characters (C0 but newline, DEL, C1), so nobody can send escape sequences
// that move the cursor, change the title or redraw the screen, and it
// removes bidirectional overrides that could disguise a name or a link.
// Tabs become spaces and invalid UTF-8 becomes U+FFFD.
func clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\n':
			b.WriteRune(r)
		case r == '\t':
			b.WriteByte(' ')
		case dangerous(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cleanLine is clean on one line: newlines become spaces.
func cleanLine(s string) string { return strings.ReplaceAll(clean(s), "\n", " ") }

func isClean(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r != '\n' && (r == '\t' || dangerous(r)) {
			return false
		}
	}
	return true
}

// dangerous reports control and bidi-override runes.
func dangerous(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// cleanMessage cleans a stored message's text in place (file messages carry
// a binary descriptor, which fileText reads and cleans).
func cleanMessage(m *store.Message) {
	if m != nil && m.Kind != store.KindFile {
		m.Body = []byte(clean(string(m.Body)))
	}
}
