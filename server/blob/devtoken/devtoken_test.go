package devtoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
)

func TestMintParseVerify(t *testing.T) {
	ak, _ := identity.GenerateAccountKey(rand.Reader)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	did, _ := identity.NewDeviceID(rand.Reader)
	cert, err := identity.IssueDeviceCertificate(ak, did, pub, identity.SuiteX25519AES128GCMEd25519, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Account: ak.ID(), Device: did, Expires: time.Unix(2e9, 0)}
	tok, err := Mint(key, want, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, p, sig, err := Parse(tok)
	if err != nil || got.Account != want.Account || got.Device != want.Device || !got.Expires.Equal(want.Expires) {
		t.Fatalf("Parse: %+v, %v", got, err)
	}
	if err := Verify(cert, p, sig); err != nil {
		t.Fatal(err)
	}
	p[len(p)-1] ^= 1
	if err := Verify(cert, p, sig); err == nil {
		t.Fatal("verified a changed payload")
	}
	for _, bad := range []Token{"", "pd1.", "pd2." + tok[4:], "pd1.AQ.AA", tok[:20] + "." + tok[21:]} {
		if _, _, _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ak, _ := identity.GenerateAccountKey(rand.Reader)
	tok, _ := Mint(key, Claims{Account: ak.ID(), Expires: time.Unix(1e9, 0)}, rand.Reader)
	f.Add(string(tok))
	f.Add("pd1..")
	f.Add("pd1.AQ.AA")
	f.Fuzz(func(t *testing.T, s string) {
		c, p, _, err := Parse(Token(s))
		if err != nil {
			return
		}
		again, err := c.payload()
		if err != nil || string(again) != string(p) {
			t.Fatalf("payload does not round-trip: %x vs %x (%v)", again, p, err)
		}
	})
}
