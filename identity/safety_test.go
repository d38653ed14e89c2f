package identity

import (
	"bytes"
	"crypto/ed25519"
	"regexp"
	"testing"
)

var safetyFormat = regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`)

func TestSafetyNumberSymmetricAndFormatted(t *testing.T) {
	a, b := testAccount(t, 1).Public(), testAccount(t, 2).Public()
	ab, ba := SafetyNumber(a, b), SafetyNumber(b, a)
	if ab != ba {
		t.Fatalf("not symmetric:\n%s\n%s", ab, ba)
	}
	if !safetyFormat.MatchString(ab) {
		t.Fatalf("format: %q", ab)
	}
	if SafetyNumber(a, b) != ab {
		t.Fatal("not deterministic")
	}
	// Same key on both sides is allowed (talking to oneself).
	if !safetyFormat.MatchString(SafetyNumber(a, a)) {
		t.Fatal("self safety number malformed")
	}
}

func TestSafetyNumberChangesWithEitherKey(t *testing.T) {
	a, b, c := testAccount(t, 1).Public(), testAccount(t, 2).Public(), testAccount(t, 3).Public()
	n := SafetyNumber(a, b)
	if SafetyNumber(a, c) == n || SafetyNumber(c, b) == n {
		t.Fatal("replacing a key kept the safety number")
	}
	// Each account contributes one half: the half shared by (a,b) and (a,c)
	// is a's 30 digits.
	half := func(s string) map[string]bool { return map[string]bool{s[:35]: true, s[36:]: true} }
	shared := 0
	for h := range half(n) {
		if half(SafetyNumber(a, c))[h] {
			shared++
		}
	}
	if shared != 1 {
		t.Fatalf("(a,b) and (a,c) share %d halves, want 1", shared)
	}
}

func TestSafetyNumberPinned(t *testing.T) {
	// Pins the construction: a change to it changes every user's number and
	// must come with a new version. The value was checked against an
	// independent implementation of the documented steps (Python hashlib).
	a := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	b := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	const want = "94156 88866 12494 99684 45377 16758 00911 19873 20854 64686 99878 14468"
	if got := SafetyNumber(a, b); got != want {
		t.Fatalf("SafetyNumber = %q, want %q", got, want)
	}
}

func TestSafetyQR(t *testing.T) {
	a, b, c := testAccount(t, 1).Public(), testAccount(t, 2).Public(), testAccount(t, 3).Public()
	p := SafetyQRPayload(a, b)
	if len(p) != SafetyQRPayloadSize || !bytes.Equal(p, SafetyQRPayload(b, a)) {
		t.Fatal("payload not symmetric or wrong size")
	}
	if !VerifySafetyQR(p, a, b) || !VerifySafetyQR(p, b, a) {
		t.Fatal("valid payload refused")
	}
	if VerifySafetyQR(p, a, c) || VerifySafetyQR(p, c, b) {
		t.Fatal("payload accepted for other keys")
	}
	for i := range p {
		bad := bytes.Clone(p)
		bad[i] ^= 1
		if VerifySafetyQR(bad, a, b) {
			t.Fatalf("payload with byte %d changed accepted", i)
		}
	}
	if VerifySafetyQR(p[:len(p)-1], a, b) || VerifySafetyQR(append(bytes.Clone(p), 0), a, b) || VerifySafetyQR(nil, a, b) {
		t.Fatal("payload of wrong length accepted")
	}
}

func BenchmarkSafetyNumber(b *testing.B) {
	x, y := testAccount(b, 1).Public(), testAccount(b, 2).Public()
	for b.Loop() {
		SafetyNumber(x, y)
	}
}
