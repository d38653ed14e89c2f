package archive

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// copyMessages stores every row of src's chats in dst, as a second device
// of the account that received the same messages would hold them.
func copyMessages(t *testing.T, h *history, dst *store.Store) {
	t.Helper()
	for _, c := range h.chats {
		rows := scanAll(t, h.st, c.ID)
		for len(rows) > 0 {
			n := min(len(rows), 1000)
			if _, err := dst.Apply(context.Background(), &store.Batch{Messages: rows[:n]}); err != nil {
				t.Fatal(err)
			}
			rows = rows[n:]
		}
	}
}

func TestEachMessageUploadedOnce(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	stA := newStore(t)
	h, _, _ := buildHistory(t, stA, 2000, 6)
	stB := newStore(t)
	copyMessages(t, h, stB)
	ring, _ := NewKeyring(h.rnd)
	// h.dev (7) sent our messages; device 3 is the account's other device
	// and has the lowest id, so it uploads what others sent.
	devices := func() []identity.DeviceID { return []identity.DeviceID{h.dev, device(3)} }
	a, _ := New(Config{Store: stA, Remote: raw, Keyring: ring, Device: h.dev, Devices: devices, Rand: h.rnd})
	b, _ := New(Config{Store: stB, Remote: raw, Keyring: ring, Device: device(3), Devices: devices, Rand: h.rnd})
	ra, err := a.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Records == 0 || rb.Records == 0 || ra.Records+rb.Records != 2000 {
		t.Fatalf("device A uploaded %d, device B %d records of 2000 messages", ra.Records, rb.Records)
	}
	fresh := newStore(t)
	res, err := Restore(ctx, fresh, raw, ring, RestoreOptions{})
	if err != nil || res.Inserted != 2000 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	for _, c := range h.chats {
		want, got := scanAll(t, stA, c.ID), scanAll(t, fresh, c.ID)
		if len(want) != len(got) {
			t.Fatalf("%d rows, want %d", len(got), len(want))
		}
		for i := range want {
			if !sameMessage(want[i], got[i]) {
				t.Fatalf("row %d differs", i)
			}
		}
	}
}

func TestCompactErasesExpiredAndRestoreDeletesLiveCopies(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 600, 7)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	// A second device already holds every message, then restores the
	// archive after this device deleted one for me.
	other := newStore(t)
	copyMessages(t, h, other)
	victim := scanAll(t, st, h.chats[0].ID)[0]
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteMessage(victim.ID, h.base) }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := Restore(ctx, other, raw, ring, RestoreOptions{})
	if err != nil || res.Tombstoned != 1 || res.Inserted != 0 {
		t.Fatalf("restore over a full store: %+v %v", res, err)
	}
	if m, err := other.Message(ctx, victim.ID); err != nil || !m.Deleted || len(m.Body) != 0 {
		t.Fatalf("deleted message on the other device: %+v %v", m, err)
	}

	// Compaction at a time past the disappearing messages' expiry erases
	// them even though no device has expired them yet.
	var expiring [][]byte
	for _, c := range h.chats {
		for _, m := range scanAll(t, st, c.ID) {
			if !m.ExpiresAt.IsZero() {
				expiring = append(expiring, m.Body)
			}
		}
	}
	if len(expiring) == 0 {
		t.Fatal("no disappearing messages in the history")
	}
	plain := bytes.Join(decryptAll(t, raw, ring), nil)
	if !bytes.Contains(plain, expiring[0]) || !bytes.Contains(plain, victim.Body) {
		t.Fatal("archive lacks the texts before compaction")
	}
	if _, err := a.Compact(ctx, h.base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if plain := bytes.Join(decryptAll(t, raw, ring), nil); !bytes.Contains(plain, expiring[0]) || bytes.Contains(plain, victim.Body) {
		t.Fatal("compaction before expiry: wrong content erased")
	}
	res2, err := a.Compact(ctx, h.base.Add(1000*time.Hour))
	if err != nil || res2.Erased < len(expiring) {
		t.Fatalf("compact: %+v %v", res2, err)
	}
	plain = bytes.Join(decryptAll(t, raw, ring), nil)
	for _, b := range expiring {
		if bytes.Contains(plain, b) {
			t.Fatalf("expired text %q survived compaction", b)
		}
	}
	// Compacting again finds nothing to do.
	if res3, err := a.Compact(ctx, h.base.Add(1000*time.Hour)); err != nil || res3.Rewritten != 0 {
		t.Fatalf("second compaction: %+v %v", res3, err)
	}
}

func TestCompactHonoursDeleteEventsWithoutTombstones(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, forEveryone, _ := buildHistory(t, st, 400, 8)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd})
	// Only the delete events are archived (as if the targets' tombstones
	// were lost): build a segment by hand from the store's rows, leaving
	// tombstones out.
	h.deleteAndExpire(t, nil, nil)
	var recs []Record
	for _, c := range h.chats {
		for _, m := range scanAll(t, st, c.ID) {
			recs = append(recs, Record{Message: archivable(m)})
		}
	}
	target := forEveryone[0]
	h.nextSeq[target.Chat]++
	del := &store.Message{ID: h.msgID(), Chat: target.Chat, Seq: h.nextSeq[target.Chat], Kind: store.KindDelete,
		Target: target.ID, Sender: target.Sender, SenderDevice: target.SenderDevice, State: store.StateReceived, SentAt: h.base}
	// A forged deletion from someone else must not erase anything.
	forged := *del
	forged.ID, forged.Seq, forged.Target, forged.Sender = h.msgID(), del.Seq+1, forEveryone[1].ID, h.me
	if forged.Sender == forEveryone[1].Sender {
		t.Fatal("fixture: pick another target")
	}
	recs = append(recs, Record{Message: del}, Record{Message: &forged})
	if _, err := a.putSegment(ctx, recs, &IndexEntry{Created: h.base}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Compact(ctx, h.base); err != nil {
		t.Fatal(err)
	}
	plain := bytes.Join(decryptAll(t, raw, ring), nil)
	if bytes.Contains(plain, target.Body) || !bytes.Contains(plain, forEveryone[1].Body) {
		t.Fatal("compaction did not follow the sender's deletion only")
	}
}
