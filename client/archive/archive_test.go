package archive

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// archiveHistory builds n messages in a fresh store, archives them,
// deletes and expires some, archives again and compacts.
func archiveHistory(t *testing.T, n int, remote Remote, raw *memRemote) (*history, *Keyring, *Archiver) {
	t.Helper()
	ctx := context.Background()
	st := newStore(t)
	h, forEveryone, forMe := buildHistory(t, st, n, 1)
	ring, err := NewKeyring(h.rnd)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Store: st, Remote: remote, Keyring: ring, Device: h.dev, Rand: h.rnd,
		Now: func() time.Time { return h.base }})
	if err != nil {
		t.Fatal(err)
	}
	up, err := a.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up.Records != n || up.Segments == 0 {
		t.Fatalf("first upload: %+v", up)
	}
	h.deleteAndExpire(t, forEveryone, forMe)
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	// Before compaction the archive still holds every secret: the check
	// below is able to fail.
	plain := bytes.Join(decryptAll(t, raw, ring), nil)
	for _, s := range h.secrets {
		if !bytes.Contains(plain, []byte(s)) {
			t.Fatalf("secret %q missing before compaction", s)
		}
	}
	res, err := a.Compact(ctx, h.base.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rewritten == 0 || res.Erased < len(h.secrets) {
		t.Fatalf("compaction: %+v for %d secrets", res, len(h.secrets))
	}
	return h, ring, a
}

func TestArchiveRestore10k(t *testing.T) {
	for _, transport := range []string{"mem", "http"} {
		t.Run(transport, func(t *testing.T) {
			ctx := context.Background()
			raw := newMemRemote()
			var remote Remote = raw
			if transport == "http" {
				remote = newHTTPRemote(t, raw)
			}
			h, ring, _ := archiveHistory(t, 10_000, remote, raw)

			// Deletion holds: no blob, decrypted with the key, holds a
			// deleted or expired text.
			plain := bytes.Join(decryptAll(t, raw, ring), nil)
			for _, s := range h.secrets {
				if bytes.Contains(plain, []byte(s)) {
					t.Fatalf("secret %q survived compaction", s)
				}
			}
			for n, b := range raw.snapshot() {
				if bytes.Contains(b, []byte("SECRET")) || bytes.Contains(b, []byte("message 1")) {
					t.Fatalf("blob %s holds plaintext", n)
				}
			}

			// Restore into a fresh store that already knows the conversations
			// (as after joining their groups).
			fresh := newStore(t)
			if err := fresh.Update(ctx, func(tx *store.Tx) error {
				for _, c := range h.chats {
					if err := tx.PutConversation(c); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			var last Progress
			calls := 0
			res, err := Restore(ctx, fresh, remote, ring, RestoreOptions{Progress: func(p Progress) {
				if p.SegmentsDone < last.SegmentsDone || p.MessagesMerged < last.MessagesMerged {
					t.Errorf("progress went back: %+v after %+v", p, last)
				}
				last = p
				calls++
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res.SegmentsDone != res.SegmentsTotal || res.MessagesMerged != res.MessagesTotal || calls < res.SegmentsTotal {
				t.Fatalf("restore result %+v after %d progress calls", res, calls)
			}
			if res.Conflicts != 0 || res.ReadMarks != len(h.chats) {
				t.Fatalf("restore result %+v", res)
			}
			total := 0
			for i, c := range h.chats {
				want, got := scanAll(t, h.st, c.ID), scanAll(t, fresh, c.ID)
				if len(want) != len(got) {
					t.Fatalf("chat %d: %d rows restored, want %d", i, len(got), len(want))
				}
				for j := range want {
					if !sameMessage(want[j], got[j]) {
						t.Fatalf("chat %d row %d:\n got %+v\nwant %+v", i, j, got[j], want[j])
					}
				}
				total += len(want)
				conv, err := fresh.Conversation(ctx, c.ID)
				if err != nil || conv.LastReadSeq != uint64(100+i) {
					t.Fatalf("read mark of chat %d: %v %+v", i, err, conv)
				}
				// The shown history holds no deleted or expired text.
				page, err := fresh.History(ctx, c.ID, store.HistoryQuery{Limit: store.MaxPageSize})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page.Messages {
					if bytes.Contains(m.Body, []byte("SECRET")) {
						t.Fatalf("deleted text shown: %q", m.Body)
					}
				}
			}
			if total < 10_000 || res.Inserted != total {
				t.Fatalf("restored %d rows, inserted %d", total, res.Inserted)
			}
		})
	}
}

func TestUploadIsIncremental(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 300, 2)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	first, err := a.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Records != 300 || again.Segments != 0 || again.Cursor != first.Cursor {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	// A new archiver on the same store resumes from the saved cursor.
	b, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	if res, err := b.Upload(ctx); err != nil || res.Segments != 0 {
		t.Fatalf("resumed upload: %+v %v", res, err)
	}
	if len(raw.blobs)%2 != 0 || len(raw.blobs) == 0 {
		t.Fatalf("%d blobs", len(raw.blobs))
	}
	for n, b := range raw.blobs {
		if string(n[:2]) == SegmentPrefix && !isBucket(len(b)) {
			t.Fatalf("segment of %d bytes is not padded to a bucket", len(b))
		}
		if string(n[:2]) == KeyRecordPrefix && len(b) != KeyRecordSize {
			t.Fatalf("key record of %d bytes", len(b))
		}
	}
}

func TestUploadsRule(t *testing.T) {
	a, b, c := device(1), device(2), device(3)
	devices := []identity.DeviceID{c, a, b}
	mine := &store.Message{Seq: 1, Mine: true, SenderDevice: b}
	received := &store.Message{Seq: 2, SenderDevice: device(9)}
	fromRevoked := &store.Message{Seq: 3, Mine: true, SenderDevice: device(8)}
	tomb := &store.Message{Seq: 4, Deleted: true}
	pending := &store.Message{Mine: true, SenderDevice: a}
	for _, tc := range []struct {
		m    *store.Message
		want []bool // for a, b, c
	}{
		{mine, []bool{false, true, false}},
		{received, []bool{true, false, false}},
		{fromRevoked, []bool{true, false, false}},
		{tomb, []bool{true, true, true}},
		{pending, []bool{false, false, false}},
	} {
		for i, d := range []identity.DeviceID{a, b, c} {
			if got := Uploads(tc.m, d, devices); got != tc.want[i] {
				t.Errorf("Uploads(%+v, device %d) = %v", tc.m, i, got)
			}
		}
	}
	// Alone, a device uploads everything ordered.
	if !Uploads(received, c, nil) || !Uploads(mine, c, nil) {
		t.Error("a lone device must upload")
	}
}

func TestRestoreWithLiveTraffic(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 3000, 3)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := newStore(t)
	// Live messages keep arriving while the restore runs: new ones, and
	// redeliveries of archived ones.
	archived := scanAll(t, st, h.chats[0].ID)
	var wg sync.WaitGroup
	wg.Add(1)
	var liveErr error
	var live []*store.Message
	go func() {
		defer wg.Done()
		rnd := testRand(99)
		for i := range 200 {
			id, _ := store.NewMessageID(rnd)
			m := &store.Message{ID: id, Chat: h.chats[1].ID, Seq: 100_000 + uint64(i), Kind: store.KindText,
				Sender: h.me, SenderDevice: h.dev, Mine: true, State: store.StateSent, Body: []byte("live")}
			batch := []*store.Message{m}
			if i < len(archived) {
				c := *archived[i]
				batch = append(batch, &c)
			}
			if _, err := fresh.Apply(ctx, &store.Batch{Messages: batch}); err != nil {
				liveErr = err
				return
			}
			live = append(live, m)
		}
	}()
	res, err := Restore(ctx, fresh, raw, ring, RestoreOptions{BatchSize: 100})
	wg.Wait()
	if err != nil || liveErr != nil {
		t.Fatal(err, liveErr)
	}
	if res.Conflicts != 0 {
		t.Fatalf("restore: %+v", res)
	}
	for _, m := range live {
		if _, err := fresh.Message(ctx, m.ID); err != nil {
			t.Fatalf("live message lost: %v", err)
		}
	}
	for _, c := range h.chats {
		want, got := scanAll(t, st, c.ID), scanAll(t, fresh, c.ID)
		extra := 0
		if c.ID == h.chats[1].ID {
			extra = len(live)
		}
		if len(got) != len(want)+extra {
			t.Fatalf("chat %s: %d rows, want %d", c.ID, len(got), len(want)+extra)
		}
		for j := range want {
			if !sameMessage(want[j], got[j]) {
				t.Fatalf("row %d differs", j)
			}
		}
	}
}

func TestRotationRewrapsOnlyKeyRecords(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 2000, 4)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	oldRing, _ := ParseKeyring(mustMarshal(t, ring))
	before := raw.snapshot()
	segPuts, keyPuts := raw.puts[SegmentPrefix], raw.puts[KeyRecordPrefix]
	if g, err := ring.Rotate(h.rnd); err != nil || g != 2 {
		t.Fatalf("rotate: %d %v", g, err)
	}
	res, err := a.Rewrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nkeys := 0
	for n := range before {
		if string(n[:2]) == KeyRecordPrefix {
			nkeys++
		}
	}
	if res.Rewrapped != nkeys || raw.puts[SegmentPrefix] != segPuts || raw.puts[KeyRecordPrefix] != keyPuts+nkeys {
		t.Fatalf("rewrap %+v: segment puts %d→%d, key puts %d→%d", res, segPuts, raw.puts[SegmentPrefix], keyPuts, raw.puts[KeyRecordPrefix])
	}
	after := raw.snapshot()
	for n, b := range before {
		if string(n[:2]) == SegmentPrefix && !bytes.Equal(after[n], b) {
			t.Fatalf("segment %s changed", n)
		}
		if string(n[:2]) == KeyRecordPrefix {
			if g, _ := keyRecordGeneration(after[n]); g != 2 {
				t.Fatalf("key record %s still under generation %d", n, g)
			}
		}
	}
	// Again: nothing left to rewrap.
	if res, err := a.Rewrap(ctx); err != nil || res.Rewrapped != 0 {
		t.Fatalf("second rewrap: %+v %v", res, err)
	}
	// The pruned keyring restores; the revoked generation alone does not.
	ring.Prune(ring.Current())
	if gens := ring.Generations(); len(gens) != 1 || gens[0] != 2 {
		t.Fatalf("generations after prune: %v", gens)
	}
	if _, err := Restore(ctx, newStore(t), raw, ring, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, newStore(t), raw, oldRing, RestoreOptions{}); !errors.Is(err, ErrUnknownGeneration) {
		t.Fatalf("restore with the revoked key: %v", err)
	}
	// New segments use the new generation.
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.MarkRead(h.chats[0].ID, 5) }); err != nil {
		t.Fatal(err)
	}
	if up, err := a.Upload(ctx); err != nil || up.Segments != 1 {
		t.Fatalf("upload after rotation: %+v %v", up, err)
	}
	for n, b := range raw.snapshot() {
		if g, _ := keyRecordGeneration(b); string(n[:2]) == KeyRecordPrefix && g != 2 {
			t.Fatalf("new key record under generation %d", g)
		}
	}
}

func mustMarshal(t testing.TB, r *Keyring) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTamperingDetected(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 500, 5)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	a.maxRecords = 200
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, newStore(t), raw, ring, RestoreOptions{}); err != nil {
		t.Fatalf("untampered restore: %v", err)
	}
	orig := raw.snapshot()
	for name, blob := range orig {
		for _, pos := range []int{0, 1, 5, 30, len(blob) / 2, len(blob) - 1} {
			bad := bytes.Clone(blob)
			bad[pos] ^= 0x40
			raw.Put(ctx, name, bad)
			_, err := Restore(ctx, newStore(t), raw, ring, RestoreOptions{})
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownGeneration) {
				t.Fatalf("byte %d of %s flipped: %v", pos, name, err)
			}
			raw.Put(ctx, name, blob)
		}
		// Truncated and extended blobs.
		for _, bad := range [][]byte{blob[:len(blob)-1], append(bytes.Clone(blob), 0)} {
			raw.Put(ctx, name, bad)
			if _, err := Restore(ctx, newStore(t), raw, ring, RestoreOptions{}); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTampered) {
				t.Fatalf("resized %s: %v", name, err)
			}
			raw.Put(ctx, name, blob)
		}
	}
	// Every blob moved under another segment's name fails authentication.
	for _, prefix := range []string{KeyRecordPrefix, SegmentPrefix} {
		var names []BlobName
		for n := range orig {
			if string(n[:2]) == prefix {
				names = append(names, n)
			}
		}
		if len(names) < 2 {
			t.Fatalf("want two or more %q blobs, have %d", prefix, len(names))
		}
		raw.Put(ctx, names[0], orig[names[1]])
		if _, err := Restore(ctx, newStore(t), raw, ring, RestoreOptions{}); !errors.Is(err, ErrTampered) {
			t.Fatalf("swapped %q blob: %v", prefix, err)
		}
		raw.Put(ctx, names[0], orig[names[0]])
	}
}
