package identity

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// RecoveryKeySize is the size of a recovery key in bytes (256 bits).
const RecoveryKeySize = 32

// RecoveryWordCount is the number of words a recovery key is written as:
// one per key byte and a checksum word.
const RecoveryWordCount = RecoveryKeySize + 1

// maxRecoveryInput bounds the text [ParseRecoveryWords] reads.
const maxRecoveryInput = 4096

// RecoveryKey is the 256-bit secret that seals an account's recovery bundle
// (account key and archive key) on its server. It is shown to the user once,
// as words ([RecoveryWords]).
type RecoveryKey [RecoveryKeySize]byte

// NewRecoveryKey picks a recovery key from rand (crypto/rand.Reader outside
// tests).
func NewRecoveryKey(rand io.Reader) (RecoveryKey, error) {
	var k RecoveryKey
	if _, err := io.ReadFull(rand, k[:]); err != nil {
		return RecoveryKey{}, fmt.Errorf("failed to read randomness for recovery key: %w", err)
	}
	return k, nil
}

var (
	// ErrRecoveryWords is wrapped by every error of [ParseRecoveryWords].
	ErrRecoveryWords = errors.New("identity: invalid recovery words")

	// ErrUnknownRecoveryWord is wrapped by [*UnknownWordError].
	ErrUnknownRecoveryWord = fmt.Errorf("%w: unknown word", ErrRecoveryWords)

	// ErrRecoveryChecksum is returned when every word is known but the
	// checksum word does not match: a word is wrong or two are swapped.
	ErrRecoveryChecksum = fmt.Errorf("%w: the checksum does not match; a word is wrong or two words are swapped", ErrRecoveryWords)
)

// UnknownWordError reports a word that is not in the recovery word list.
type UnknownWordError struct {
	// Position is the 1-based position of the word among the words read.
	Position int
	// Word is the word as typed (cut to 32 characters).
	Word string
	// Suggestion is the one list word a single typo away from Word, or ""
	// when there is none or more than one.
	Suggestion string
}

// Error describes the unknown word and, when there is one, the likely
// intended word.
func (e *UnknownWordError) Error() string {
	msg := fmt.Sprintf("identity: recovery word %d %q is not in the word list", e.Position, e.Word)
	if e.Suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	return msg
}

// Unwrap returns [ErrUnknownRecoveryWord].
func (e *UnknownWordError) Unwrap() error { return ErrUnknownRecoveryWord }

// recoveryWordIndex maps each word to the byte it stands for.
var recoveryWordIndex = func() map[string]byte {
	m := make(map[string]byte, len(recoveryWordList))
	for i, w := range recoveryWordList {
		m[w] = byte(i)
	}
	return m
}()

// Recovery checksum. The checksum byte is
//
//	c = key[0]·g^1 + key[1]·g^2 + ... + key[31]·g^32
//
// in GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1 and g = 0x03, a
// generator of the field's multiplicative group. Because the 32 weights are
// distinct and non-zero, changing any one word (key or checksum) always
// changes the checksum, and so does swapping any two different words. A
// checksum byte cut from a hash such as SHA-256 would miss one in 256 of
// those mistakes. The checksum only catches typing mistakes; the recovery
// bundle's authenticated encryption is what refuses a wrong key.
func recoveryChecksum(key *RecoveryKey) byte {
	var c byte
	w := byte(1)
	for _, b := range key {
		w = gfMul(w, 0x03)
		c ^= gfMul(b, w)
	}
	return c
}

// gfMul multiplies in GF(2^8) modulo x^8+x^4+x^3+x+1.
func gfMul(a, b byte) byte {
	var p byte
	for range 8 {
		if b&1 != 0 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

// RecoveryWords writes key as [RecoveryWordCount] lower-case words: one per
// byte, then the checksum word.
func RecoveryWords(key RecoveryKey) []string {
	out := make([]string, 0, RecoveryWordCount)
	for _, b := range key {
		out = append(out, recoveryWordList[b])
	}
	return append(out, recoveryWordList[recoveryChecksum(&key)])
}

// isRecoverySeparator reports whether r separates recovery words: white
// space and the punctuation people put between words they copy out.
func isRecoverySeparator(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune(",;.:)-", r)
}

// isNumber reports whether s is all ASCII digits (a list number such as the
// "7" of "7. alarm").
func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ParseRecoveryWords reads a recovery key written by [RecoveryWords]. It is
// tolerant of case, extra white space, separating punctuation and list
// numbers ("1. alarm 2. album ..."). It returns a [*UnknownWordError] naming
// the first word not in the list, an error wrapping [ErrRecoveryChecksum]
// when the checksum does not match, and otherwise errors wrapping
// [ErrRecoveryWords].
func ParseRecoveryWords(s string) (RecoveryKey, error) {
	if len(s) > maxRecoveryInput {
		return RecoveryKey{}, fmt.Errorf("%w: more than %d characters", ErrRecoveryWords, maxRecoveryInput)
	}
	var words [RecoveryWordCount]byte
	n := 0
	for _, tok := range strings.FieldsFunc(s, isRecoverySeparator) {
		if isNumber(tok) {
			continue
		}
		n++
		if n > RecoveryWordCount {
			continue // counted for the error below, not looked up
		}
		w := asciiLower(tok)
		b, ok := recoveryWordIndex[w]
		if !ok {
			return RecoveryKey{}, unknownWord(n, w)
		}
		words[n-1] = b
	}
	if n != RecoveryWordCount {
		return RecoveryKey{}, fmt.Errorf("%w: got %d words, want %d", ErrRecoveryWords, n, RecoveryWordCount)
	}
	var key RecoveryKey
	copy(key[:], words[:RecoveryKeySize])
	if recoveryChecksum(&key) != words[RecoveryKeySize] {
		return RecoveryKey{}, ErrRecoveryChecksum
	}
	return key, nil
}

// unknownWord builds the error for word w at position pos.
func unknownWord(pos int, w string) *UnknownWordError {
	e := &UnknownWordError{Position: pos, Word: w}
	if len(w) > 32 {
		e.Word = w[:32]
		return e
	}
	for _, cand := range recoveryWordList {
		if withinOneEdit(w, cand) {
			if e.Suggestion != "" {
				e.Suggestion = "" // ambiguous: suggest nothing
				break
			}
			e.Suggestion = cand
		}
	}
	return e
}

// withinOneEdit reports whether a and b differ by at most one insertion,
// deletion or substitution of a byte.
func withinOneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return i == len(a) || a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}
