package blob

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/blob/devtoken"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
)

type testDevice struct {
	acct identity.AccountID
	id   identity.DeviceID
	key  ed25519.PrivateKey
}

// setup registers one account with one device in a real SQLite store.
func setupDevice(t *testing.T) (store.Store, testDevice) {
	t.Helper()
	ctx := context.Background()
	st, err := open.Open(ctx, filepath.Join(t.TempDir(), "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ak, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	did, _ := identity.NewDeviceID(rand.Reader)
	cert, err := identity.IssueDeviceCertificate(ak, did, pub, identity.SuiteX25519AES128GCMEd25519, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certBytes := cert.Marshal()
	now := time.Now()
	err = st.CreateAccount(ctx, store.NewAccount{
		Account:     store.Account{ID: ak.ID(), PublicKey: ak.Public(), CreatedAt: now},
		FirstDevice: store.Device{Account: ak.ID(), ID: did, Certificate: certBytes, SigningKey: pub, CreatedAt: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, testDevice{ak.ID(), did, priv}
}

func TestDeviceAuthorizer(t *testing.T) {
	ctx := context.Background()
	st, d := setupDevice(t)
	now := time.Now()
	v := &DeviceAuthorizer{Store: st, Now: func() time.Time { return now }}
	mint := func(c devtoken.Claims, key ed25519.PrivateKey) string {
		tok, err := devtoken.Mint(key, c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return string(tok)
	}
	good := devtoken.Claims{Account: d.acct, Device: d.id, Expires: now.Add(time.Hour)}
	got, err := v.Authorize(ctx, mint(good, d.key))
	if err != nil || got != d.acct {
		t.Fatalf("good token: %v, %v", got, err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	otherDev := good
	otherDev.Device[0] ^= 1
	tok := mint(good, d.key)
	bad := map[string]string{
		"expired":       mint(devtoken.Claims{Account: d.acct, Device: d.id, Expires: now.Add(-time.Second)}, d.key),
		"too long":      mint(devtoken.Claims{Account: d.acct, Device: d.id, Expires: now.Add(devtoken.MaxLifetime + time.Minute)}, d.key),
		"wrong key":     mint(good, otherKey),
		"unknown dev":   mint(otherDev, d.key),
		"garbage":       "pd1.xx.yy",
		"empty":         "",
		"flipped sig":   tok[:len(tok)-2] + flip(tok[len(tok)-2]) + tok[len(tok)-1:],
		"other account": mint(devtoken.Claims{Account: identity.AccountIDFromKey(otherKey.Public().(ed25519.PublicKey)), Device: d.id, Expires: now.Add(time.Hour)}, d.key),
	}
	for name, tok := range bad {
		if _, err := v.Authorize(ctx, tok); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: got %v, want ErrUnauthorized", name, err)
		}
	}
	// A revoked device's tokens stop working.
	if err := st.RevokeDevice(ctx, store.DeviceRef{Account: d.acct, Device: d.id}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Authorize(ctx, mint(good, d.key)); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked device: %v", err)
	}
}

func TestDeviceAuthorizerDeletedAccount(t *testing.T) {
	ctx := context.Background()
	st, d := setupDevice(t)
	v := &DeviceAuthorizer{Store: st}
	tok, err := devtoken.Mint(d.key, devtoken.Claims{Account: d.acct, Device: d.id, Expires: time.Now().Add(time.Hour)}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAccount(ctx, d.acct); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Authorize(ctx, string(tok)); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("deleted account: %v", err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
