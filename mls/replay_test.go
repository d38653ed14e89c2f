package mls

import (
	"bytes"
	"errors"
	"testing"
)

// TestReplayIsErrReplay: an application message whose generation was
// already consumed is refused with ErrReplay (not ErrDecrypt), whether it
// was consumed in order, out of order from the retained window, or in a
// past epoch kept for the grace period, and the refusal leaves the group
// state byte for byte unchanged.
func TestReplayIsErrReplay(t *testing.T) {
	cfg := testConfig(X25519AES128GCM)
	cfg.EpochGrace = 1
	alice, bob := newClient(t, cfg, "alice"), newClient(t, cfg, "bob")
	var err error
	if alice.g, err = Create(cfg, GroupID("replay"), alice.cred, alice.signer, nil); err != nil {
		t.Fatal(err)
	}
	kp := bob.keyPackage(t)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kp.KeyPackage}, InlineTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if bob.g, err = Join(cfg, res.Welcome, kp, nil); err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for i := range 4 {
		ct, err := alice.g.Encrypt([]byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, ct)
	}
	replayed := func(what string, ct []byte) {
		t.Helper()
		before, err := bob.g.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		_, err = bob.g.Process(ct)
		if !errors.Is(err, ErrReplay) || errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s: got %v, want ErrReplay only", what, err)
		}
		after, err := bob.g.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("%s: the refused replay changed the group state", what)
		}
	}
	// In order: generation 0, then its replay.
	if p, err := bob.g.Process(msgs[0]); err != nil || p.Application[0] != 0 {
		t.Fatalf("message 0: %v", err)
	}
	replayed("in-order replay", msgs[0])
	// Out of order: 3 first (1 and 2 are retained), then 2, then both again.
	for _, i := range []int{3, 2} {
		if p, err := bob.g.Process(msgs[i]); err != nil || p.Application[0] != byte(i) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	replayed("replay of the newest generation", msgs[3])
	replayed("replay of a retained generation", msgs[2])
	// Generation 1 is still retained and is accepted once.
	if p, err := bob.g.Process(msgs[1]); err != nil || p.Application[0] != 1 {
		t.Fatalf("late message 1: %v", err)
	}
	replayed("replay of a late generation", msgs[1])
	// A past epoch in the grace period: Bob commits, and Alice's message of
	// the old epoch is accepted once and then refused as a replay.
	late, err := alice.g.Encrypt([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if err := bob.g.MergePendingCommit(); err != nil {
		t.Fatal(err)
	}
	if p, err := bob.g.Process(late); err != nil || string(p.Application) != "late" {
		t.Fatalf("late message of the past epoch: %v", err)
	}
	replayed("replay into a past epoch", late)
	// A forged ciphertext is still ErrDecrypt, not a replay.
	forged, err := alice.g.Encrypt([]byte("forged"), nil)
	if err != nil {
		t.Fatal(err)
	}
	forged[len(forged)-1] ^= 1
	if _, err := bob.g.Process(forged); errors.Is(err, ErrReplay) || err == nil {
		t.Fatalf("a tampered message: %v, want a non-replay refusal", err)
	}
}
