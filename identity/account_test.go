package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestAccountKeyRoundTrip(t *testing.T) {
	k := testAccount(t, 1)
	b := k.Bytes()
	if len(b) != AccountKeySize || b[0] != 1 {
		t.Fatalf("encoding = %x", b)
	}
	k2, err := ParseAccountKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Public().Equal(k.Public()) || k2.ID() != k.ID() {
		t.Fatal("parsed key differs")
	}
	if !k.ID().Matches(k.Public()) || k.ID() != AccountIDFromKey(k.Public()) {
		t.Fatal("ID does not match key")
	}
	if _, err := ParseAccountID(k.ID().String()); err != nil {
		t.Fatalf("ID not parseable: %v", err)
	}
	// A signature by the parsed key verifies under the original public key.
	sig, err := k2.Sign(DomainUsernameClaim, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyAccountSignature(k.Public(), DomainUsernameClaim, []byte("m"), sig); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateAccountKeyDistinct(t *testing.T) {
	if testAccount(t, 1).ID() == testAccount(t, 2).ID() {
		t.Fatal("different randomness gave the same key")
	}
	if _, err := GenerateAccountKey(strings.NewReader("short")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short randomness: %v", err)
	}
}

func TestParseAccountKeyRefuses(t *testing.T) {
	good := testAccount(t, 1).Bytes()
	for name, in := range map[string][]byte{
		"empty":     nil,
		"short":     good[:AccountKeySize-1],
		"long":      append(bytes.Clone(good), 0),
		"version 2": append([]byte{2}, good[1:]...),
	} {
		if _, err := ParseAccountKey(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

func TestAccountSignature(t *testing.T) {
	k := testAccount(t, 1)
	msg := []byte("hello")
	sig, err := k.Sign(DomainDeviceCertificate, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyAccountSignature(k.Public(), DomainDeviceCertificate, msg, sig); err != nil {
		t.Fatal(err)
	}
	other := testAccount(t, 2)
	checks := map[string]error{
		"other domain": VerifyAccountSignature(k.Public(), DomainUsernameClaim, msg, sig),
		"other msg":    VerifyAccountSignature(k.Public(), DomainDeviceCertificate, []byte("hellO"), sig),
		"other key":    VerifyAccountSignature(other.Public(), DomainDeviceCertificate, msg, sig),
		"short sig":    VerifyAccountSignature(k.Public(), DomainDeviceCertificate, msg, sig[:63]),
		"plain ed25519": VerifyAccountSignature(k.Public(), DomainDeviceCertificate, msg,
			ed25519.Sign(ed25519.NewKeyFromSeed(k.Bytes()[1:]), msg)),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: error %v, want ErrBadSignature", name, err)
		}
	}
	// Domain boundary: ("ab", "c") and ("a", "bc") must not share signatures.
	sig, _ = k.Sign("ab", []byte("c"))
	if err := VerifyAccountSignature(k.Public(), "a", []byte("bc"), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("domain/message boundary is ambiguous: %v", err)
	}
	if _, err := k.Sign("", msg); !errors.Is(err, ErrInvalidDomain) {
		t.Fatalf("empty domain: %v", err)
	}
	if _, err := k.Sign(Domain(strings.Repeat("x", 256)), msg); !errors.Is(err, ErrInvalidDomain) {
		t.Fatalf("long domain: %v", err)
	}
	if err := VerifyAccountSignature(k.Public(), "", msg, sig); !errors.Is(err, ErrInvalidDomain) {
		t.Fatalf("verify in empty domain: %v", err)
	}
	if err := VerifyAccountSignature(k.Public()[:31], DomainDeviceCertificate, msg, sig); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("short public key: %v", err)
	}
}

func FuzzParseAccountKey(f *testing.F) {
	f.Add(testAccount(f, 1).Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseAccountKey(data)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Bytes(), data) {
			t.Fatal("accepted encoding is not canonical")
		}
	})
}
