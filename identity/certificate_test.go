package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// testRand is a deterministic randomness source for tests.
func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func testAccount(t testing.TB, seed uint64) *AccountKey {
	t.Helper()
	k, err := GenerateAccountKey(testRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testDeviceKey(t testing.TB, seed uint64) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(testRand(seed + 1000))
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

var testTime = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)

func testCert(t testing.TB) (*AccountKey, ed25519.PrivateKey, *DeviceCertificate) {
	t.Helper()
	acct := testAccount(t, 1)
	dev := testDeviceKey(t, 1)
	cert, err := IssueDeviceCertificate(acct, DeviceID{1, 2, 3}, dev.Public().(ed25519.PublicKey), SuiteX25519AES128GCMEd25519, testTime)
	if err != nil {
		t.Fatal(err)
	}
	return acct, dev, cert
}

func TestDeviceCertificateRoundTrip(t *testing.T) {
	acct, dev, cert := testCert(t)
	if err := cert.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	data := cert.Marshal()
	if len(data) != 1+32+16+2+1+32+8+64 {
		t.Fatalf("encoding is %d bytes", len(data))
	}
	got, err := ParseDeviceCertificate(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := got.Verify(); err != nil {
		t.Fatalf("Verify after parse: %v", err)
	}
	if !bytes.Equal(got.Marshal(), data) {
		t.Fatal("re-encoding differs")
	}
	if got.AccountID() != acct.ID() || !got.AccountKey().Equal(acct.Public()) {
		t.Fatal("account differs")
	}
	if got.DeviceID() != (DeviceID{1, 2, 3}) || got.Suite() != SuiteX25519AES128GCMEd25519 {
		t.Fatal("device id or suite differs")
	}
	if !bytes.Equal(got.SignatureKey(), dev.Public().(ed25519.PublicKey)) {
		t.Fatal("signature key differs")
	}
	if !got.Created().Equal(testTime) || got.Created().Location() != time.UTC {
		t.Fatalf("created = %v", got.Created())
	}
	// Accessors return copies: changing them must not change the certificate.
	got.SignatureKey()[0] ^= 1
	got.AccountKey()[0] ^= 1
	got.Marshal()[5] ^= 1
	if err := got.Verify(); err != nil {
		t.Fatalf("certificate changed through an accessor: %v", err)
	}
}

func TestDeviceCertificateDeterministic(t *testing.T) {
	_, _, a := testCert(t)
	_, _, b := testCert(t)
	if !bytes.Equal(a.Marshal(), b.Marshal()) {
		t.Fatal("same inputs gave different certificates")
	}
}

func TestDeviceCertificateTamperEveryByte(t *testing.T) {
	_, _, cert := testCert(t)
	data := cert.Marshal()
	for i := range data {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= flip
			c, err := ParseDeviceCertificate(bad)
			if err != nil {
				continue // refused by the decoder: fine
			}
			if err := c.Verify(); err == nil {
				t.Fatalf("flipping bit %#x of byte %d still verifies", flip, i)
			}
		}
	}
}

func TestDeviceCertificateTamperFields(t *testing.T) {
	acct, dev, cert := testCert(t)
	other := testAccount(t, 2)
	tbs := cert.Marshal()
	sig := tbs[len(tbs)-64:]
	tbs = tbs[:len(tbs)-64]

	// Re-issue with one field changed and graft the original signature on.
	mutants := map[string]func() *DeviceCertificate{
		"account key": func() *DeviceCertificate {
			c, _ := IssueDeviceCertificate(other, DeviceID{1, 2, 3}, dev.Public().(ed25519.PublicKey), SuiteX25519AES128GCMEd25519, testTime)
			return c
		},
		"device id": func() *DeviceCertificate {
			c, _ := IssueDeviceCertificate(acct, DeviceID{9}, dev.Public().(ed25519.PublicKey), SuiteX25519AES128GCMEd25519, testTime)
			return c
		},
		"device key": func() *DeviceCertificate {
			c, _ := IssueDeviceCertificate(acct, DeviceID{1, 2, 3}, testDeviceKey(t, 7).Public().(ed25519.PublicKey), SuiteX25519AES128GCMEd25519, testTime)
			return c
		},
		"suite": func() *DeviceCertificate {
			c, _ := IssueDeviceCertificate(acct, DeviceID{1, 2, 3}, dev.Public().(ed25519.PublicKey), SuiteX25519ChaCha20Ed25519, testTime)
			return c
		},
		"created": func() *DeviceCertificate {
			c, _ := IssueDeviceCertificate(acct, DeviceID{1, 2, 3}, dev.Public().(ed25519.PublicKey), SuiteX25519AES128GCMEd25519, testTime.Add(time.Second))
			return c
		},
	}
	for name, mk := range mutants {
		c := mk()
		if c == nil {
			t.Fatalf("%s: issue failed", name)
		}
		data := c.Marshal()
		if bytes.Equal(data[:len(data)-64], tbs) {
			t.Fatalf("%s: mutation did not change the signed bytes", name)
		}
		grafted := append(data[:len(data)-64:len(data)-64], sig...)
		g, err := ParseDeviceCertificate(grafted)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := g.Verify(); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestDeviceCertificateWrongKeySignature(t *testing.T) {
	_, _, cert := testCert(t)
	other := testAccount(t, 2)
	data := cert.Marshal()
	tbs := data[:len(data)-64]
	// A signature by a different account over the same bytes.
	sig, err := other.Sign(DomainDeviceCertificate, tbs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseDeviceCertificate(append(bytes.Clone(tbs), sig...))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify = %v, want ErrBadSignature", err)
	}
	// A signature by the right key in another domain.
	acct := testAccount(t, 1)
	sig, _ = acct.Sign(DomainUsernameClaim, tbs)
	c, err = ParseDeviceCertificate(append(bytes.Clone(tbs), sig...))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cross-domain Verify = %v, want ErrBadSignature", err)
	}
}

func TestParseDeviceCertificateStrict(t *testing.T) {
	_, _, cert := testCert(t)
	data := cert.Marshal()
	cases := map[string][]byte{
		"empty":         nil,
		"trailing byte": append(bytes.Clone(data), 0),
		"truncated":     data[:len(data)-1],
		"version 0":     append([]byte{0}, data[1:]...),
		"version 2":     append([]byte{2}, data[1:]...),
		"too long":      make([]byte, MaxDeviceCertificateSize+1),
		"only version":  {1},
	}
	// Key length byte claims 31 instead of 32.
	short := bytes.Clone(data)
	short[1+32+16+2] = 31
	cases["short key length"] = short
	// Unknown suite.
	unk := bytes.Clone(data)
	unk[1+32+16] = 0x7f
	cases["unknown suite"] = unk
	// Zero device id.
	zero := bytes.Clone(data)
	clear(zero[1+32 : 1+32+16])
	cases["zero device id"] = zero
	// Created beyond year 9999.
	late := bytes.Clone(data)
	for i := 0; i < 8; i++ {
		late[1+32+16+2+1+32+i] = 0xff
	}
	cases["created out of range"] = late
	for name, in := range cases {
		if _, err := ParseDeviceCertificate(in); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	_, err := ParseDeviceCertificate(append(bytes.Clone(data), 0))
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: error %v does not wrap ErrMalformed", err)
	}
	_, err = ParseDeviceCertificate(unk)
	if !errors.Is(err, ErrUnsupportedSuite) {
		t.Errorf("unknown suite: error %v does not wrap ErrUnsupportedSuite", err)
	}
}

func TestIssueDeviceCertificateRefuses(t *testing.T) {
	acct := testAccount(t, 1)
	dev := testDeviceKey(t, 1).Public().(ed25519.PublicKey)
	cases := map[string]func() error{
		"zero device": func() error {
			_, err := IssueDeviceCertificate(acct, DeviceID{}, dev, SuiteX25519AES128GCMEd25519, testTime)
			return err
		},
		"short key": func() error {
			_, err := IssueDeviceCertificate(acct, DeviceID{1}, dev[:31], SuiteX25519AES128GCMEd25519, testTime)
			return err
		},
		"unknown suite": func() error {
			_, err := IssueDeviceCertificate(acct, DeviceID{1}, dev, 0x0004, testTime)
			return err
		},
		"account key as device key": func() error {
			_, err := IssueDeviceCertificate(acct, DeviceID{1}, acct.Public(), SuiteX25519AES128GCMEd25519, testTime)
			return err
		},
		"before 1970": func() error {
			_, err := IssueDeviceCertificate(acct, DeviceID{1}, dev, SuiteX25519AES128GCMEd25519, time.Unix(-1, 0))
			return err
		},
		"P-256 key not on curve": func() error {
			bad := make([]byte, 65)
			bad[0] = 4
			_, err := IssueDeviceCertificate(acct, DeviceID{1}, bad, SuiteP256AES128GCMP256, testTime)
			return err
		},
	}
	for name, f := range cases {
		if err := f(); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
}

// A certificate correctly signed but naming the account key as the device
// key is refused by Verify (Issue refuses to make one).
func TestDeviceCertificateAccountKeyAsDeviceKey(t *testing.T) {
	acct, _, cert := testCert(t)
	data := cert.Marshal()
	tbs := bytes.Clone(data[:len(data)-64])
	copy(tbs[1+32+16+2+1:], acct.Public())
	sig, err := acct.Sign(DomainDeviceCertificate, tbs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseDeviceCertificate(append(tbs, sig...))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Verify = %v, want ErrInvalidKey", err)
	}
}

// otherSigner is a crypto.Signer of a key type devices cannot use.
type otherSigner struct{}

func (otherSigner) Public() crypto.PublicKey { return "not a key" }
func (otherSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("unreachable")
}

func TestSignAsDeviceRefuses(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), testRand(6))
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"P-384": p384, "other type": otherSigner{}} {
		if _, err := SignAsDevice(key, DomainDeviceAuth, []byte("m"), testRand(7)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := SignAsDevice(testDeviceKey(t, 1), "", []byte("m"), nil); !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("empty domain: %v", err)
	}
	_, _, cert := testCert(t)
	if err := cert.VerifyDeviceSignature("", []byte("m"), make([]byte, 64)); !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("verify in empty domain: %v", err)
	}
}

func TestDeviceCertificateP256(t *testing.T) {
	acct := testAccount(t, 3)
	key, err := ecdsa.GenerateKey(elliptic.P256(), testRand(4))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := IssueDeviceCertificate(acct, DeviceID{7}, pub, SuiteP256AES128GCMP256, testTime)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDeviceCertificate(cert.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	sig, err := SignAsDevice(key, DomainDeviceAuth, []byte("challenge"), testRand(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.VerifyDeviceSignature(DomainDeviceAuth, []byte("challenge"), sig); err != nil {
		t.Fatalf("P-256 device signature: %v", err)
	}
	if err := got.VerifyDeviceSignature(DomainDeviceAuth, []byte("challengE"), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered message: %v", err)
	}
}

func TestDeviceSignatureEd25519(t *testing.T) {
	_, dev, cert := testCert(t)
	msg := []byte("server nonce")
	sig, err := SignAsDevice(dev, DomainDeviceAuth, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyDeviceSignature(DomainDeviceAuth, msg, sig); err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyDeviceSignature(DomainUsernameClaim, msg, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other domain: %v", err)
	}
	other := testDeviceKey(t, 9)
	sig2, _ := SignAsDevice(other, DomainDeviceAuth, msg, nil)
	if err := cert.VerifyDeviceSignature(DomainDeviceAuth, msg, sig2); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other device key: %v", err)
	}
	// A plain Ed25519 signature of msg, without the domain, is refused.
	if err := cert.VerifyDeviceSignature(DomainDeviceAuth, msg, ed25519.Sign(dev, msg)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("undomained signature: %v", err)
	}
}

func FuzzParseDeviceCertificate(f *testing.F) {
	_, _, cert := testCert(f)
	f.Add(cert.Marshal())
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseDeviceCertificate(data)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), data) {
			t.Fatal("accepted encoding is not canonical")
		}
		_ = c.Verify()
		_ = c.AccountID()
		_ = c.VerifyDeviceSignature(DomainDeviceAuth, data, data)
	})
}

func BenchmarkIssueDeviceCertificate(b *testing.B) {
	acct := testAccount(b, 1)
	dev := testDeviceKey(b, 1).Public().(ed25519.PublicKey)
	for b.Loop() {
		if _, err := IssueDeviceCertificate(acct, DeviceID{1}, dev, SuiteX25519AES128GCMEd25519, testTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseVerifyDeviceCertificate(b *testing.B) {
	_, _, cert := testCert(b)
	data := cert.Marshal()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := ParseDeviceCertificate(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}
