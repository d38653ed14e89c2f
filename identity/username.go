package identity

import (
	"errors"
	"fmt"
	"strings"
)

// Username length bounds, in bytes (usernames are ASCII).
const (
	// MinUsernameLen is the shortest username allowed.
	MinUsernameLen = 3
	// MaxUsernameLen is the longest username allowed.
	MaxUsernameLen = 32
)

// ErrInvalidUsername is returned by [FoldUsername] and [UsernameSkeleton]
// for a name that breaks the username rules.
var ErrInvalidUsername = errors.New("identity: invalid username")

// FoldUsername checks a username against Parley's rules and returns its
// canonical (folded) form, the form that is stored, signed and shown.
//
// The rules, chosen so that a name looks the same on every screen:
//   - ASCII only. Any other character is refused, not mapped, so no Cyrillic,
//     Greek, full-width or other Unicode look-alike can enter a name.
//   - Upper-case letters fold to lower case ("Alice" is "alice").
//   - After folding only a-z, 0-9 and '_' are allowed.
//   - 3 to 32 characters, starting with a letter.
//   - No '_' at the end and no two '_' in a row ("a__b" and "a_b" look
//     alike in many fonts).
//
// Whether a name is free is decided on its skeleton ([UsernameSkeleton]), not
// on its folded form.
func FoldUsername(s string) (string, error) {
	if len(s) < MinUsernameLen || len(s) > MaxUsernameLen {
		return "", fmt.Errorf("%w: must be %d to %d characters, got %d", ErrInvalidUsername, MinUsernameLen, MaxUsernameLen, len(s))
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '_':
			if i > 0 && b[i-1] == '_' {
				return "", fmt.Errorf("%w: two underscores in a row", ErrInvalidUsername)
			}
		case c >= 0x80:
			return "", fmt.Errorf("%w: only ASCII letters, digits and '_' are allowed", ErrInvalidUsername)
		default:
			return "", fmt.Errorf("%w: character %q is not allowed (only letters, digits and '_')", ErrInvalidUsername, c)
		}
	}
	if b[0] < 'a' || b[0] > 'z' {
		return "", fmt.Errorf("%w: must start with a letter", ErrInvalidUsername)
	}
	if b[len(b)-1] == '_' {
		return "", fmt.Errorf("%w: must not end with '_'", ErrInvalidUsername)
	}
	return string(b), nil
}

// skeletonChars maps characters that are commonly confused to one
// representative. Characters not listed map to themselves; '_' is dropped.
var skeletonChars = strings.NewReplacer(
	"_", "",
	"0", "o",
	"1", "l", "i", "l",
	"2", "z",
	"3", "e",
	"4", "a",
	"5", "s",
	"6", "b", "8", "b",
	"7", "t",
	"9", "g",
)

// skeletonPairs are letter pairs that read as one letter, applied in order
// after skeletonChars.
var skeletonPairs = [...][2]string{
	{"rn", "m"},
	{"vv", "w"},
	{"cl", "d"},
}

// UsernameSkeleton returns the uniqueness key of a username: two names with
// the same skeleton look alike, and a server must let at most one account
// hold a skeleton. It folds s with [FoldUsername] (and fails as it does),
// then:
//
//  1. drops every '_';
//  2. maps look-alike characters to one representative:
//     0→o, 1→l, i→l, 2→z, 3→e, 4→a, 5→s, 6→b, 8→b, 7→t, 9→g;
//  3. replaces, in this order, letter pairs that read as one letter:
//     rn→m, vv→w, cl→d.
//
// So "alice", "a1ice", "Al_ice" and "ALlCE" share the skeleton "allce", and
// "modern" and "rnodern" share "modem". The skeleton is never shown; it may
// be shorter than [MinUsernameLen]. Applying the steps to a skeleton again
// leaves it unchanged.
func UsernameSkeleton(s string) (string, error) {
	folded, err := FoldUsername(s)
	if err != nil {
		return "", err
	}
	return skeleton(folded), nil
}

// skeleton applies the skeleton steps to an already folded name.
func skeleton(folded string) string {
	out := skeletonChars.Replace(folded)
	for _, p := range skeletonPairs {
		out = strings.ReplaceAll(out, p[0], p[1])
	}
	return out
}
