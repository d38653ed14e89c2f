package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// editDistance is the Levenshtein distance, written plainly for the test.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev = cur
	}
	return prev[len(b)]
}

func TestRecoveryWordList(t *testing.T) {
	seen := map[string]bool{}
	for i, w := range recoveryWordList {
		if len(w) < 4 || len(w) > 6 {
			t.Errorf("word %d %q: length %d", i, w, len(w))
		}
		for _, c := range []byte(w) {
			if c < 'a' || c > 'z' {
				t.Errorf("word %d %q: character %q", i, w, c)
			}
		}
		if seen[w] {
			t.Errorf("word %q twice", w)
		}
		seen[w] = true
		if recoveryWordIndex[w] != byte(i) {
			t.Errorf("index of %q is %d, want %d", w, recoveryWordIndex[w], i)
		}
	}
	for i, a := range recoveryWordList {
		for _, b := range recoveryWordList[i+1:] {
			if strings.HasPrefix(a, b) || strings.HasPrefix(b, a) {
				t.Errorf("%q and %q: one is a prefix of the other", a, b)
			}
			if d := editDistance(a, b); d < 2 {
				t.Errorf("%q and %q are %d edit apart", a, b, d)
			}
			if withinOneEdit(a, b) {
				t.Errorf("withinOneEdit(%q, %q) = true", a, b)
			}
		}
	}
}

func TestWithinOneEdit(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"banana", "banana", true}, {"banana", "banan", true}, {"banana", "bananas", true},
		{"banana", "bonana", true}, {"banana", "xbanana", true}, {"banana", "anana", true},
		{"banana", "bnaana", false}, {"banana", "ban", false}, {"", "a", true}, {"ab", "ba", false},
	} {
		if got := withinOneEdit(c.a, c.b); got != c.want || (editDistance(c.a, c.b) <= 1) != c.want {
			t.Errorf("withinOneEdit(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func testRecoveryKey(t testing.TB, seed uint64) RecoveryKey {
	t.Helper()
	k, err := NewRecoveryKey(testRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewRecoveryKey(t *testing.T) {
	if testRecoveryKey(t, 1) == testRecoveryKey(t, 2) {
		t.Fatal("different randomness gave the same key")
	}
	if _, err := NewRecoveryKey(strings.NewReader("short")); err == nil {
		t.Fatal("short randomness accepted")
	}
}

func TestRecoveryWordsRoundTrip(t *testing.T) {
	keys := []RecoveryKey{{}, {0: 0xff}}
	var all RecoveryKey
	for i := range all {
		all[i] = 0xff
	}
	keys = append(keys, all)
	for s := range uint64(200) {
		keys = append(keys, testRecoveryKey(t, s))
	}
	for _, k := range keys {
		words := RecoveryWords(k)
		if len(words) != RecoveryWordCount {
			t.Fatalf("%d words", len(words))
		}
		got, err := ParseRecoveryWords(strings.Join(words, " "))
		if err != nil || got != k {
			t.Fatalf("round trip of %x: %x, %v", k, got, err)
		}
	}
	// A plain [32]byte is accepted and returned.
	var raw [32]byte = testRecoveryKey(t, 1)
	var back [32]byte
	back, err := ParseRecoveryWords(strings.Join(RecoveryWords(raw), " "))
	if err != nil || back != raw {
		t.Fatal("[32]byte round trip")
	}
}

func TestParseRecoveryWordsTolerant(t *testing.T) {
	k := testRecoveryKey(t, 7)
	words := RecoveryWords(k)
	var numbered strings.Builder
	for i, w := range words {
		fmt.Fprintf(&numbered, "%d. %s\n", i+1, w)
	}
	mixed := make([]string, len(words))
	for i, w := range words {
		if i%2 == 0 {
			mixed[i] = strings.ToUpper(w)
		} else {
			mixed[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	inputs := map[string]string{
		"extra spaces": "  " + strings.Join(words, "   ") + " \n",
		"tabs, lines":  strings.Join(words[:11], "\t") + "\n" + strings.Join(words[11:22], "\r\n") + "\n\n" + strings.Join(words[22:], " "),
		"mixed case":   strings.Join(mixed, " "),
		"commas":       strings.Join(words, ", "),
		"hyphens":      strings.Join(words, "-"),
		"numbered":     numbered.String(),
	}
	for name, in := range inputs {
		got, err := ParseRecoveryWords(in)
		if err != nil || got != k {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseRecoveryWordsUnknown(t *testing.T) {
	words := RecoveryWords(testRecoveryKey(t, 8))
	typo := words[6]
	typo = typo[:len(typo)-1] // drop the last letter
	words[6] = strings.ToUpper(typo)
	_, err := ParseRecoveryWords(strings.Join(words, " "))
	var uw *UnknownWordError
	if !errors.As(err, &uw) {
		t.Fatalf("error %v is not an UnknownWordError", err)
	}
	if uw.Position != 7 || uw.Word != typo {
		t.Fatalf("error names word %d %q, want 7 %q", uw.Position, uw.Word, typo)
	}
	if !errors.Is(err, ErrUnknownRecoveryWord) || !errors.Is(err, ErrRecoveryWords) {
		t.Fatalf("error %v does not wrap the sentinels", err)
	}
	if !strings.Contains(err.Error(), "word 7") || !strings.Contains(err.Error(), fmt.Sprintf("%q", typo)) {
		t.Fatalf("message %q does not name the word", err)
	}
	// A one-letter typo names the intended word; nonsense names none.
	if e := unknownWord(1, "banan"); e.Suggestion != "banana" {
		t.Fatalf("suggestion for banan = %q", e.Suggestion)
	}
	if e := unknownWord(1, "albrm"); e.Suggestion != "" { // alarm or album
		t.Fatalf("ambiguous typo suggests %q", e.Suggestion)
	}
	if e := unknownWord(1, "zzzzzz"); e.Suggestion != "" {
		t.Fatalf("suggestion for zzzzzz = %q", e.Suggestion)
	}
	if e := unknownWord(1, strings.Repeat("x", 100)); len(e.Word) != 32 {
		t.Fatalf("long word kept at %d characters", len(e.Word))
	}
}

func TestParseRecoveryWordsCount(t *testing.T) {
	words := RecoveryWords(testRecoveryKey(t, 9))
	for _, in := range []string{
		"",
		strings.Join(words[:32], " "),
		strings.Join(words, " ") + " alarm",
		strings.Repeat("alarm ", 1000),
		strings.Repeat(" ", maxRecoveryInput+1),
	} {
		_, err := ParseRecoveryWords(in)
		if !errors.Is(err, ErrRecoveryWords) || errors.Is(err, ErrRecoveryChecksum) {
			t.Errorf("input of %d bytes: %v", len(in), err)
		}
	}
}

// Every substitution of one word by another list word, at every position
// (checksum word included), must be refused by the checksum.
func TestRecoveryChecksumCatchesEverySubstitution(t *testing.T) {
	for seed := range uint64(3) {
		k := testRecoveryKey(t, seed)
		words := RecoveryWords(k)
		for pos := range words {
			orig := words[pos]
			for _, w := range recoveryWordList {
				if w == orig {
					continue
				}
				words[pos] = w
				if _, err := ParseRecoveryWords(strings.Join(words, " ")); !errors.Is(err, ErrRecoveryChecksum) {
					t.Fatalf("key %d: %q in place of %q at %d: %v", seed, w, orig, pos+1, err)
				}
			}
			words[pos] = orig
		}
	}
}

// Swapping any two different words must be refused by the checksum.
func TestRecoveryChecksumCatchesEverySwap(t *testing.T) {
	k := testRecoveryKey(t, 11)
	words := RecoveryWords(k)
	for i := range words {
		for j := i + 1; j < len(words); j++ {
			if words[i] == words[j] {
				continue
			}
			words[i], words[j] = words[j], words[i]
			if _, err := ParseRecoveryWords(strings.Join(words, " ")); !errors.Is(err, ErrRecoveryChecksum) {
				t.Fatalf("swap of words %d and %d: %v", i+1, j+1, err)
			}
			words[i], words[j] = words[j], words[i]
		}
	}
}

func TestRecoveryChecksumPinned(t *testing.T) {
	// Pins the word list and checksum: recovery words written down today must
	// parse in every later version.
	var k RecoveryKey
	for i := range k {
		k[i] = byte(i * 7)
	}
	got := strings.Join(RecoveryWords(k), " ")
	const want = "alarm apple bacon basket bridge button canoe chapel cobra cradle dinner duck " +
		"engine flame galaxy goblin hero indigo judge ladder linen marble museum nugget orbit " +
		"panda piano potato radar riddle school sister novel"
	if got != want {
		t.Fatalf("RecoveryWords = %q", got)
	}
}

func TestGFMul(t *testing.T) {
	// FIPS 197, Section 4.2: {57}·{83} = {c1}, {57}·{13} = {fe}.
	if gfMul(0x57, 0x83) != 0xc1 || gfMul(0x57, 0x13) != 0xfe {
		t.Fatal("gfMul disagrees with FIPS 197")
	}
	// 0x03 generates all 255 non-zero elements.
	seen := map[byte]bool{}
	x := byte(1)
	for range 255 {
		seen[x] = true
		x = gfMul(x, 3)
	}
	if len(seen) != 255 || x != 1 {
		t.Fatalf("0x03 has order < 255 (%d elements)", len(seen))
	}
}

func FuzzParseRecoveryWords(f *testing.F) {
	f.Add(strings.Join(RecoveryWords(testRecoveryKey(f, 1)), " "))
	f.Add("1. alarm 2. album")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseRecoveryWords(s)
		if err != nil {
			if !errors.Is(err, ErrRecoveryWords) {
				t.Fatalf("error %v does not wrap ErrRecoveryWords", err)
			}
			return
		}
		again, err := ParseRecoveryWords(strings.Join(RecoveryWords(k), " "))
		if err != nil || again != k {
			t.Fatalf("re-encoding does not parse back: %v", err)
		}
	})
}

func BenchmarkParseRecoveryWords(b *testing.B) {
	s := strings.Join(RecoveryWords(testRecoveryKey(b, 1)), " ")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecoveryWords(s); err != nil {
			b.Fatal(err)
		}
	}
}
