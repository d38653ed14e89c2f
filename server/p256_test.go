package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	ts "github.com/parley-im/parley/internal/testserver"
)

// TestP256DeviceAuthenticates: a device whose MLS suite uses P-256 signs
// its challenge with ECDSA (a longer, variable-size signature).
func TestP256DeviceAuthenticates(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	a := ts.NewIdentity(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var id identity.DeviceID
	_, _ = rand.Read(id[:])
	cert, err := identity.IssueDeviceCertificate(a.Key, id, pub, identity.SuiteP256AES128GCMP256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Dial(t)
	if _, err := c.Register(ctx, a.Key.Public(), cert, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Authenticate(ctx, a.ID, id, key); err != nil {
		t.Fatalf("P-256 device: %v", err)
	}
}
