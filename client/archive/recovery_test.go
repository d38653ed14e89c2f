package archive

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/chacha20poly1305"
)

// sealV1ForTest seals a version 1 bundle (symmetric, under the recovery key
// itself), as devices did before they stopped holding the key.
func sealV1ForTest(t testing.TB, rk identity.RecoveryKey, b *RecoveryBundle, rand io.Reader) []byte {
	t.Helper()
	plain, err := marshalRecoveryPlain(b)
	if err != nil {
		t.Fatal(err)
	}
	k, err := hkdf.Key(sha256.New, rk[:], nil, recoveryLabelV1, chacha20poly1305.KeySize)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX)
	out[0] = recoveryVersionV1
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		t.Fatal(err)
	}
	return aead.Seal(out, out[1:], plain, []byte(recoveryLabelV1))
}

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
	pub, err := DeriveRecoveryPublicKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := DeriveRecoveryPublicKey(rk)
	if !pub.Equal(again) {
		t.Fatal("the public key is not a function of the recovery key")
	}
	sealed, err := SealRecoveryBundle(pub, &RecoveryBundle{AccountKey: ak, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != recoveryVersion {
		t.Fatalf("sealed version %d", sealed[0])
	}
	if bytes.Contains(sealed, ak.Bytes()[1:]) {
		t.Fatal("bundle holds the account key in the clear")
	}
	// Sealing twice gives different bytes (fresh HPKE encapsulation).
	if second, _ := SealRecoveryBundle(pub, &RecoveryBundle{AccountKey: ak, Keyring: ring}); bytes.Equal(second, sealed) {
		t.Fatal("two seals are identical")
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
	// Tampered bundle: every flipped byte fails (the version and KEM bytes
	// as malformed, the rest as a wrong key).
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, err := OpenRecoveryBundleKey(rk, bad); err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
	}
	if _, err := OpenRecoveryBundleKey(rk, sealed[:len(sealed)-1]); err == nil {
		t.Fatal("truncated bundle opened")
	}
}

// TestRecoveryBundleV1 opens a bundle of the first version.
func TestRecoveryBundleV1(t *testing.T) {
	rnd := testRand(11)
	ak, _ := identity.GenerateAccountKey(rnd)
	ring, _ := NewKeyring(rnd)
	rk, _ := identity.NewRecoveryKey(rnd)
	sealed := sealV1ForTest(t, rk, &RecoveryBundle{AccountKey: ak, Keyring: ring}, rnd)
	b, err := OpenRecoveryBundleKey(rk, sealed)
	if err != nil || b.AccountKey.ID() != ak.ID() {
		t.Fatalf("v1 bundle: %v", err)
	}
	other, _ := identity.NewRecoveryKey(rnd)
	if _, err := OpenRecoveryBundleKey(other, sealed); !errors.Is(err, ErrWrongRecoveryKey) {
		t.Fatalf("v1 bundle, other key: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[0] = 9
	if _, err := OpenRecoveryBundleKey(rk, bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown version: %v", err)
	}
}

func TestRecoveryInfo(t *testing.T) {
	rnd := testRand(12)
	rk, _ := identity.NewRecoveryKey(rnd)
	pub, err := DeriveRecoveryPublicKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	info := &RecoveryInfo{PublicKey: pub, Device: identity.DeviceID{1, 2, 3}}
	info.Slot[0], info.Slot[31] = 7, 9
	enc, err := info.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, rk[:]) {
		t.Fatal("recovery info holds the recovery key")
	}
	back, err := ParseRecoveryInfo(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !back.PublicKey.Equal(pub) || back.Slot != info.Slot || back.Device != info.Device {
		t.Fatalf("round trip: %+v", back)
	}
	for _, bad := range [][]byte{nil, enc[:1], enc[:len(enc)-1], append(bytes.Clone(enc), 0), append([]byte{2}, enc[1:]...)} {
		if _, err := ParseRecoveryInfo(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseRecoveryInfo(%d bytes): %v", len(bad), err)
		}
	}
	zero := bytes.Clone(enc)
	clear(zero[1+RecoverySlotSize : 1+RecoverySlotSize+identity.DeviceIDSize])
	if _, err := ParseRecoveryInfo(zero); !errors.Is(err, ErrMalformed) {
		t.Fatalf("zero device: %v", err)
	}
}

func FuzzParseRecoveryInfo(f *testing.F) {
	rnd := testRand(26)
	rk, _ := identity.NewRecoveryKey(rnd)
	pub, _ := DeriveRecoveryPublicKey(rk)
	info := &RecoveryInfo{PublicKey: pub, Device: identity.DeviceID{1}}
	enc, err := info.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseRecoveryInfo(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		back, err := info.MarshalBinary()
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("does not re-encode to the same bytes: %v", err)
		}
	})
}
