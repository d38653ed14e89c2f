package security

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/identity"
)

func TestWrongRecoveryWords(t *testing.T) {
	key, err := identity.NewRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	words := identity.RecoveryWords(key)
	if got, err := identity.ParseRecoveryWords(strings.Join(words, " ")); err != nil || got != key {
		t.Fatalf("the right words: %v", err)
	}
	// One word replaced by another list word: the checksum catches it.
	wrong := append([]string(nil), words...)
	other, _ := identity.NewRecoveryKey(rand.Reader)
	ow := identity.RecoveryWords(other)
	for i := range ow {
		if ow[i] != wrong[5] {
			wrong[5] = ow[i]
			break
		}
	}
	if _, err := identity.ParseRecoveryWords(strings.Join(wrong, " ")); !errors.Is(err, identity.ErrRecoveryChecksum) {
		t.Errorf("one wrong word: got %v, want ErrRecoveryChecksum", err)
	}
	// Two different words swapped.
	swapped := append([]string(nil), words...)
	for i := 1; i < len(swapped); i++ {
		if swapped[i] != swapped[0] {
			swapped[0], swapped[i] = swapped[i], swapped[0]
			break
		}
	}
	if _, err := identity.ParseRecoveryWords(strings.Join(swapped, " ")); !errors.Is(err, identity.ErrRecoveryChecksum) {
		t.Errorf("two words swapped: got %v, want ErrRecoveryChecksum", err)
	}
	// A word not in the list, and one word missing.
	var unknown *identity.UnknownWordError
	if _, err := identity.ParseRecoveryWords("zzzzqx " + strings.Join(words[1:], " ")); !errors.As(err, &unknown) {
		t.Errorf("unknown word: got %v", err)
	}
	if _, err := identity.ParseRecoveryWords(strings.Join(words[1:], " ")); !errors.Is(err, identity.ErrRecoveryWords) {
		t.Errorf("a word missing: got %v", err)
	}
}

// TestServerSubstitutedDeviceKey: a compromised server answers a directory
// lookup for bob with a device certificate of its own making. It cannot sign
// as bob's account key, so either the certificate does not verify under bob's
// key, or it names another account key and so another account id; and the
// safety number alice and bob compare changes.
func TestServerSubstitutedDeviceKey(t *testing.T) {
	bob, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evil, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	devPub, _, _ := ed25519.GenerateKey(rand.Reader)
	id, _ := identity.NewDeviceID(rand.Reader)
	forged, err := identity.IssueDeviceCertificate(evil, id, devPub, identity.SuiteX25519AES128GCMEd25519, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if forged.AccountID() == bob.ID() {
		t.Fatal("a certificate made with another key claims bob's account id")
	}
	// Splice bob's account key into the forged certificate: the signature
	// no longer verifies.
	raw := forged.Marshal()
	spliced := bytes.Clone(raw)
	copy(spliced[1:33], bob.Public())
	if c, err := identity.ParseDeviceCertificate(spliced); err == nil {
		if c.Verify() == nil {
			t.Fatal("a certificate with bob's key but the server's signature verifies")
		}
	}
	if identity.SafetyNumber(alice.Public(), bob.Public()) == identity.SafetyNumber(alice.Public(), evil.Public()) {
		t.Fatal("the safety number did not change with the substituted key")
	}
	if identity.AccountIDFromKey(evil.Public()) == bob.ID() {
		t.Fatal("the substituted key derives bob's account id")
	}
}

func TestTamperedFileCiphertext(t *testing.T) {
	key, err := filecrypt.NewKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte("attachment "), 20000) // several chunks
	var ct bytes.Buffer
	e, err := filecrypt.NewEncrypter(&ct, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	decrypt := func(b []byte, k filecrypt.Key) ([]byte, error) {
		d, err := filecrypt.NewDecrypter(bytes.NewReader(b), k)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(d)
	}
	if got, err := decrypt(ct.Bytes(), key); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("genuine file: %v", err)
	}
	c := ct.Bytes()
	cases := map[string][]byte{
		"flipped byte in chunk 0":  flipped(c, filecrypt.HeaderSize+10),
		"flipped byte in last tag": flipped(c, len(c)-1),
		"truncated at a chunk":     c[:filecrypt.ChunkOffset(1)],
		"truncated mid-chunk":      c[:len(c)-100],
		"trailing data":            append(bytes.Clone(c), 0),
	}
	for name, b := range cases {
		if _, err := decrypt(b, key); err == nil {
			t.Errorf("%s: decrypted", name)
		}
	}
	if _, err := decrypt(flipped(c, filecrypt.HeaderSize+10), key); !errors.Is(err, filecrypt.ErrAuthentication) {
		t.Errorf("flipped byte: got %v, want ErrAuthentication", err)
	}
	other, _ := filecrypt.NewKey(rand.Reader)
	if _, err := decrypt(c, other); !errors.Is(err, filecrypt.ErrAuthentication) {
		t.Errorf("wrong key: got %v, want ErrAuthentication", err)
	}
}
