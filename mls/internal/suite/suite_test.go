package suite

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/parley-im/parley/mls/internal/vectors"
)

type cryptoBasics struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	DeriveSecret struct {
		Label  string
		Out    vectors.Hex
		Secret vectors.Hex
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Generation uint32
		Label      string
		Length     int
		Out        vectors.Hex
		Secret     vectors.Hex
	} `json:"derive_tree_secret"`
	EncryptWithLabel struct {
		Ciphertext vectors.Hex
		Context    vectors.Hex
		KEMOutput  vectors.Hex `json:"kem_output"`
		Label      string
		Plaintext  vectors.Hex
		Priv       vectors.Hex
		Pub        vectors.Hex
	} `json:"encrypt_with_label"`
	ExpandWithLabel struct {
		Context vectors.Hex
		Label   string
		Length  int
		Out     vectors.Hex
		Secret  vectors.Hex
	} `json:"expand_with_label"`
	RefHash struct {
		Label string
		Out   vectors.Hex
		Value vectors.Hex
	} `json:"ref_hash"`
	SignWithLabel struct {
		Content   vectors.Hex
		Label     string
		Priv      vectors.Hex
		Pub       vectors.Hex
		Signature vectors.Hex
	} `json:"sign_with_label"`
}

func TestCryptoBasicsVectors(t *testing.T) {
	var cases []cryptoBasics
	vectors.Load(t, "crypto-basics.json", &cases)
	var count vectors.Counter
	count.Report(t, "crypto-basics.json")
	for _, tc := range cases {
		s, err := Get(ID(tc.CipherSuite))
		if err != nil {
			count.Unsupported++
			continue
		}
		count.Ran++
		out, err := s.DeriveSecret(tc.DeriveSecret.Secret, tc.DeriveSecret.Label)
		if err != nil || !bytes.Equal(out, tc.DeriveSecret.Out) {
			t.Errorf("suite %d DeriveSecret: %x %v", tc.CipherSuite, out, err)
		}
		dts := tc.DeriveTreeSecret
		ctx := []byte{byte(dts.Generation >> 24), byte(dts.Generation >> 16), byte(dts.Generation >> 8), byte(dts.Generation)}
		out, err = s.ExpandWithLabel(dts.Secret, dts.Label, ctx, dts.Length)
		if err != nil || !bytes.Equal(out, dts.Out) {
			t.Errorf("suite %d DeriveTreeSecret: %x %v", tc.CipherSuite, out, err)
		}
		ewl := tc.ExpandWithLabel
		out, err = s.ExpandWithLabel(ewl.Secret, ewl.Label, ewl.Context, ewl.Length)
		if err != nil || !bytes.Equal(out, ewl.Out) {
			t.Errorf("suite %d ExpandWithLabel: %x %v", tc.CipherSuite, out, err)
		}
		if out := s.RefHash(tc.RefHash.Label, tc.RefHash.Value); !bytes.Equal(out, tc.RefHash.Out) {
			t.Errorf("suite %d RefHash: %x", tc.CipherSuite, out)
		}
		swl := tc.SignWithLabel
		if err := s.VerifyWithLabel(swl.Pub, swl.Label, swl.Content, swl.Signature); err != nil {
			t.Errorf("suite %d VerifyWithLabel: %v", tc.CipherSuite, err)
		}
		signer, err := s.NewSigner(swl.Priv)
		if err != nil {
			t.Fatalf("suite %d NewSigner: %v", tc.CipherSuite, err)
		}
		if !bytes.Equal(signer.Public(), swl.Pub) {
			t.Errorf("suite %d signer public key mismatch", tc.CipherSuite)
		}
		sig, err := signer.SignWithLabel(swl.Label, swl.Content)
		if err != nil || s.VerifyWithLabel(swl.Pub, swl.Label, swl.Content, sig) != nil {
			t.Errorf("suite %d SignWithLabel round trip: %v", tc.CipherSuite, err)
		}
		if err := s.VerifyWithLabel(swl.Pub, swl.Label+"x", swl.Content, swl.Signature); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("suite %d: signature verified under another label", tc.CipherSuite)
		}
		e := tc.EncryptWithLabel
		pt, err := s.DecryptWithLabel(e.Priv, e.Label, e.Context, e.KEMOutput, e.Ciphertext)
		if err != nil || !bytes.Equal(pt, e.Plaintext) {
			t.Errorf("suite %d DecryptWithLabel: %x %v", tc.CipherSuite, pt, err)
		}
		kem, ct, err := s.EncryptWithLabel(e.Pub, e.Label, e.Context, e.Plaintext)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := s.DecryptWithLabel(e.Priv, e.Label, e.Context, kem, ct); err != nil || !bytes.Equal(pt, e.Plaintext) {
			t.Errorf("suite %d EncryptWithLabel round trip: %v", tc.CipherSuite, err)
		}
		if pub, err := s.HPKEPublicKey(e.Priv); err != nil || !bytes.Equal(pub, e.Pub) {
			t.Errorf("suite %d HPKEPublicKey: %x %v", tc.CipherSuite, pub, err)
		}
	}
}

func TestKeysAndAEAD(t *testing.T) {
	for _, id := range IDs() {
		s, _ := Get(id)
		priv, pub, err := s.GenerateSignatureKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ValidateSignaturePublicKey(pub); err != nil {
			t.Fatal(err)
		}
		signer, err := s.NewSigner(priv)
		if err != nil || !bytes.Equal(signer.Public(), pub) {
			t.Fatalf("suite %d: signer: %v", id, err)
		}
		key := make([]byte, s.KeySize())
		nonce := make([]byte, s.NonceSize())
		ct, err := s.Seal(nil, key, nonce, []byte("aad"), []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(nil, key, nonce, []byte("aad!"), ct); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("suite %d: wrong aad accepted", id)
		}
		hpriv, hpub, err := s.DeriveHPKEKeyPair([]byte("ikm"))
		if err != nil {
			t.Fatal(err)
		}
		kem, secret, err := s.ExportSecretTo(hpub, []byte("info"), "MLS 1.0 external init secret", 32)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ExportSecretFrom(hpriv, kem, []byte("info"), "MLS 1.0 external init secret", 32)
		if err != nil || !bytes.Equal(got, secret) || len(kem) != s.KEMOutputSize() {
			t.Fatalf("suite %d: export mismatch: %v", id, err)
		}
	}
	if _, err := Get(0x0004); !errors.Is(err, ErrUnsupported) {
		t.Fatal("suite 4 reported as supported")
	}
}
