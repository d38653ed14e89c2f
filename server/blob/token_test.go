package blob

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
)

const testAccount = identity.AccountID("abcdefghijklmnopqrstuvwxyz234567")

func TestTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	secret := []byte(strings.Repeat("s", 32))
	tk, err := NewTokens(secret, time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, exp := tk.Mint(testAccount)
	if !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("expiry %v", exp)
	}
	if got, err := tk.Authorize(ctx, tok); err != nil || got != testAccount {
		t.Fatalf("valid token: %v %v", got, err)
	}
	other, _ := NewTokens([]byte(strings.Repeat("x", 32)), time.Hour, clock)
	bad := []string{"", "pbt1.", tok + "A", tok[:len(tok)-1], strings.Replace(tok, "pbt1.", "pbt2.", 1), strings.Repeat("a", 300)}
	forged, _ := other.Mint(testAccount)
	bad = append(bad, forged)
	for _, b := range bad {
		if _, err := tk.Authorize(ctx, b); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("token %q accepted: %v", b, err)
		}
	}
	now = now.Add(time.Hour)
	if _, err := tk.Authorize(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("expired token accepted: %v", err)
	}
	now = now.Add(-time.Minute)
	tk.Check = func(context.Context, identity.AccountID) error { return errors.New("account deleted") }
	if _, err := tk.Authorize(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("refused account accepted: %v", err)
	}
	if _, err := NewTokens(secret[:31], time.Hour, nil); err == nil {
		t.Fatal("short secret accepted")
	}
}

func FuzzTokensAuthorize(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk, _ := NewTokens([]byte(strings.Repeat("s", 32)), time.Hour, func() time.Time { return now })
	tok, _ := tk.Mint(testAccount)
	f.Add(tok)
	f.Add("pbt1.AAAA.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		acct, err := tk.Authorize(context.Background(), s)
		if err == nil && acct != testAccount {
			t.Fatalf("forged token accepted for %q", acct)
		}
	})
}
