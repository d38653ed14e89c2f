package archive

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestKeyring(t *testing.T) {
	rnd := testRand(40)
	r, err := NewKeyring(rnd)
	if err != nil {
		t.Fatal(err)
	}
	if r.Current() != 1 {
		t.Fatalf("first generation %d", r.Current())
	}
	for want := Generation(2); want <= 4; want++ {
		if g, err := r.Rotate(rnd); err != nil || g != want {
			t.Fatalf("rotate: %d %v", g, err)
		}
	}
	k2, _ := r.key(2)
	back, err := ParseKeyring(mustMarshal(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := back.key(2); got != k2 || back.Current() != 4 {
		t.Fatal("keyring does not round-trip")
	}
	r.Prune(3)
	if g := r.Generations(); len(g) != 2 || g[0] != 3 || g[1] != 4 {
		t.Fatalf("after prune: %v", g)
	}
	r.Prune(100) // never drops the current generation
	if g := r.Generations(); len(g) != 1 || g[0] != 4 {
		t.Fatalf("after prune past current: %v", g)
	}
	for len(r.Generations()) < MaxGenerations {
		if _, err := r.Rotate(rnd); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Rotate(rnd); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rotate past the limit: %v", err)
	}
	// Strict decoding.
	good := mustMarshal(t, back)
	for name, bad := range map[string][]byte{
		"empty":     {},
		"version":   append([]byte{9}, good[1:]...),
		"no keys":   {keyringVersion, 0},
		"trailing":  append(bytes.Clone(good), 0),
		"truncated": good[:len(good)-1],
		"order":     append(append([]byte{keyringVersion, 2}, good[2+4+KeySize:]...), good[2:2+4+KeySize]...),
	} {
		if _, err := ParseKeyring(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBuckets(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{0, MinBucket}, {MinBucket, MinBucket}, {MinBucket + 1, 2 * MinBucket}, {MaxBucket, MaxBucket}} {
		if got, ok := bucketFor(tc.n); !ok || got != tc.want {
			t.Errorf("bucketFor(%d) = %d, %v", tc.n, got, ok)
		}
	}
	if _, ok := bucketFor(MaxBucket + 1); ok {
		t.Error("no bucket above MaxBucket")
	}
}

func TestRestoreCancelled(t *testing.T) {
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 300, 41)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	if _, err := a.Upload(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fresh := newStore(t)
	if _, err := Restore(ctx, fresh, raw, ring, RestoreOptions{}); err == nil {
		t.Fatal("cancelled restore succeeded")
	}
	if rows := scanAll(t, fresh, h.chats[0].ID); len(rows) != 0 {
		t.Fatalf("cancelled restore wrote %d rows", len(rows))
	}
}
