package tui

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"hello":                        "hello",
		"two\nlines":                   "two\nlines",
		"tab\there":                    "tab here",
		"\x1b]0;pwned\x07title":        "]0;pwnedtitle",
		"\x1b[2Jclear":                 "[2Jclear",
		"c1\u009b31mred":               "c131mred",
		"bidi \u202eevil\u202c":        "bidi evil",
		"bad \xff utf8":                "bad \uFFFD utf8",
		"emoji 👍 and ünïcode":          "emoji 👍 and ünïcode",
		"del\x7f":                      "del",
		"isolate \u2066x\u2069 \u200f": "isolate x ",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cleanLine("a\nb"); got != "a b" {
		t.Errorf("cleanLine = %q", got)
	}
}

func TestSaveName(t *testing.T) {
	for in, want := range map[string]string{
		"notes.txt": "notes.txt", "../../etc/passwd": "passwd", "..": "file", ".": "file",
		"": "file", "a\\..\\b.txt": "b.txt", "/": "file", "x\x1b[2J.txt": "x[2J.txt",
	} {
		if got := saveName(in); got != want {
			t.Errorf("saveName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClean checks that no control or bidi-override rune survives, that
// the output is valid UTF-8, and that clean is idempotent.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "hi", "\x1b[31mred", "\u202e", "a\tb\nc", "\xff\xfe", "\u009b2J"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := clean(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		for _, r := range out {
			if r != '\n' && dangerous(r) || r == '\t' {
				t.Fatalf("clean(%q) kept %U", s, r)
			}
		}
		if clean(out) != out {
			t.Fatalf("clean is not idempotent on %q", s)
		}
		if l := cleanLine(s); strings.Contains(l, "\n") {
			t.Fatalf("cleanLine kept a newline")
		}
		if name := saveName(s); name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
			t.Fatalf("saveName(%q) = %q", s, name)
		}
	})
}
