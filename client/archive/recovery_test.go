package archive

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/parley-im/parley/identity"
)

func TestRecoveryBundle(t *testing.T) {
	rnd := testRand(10)
	ak, err := identity.GenerateAccountKey(rnd)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := NewKeyring(rnd)
	if _, err := ring.Rotate(rnd); err != nil {
		t.Fatal(err)
	}
	rk, _ := identity.NewRecoveryKey(rnd)
	sealed, err := SealRecoveryBundle(rk, &RecoveryBundle{AccountKey: ak, Keyring: ring}, rnd)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, ak.Bytes()[1:]) {
		t.Fatal("bundle holds the account key in the clear")
	}
	words := strings.Join(identity.RecoveryWords(rk), " ")
	b, err := OpenRecoveryBundle("  "+strings.ToUpper(words)+"\n", sealed)
	if err != nil {
		t.Fatal(err)
	}
	if b.AccountKey.ID() != ak.ID() || !bytes.Equal(b.AccountKey.Bytes(), ak.Bytes()) {
		t.Fatal("account key differs")
	}
	if !bytes.Equal(mustMarshal(t, b.Keyring), mustMarshal(t, ring)) {
		t.Fatal("keyring differs")
	}

	// Valid words of another key: a clear error, nothing returned.
	other, _ := identity.NewRecoveryKey(rnd)
	b, err = OpenRecoveryBundle(strings.Join(identity.RecoveryWords(other), " "), sealed)
	if !errors.Is(err, ErrWrongRecoveryKey) || b != nil {
		t.Fatalf("other key: %v", err)
	}
	// A mistyped word: the identity error says which.
	w := identity.RecoveryWords(rk)
	w[3] = w[3] + "x"
	_, err = OpenRecoveryBundle(strings.Join(w, " "), sealed)
	var uw *identity.UnknownWordError
	if !errors.Is(err, ErrWrongRecoveryKey) || !errors.As(err, &uw) || uw.Position != 4 {
		t.Fatalf("mistyped word: %v", err)
	}
	// Two words swapped: the checksum.
	w = identity.RecoveryWords(rk)
	w[0], w[1] = w[1], w[0]
	if w[0] != w[1] {
		_, err = OpenRecoveryBundle(strings.Join(w, " "), sealed)
		if !errors.Is(err, ErrWrongRecoveryKey) || !errors.Is(err, identity.ErrRecoveryChecksum) {
			t.Fatalf("swapped words: %v", err)
		}
	}
	// Tampered bundle.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, err := OpenRecoveryBundleKey(rk, bad); err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
	}
}
