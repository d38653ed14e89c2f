package identity

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFoldUsername(t *testing.T) {
	good := map[string]string{
		"alice":                             "alice",
		"Alice":                             "alice",
		"BOB_42":                            "bob_42",
		"a_b_c":                             "a_b_c",
		"abc":                               "abc",
		strings.Repeat("x", MaxUsernameLen): strings.Repeat("x", MaxUsernameLen),
	}
	for in, want := range good {
		got, err := FoldUsername(in)
		if err != nil || got != want {
			t.Errorf("FoldUsername(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "ab", strings.Repeat("x", MaxUsernameLen+1),
		"1alice", "_alice", "alice_", "al__ice",
		"al.ice", "al-ice", "al ice", "alice@x", "ali\x00ce",
		"аlice",       // Cyrillic а
		"\u212aelvin", // Kelvin sign, which strings.ToLower maps to 'k'
		"ａlice",       // full-width a
		"alicé",
	}
	for _, in := range bad {
		if got, err := FoldUsername(in); !errors.Is(err, ErrInvalidUsername) {
			t.Errorf("FoldUsername(%q) = %q, %v; want ErrInvalidUsername", in, got, err)
		}
	}
}

func TestUsernameSkeletonCollisions(t *testing.T) {
	groups := [][]string{
		{"alice", "a1ice", "Al_ice", "ALlCE", "ailce", "a_1_i_c_e"},
		{"bob", "b0b", "BOB", "bo8", "b06"},
		{"modern", "rnodern", "modem", "rn0dern"},
		{"sword", "s_word", "svvord", "swor_d"}, {"sass", "sa55", "sa5s"},
		{"dean", "clean", "c1ean", "dea_n"},
		{"tez", "te2", "t3z", "t32"},
		{"gag", "ga9", "ga_g"},
	}
	for _, g := range groups {
		want, err := UsernameSkeleton(g[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range g[1:] {
			got, err := UsernameSkeleton(name)
			if err != nil {
				t.Fatalf("UsernameSkeleton(%q): %v", name, err)
			}
			if got != want {
				t.Errorf("skeleton(%q) = %q, skeleton(%q) = %q; want a collision", name, got, g[0], want)
			}
		}
	}
	distinct := []string{"alice", "alex", "bob", "carol", "dave", "mallory", "trent", "peggy", "victor"}
	seen := map[string]string{}
	for _, name := range distinct {
		s, err := UsernameSkeleton(name)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[s]; ok {
			t.Errorf("%q and %q collide on %q", name, prev, s)
		}
		seen[s] = name
	}
	if _, err := UsernameSkeleton("1bad"); !errors.Is(err, ErrInvalidUsername) {
		t.Fatalf("skeleton of an invalid name: %v", err)
	}
}

func TestUsernameClaimRoundTrip(t *testing.T) {
	acct := testAccount(t, 1)
	c, err := IssueUsernameClaim(acct, "Alice_1", "Chat.Example.org:8443", testTime)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	got, err := ParseUsernameClaim(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), c.Marshal()) {
		t.Fatal("re-encoding differs")
	}
	if got.Username() != "alice_1" || got.Server() != "chat.example.org:8443" ||
		got.Address() != "alice_1@chat.example.org:8443" || got.Skeleton() != "allcel" {
		t.Fatalf("fields: %q %q %q %q", got.Username(), got.Server(), got.Address(), got.Skeleton())
	}
	if got.AccountID() != acct.ID() || !got.AccountKey().Equal(acct.Public()) || !got.Created().Equal(testTime) {
		t.Fatal("account or time differs")
	}
}

func TestUsernameClaimTamper(t *testing.T) {
	acct := testAccount(t, 1)
	c, err := IssueUsernameClaim(acct, "alice", "example.org", testTime)
	if err != nil {
		t.Fatal(err)
	}
	data := c.Marshal()
	for i := range data {
		for _, flip := range []byte{0x01, 0x20, 0x80} {
			bad := bytes.Clone(data)
			bad[i] ^= flip
			p, err := ParseUsernameClaim(bad)
			if err != nil {
				continue
			}
			if err := p.Verify(); err == nil {
				t.Fatalf("flipping bit %#x of byte %d still verifies", flip, i)
			}
		}
	}
	// Each field changed, original signature grafted on.
	sig := data[len(data)-64:]
	other := testAccount(t, 2)
	mutants := map[string][]any{
		"account":  {other, "alice", "example.org", testTime},
		"username": {acct, "alicf", "example.org", testTime},
		"server":   {acct, "alice", "example.com", testTime},
		"created":  {acct, "alice", "example.org", testTime.Add(time.Second)},
	}
	for name, m := range mutants {
		mc, err := IssueUsernameClaim(m[0].(*AccountKey), m[1].(string), m[2].(string), m[3].(time.Time))
		if err != nil {
			t.Fatal(err)
		}
		md := mc.Marshal()
		grafted := append(md[:len(md)-64:len(md)-64], sig...)
		p, err := ParseUsernameClaim(grafted)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := p.Verify(); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	// A device certificate signature cannot be passed off as a claim's.
	tbs := data[:len(data)-64]
	xsig, _ := acct.Sign(DomainDeviceCertificate, tbs)
	p, err := ParseUsernameClaim(append(bytes.Clone(tbs), xsig...))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cross-domain signature: %v", err)
	}
}

func TestParseUsernameClaimStrict(t *testing.T) {
	acct := testAccount(t, 1)
	c, _ := IssueUsernameClaim(acct, "alice", "example.org", testTime)
	data := c.Marshal()
	userOff := 1 + 32 + 1
	upper := bytes.Clone(data)
	upper[userOff] = 'A'
	hostUpper := bytes.Clone(data)
	hostUpper[userOff+5+1] = 'E'
	cases := map[string][]byte{
		"empty":           nil,
		"trailing":        append(bytes.Clone(data), 0),
		"truncated":       data[:len(data)-1],
		"version 2":       append([]byte{2}, data[1:]...),
		"unfolded name":   upper,
		"upper-case host": hostUpper,
		"too long":        make([]byte, MaxUsernameClaimSize+1),
	}
	for name, in := range cases {
		if _, err := ParseUsernameClaim(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", name, err)
		}
	}
	for _, bad := range []string{"", "exa mple.org", "example.org/x", "a@b", strings.Repeat("a", 256)} {
		if _, err := IssueUsernameClaim(acct, "alice", bad, testTime); !errors.Is(err, ErrInvalidServer) {
			t.Errorf("server %q: %v", bad, err)
		}
	}
	if _, err := IssueUsernameClaim(acct, "al", "example.org", testTime); !errors.Is(err, ErrInvalidUsername) {
		t.Errorf("short username: %v", err)
	}
	if _, err := IssueUsernameClaim(acct, "alice", "example.org", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrInvalidTime) {
		t.Errorf("year 10000: %v", err)
	}
}

func FuzzParseUsernameClaim(f *testing.F) {
	c, err := IssueUsernameClaim(testAccount(f, 1), "alice", "example.org", testTime)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseUsernameClaim(data)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), data) {
			t.Fatal("accepted encoding is not canonical")
		}
		if _, err := FoldUsername(c.Username()); err != nil {
			t.Fatalf("accepted invalid username %q", c.Username())
		}
		_ = c.Verify()
	})
}

func FuzzUsernameSkeleton(f *testing.F) {
	for _, s := range []string{"alice", "a1ice", "rnodern", "x__y", "Ａlice"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		folded, err := FoldUsername(s)
		if err != nil {
			return
		}
		if again, err := FoldUsername(folded); err != nil || again != folded {
			t.Fatalf("folding is not idempotent: %q -> %q -> %q, %v", s, folded, again, err)
		}
		sk := skeleton(folded)
		if skeleton(sk) != sk {
			t.Fatalf("skeleton is not idempotent: %q -> %q -> %q", folded, sk, skeleton(sk))
		}
		for _, c := range []byte(sk) {
			if c < 'a' || c > 'z' {
				t.Fatalf("skeleton %q holds %q", sk, c)
			}
		}
	})
}
