package archive

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
)

// uploadedMessages counts the message records of every segment in remote,
// by message id.
func uploadedMessages(t *testing.T, remote Remote, ring *Keyring) map[store.MessageID]int {
	t.Helper()
	ctx := context.Background()
	refs, err := loadIndex(ctx, remote, ring)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := map[store.MessageID]int{}
	err = fetchSegments(ctx, remote, refs, func(_ int, recs []Record) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			if r.Message != nil {
				out[r.Message.ID]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestoredMessagesNotUploadedAgain: the device that restored an archive
// and uploads (here the only device) uploads none of the restored messages
// again, though the restore is cut halfway and run again, and the uploader
// runs in between; the messages that arrived while the restore ran, and
// after it, are uploaded once each.
func TestRestoredMessagesNotUploadedAgain(t *testing.T) {
	ctx := context.Background()
	old := newMemRemote()
	st := newStore(t)
	h, forEveryone, forMe := buildHistory(t, st, 3000, 5)
	h.deleteAndExpire(t, forEveryone, forMe)
	ring, _ := NewKeyring(h.rnd)
	a, _ := New(Config{Store: st, Remote: old, Keyring: ring, Device: h.dev, Rand: h.rnd})
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}

	// The restored device uploads to its own remote, so that what it
	// uploads can be counted apart from what it restored.
	fresh := newStore(t)
	mine := newMemRemote()
	up, _ := New(Config{Store: fresh, Remote: mine, Keyring: ring, Device: h.dev, Rand: testRand(77)})
	var live []store.MessageID
	rnd := testRand(99)
	arrive := func(n int) {
		for range n {
			id, _ := store.NewMessageID(rnd)
			h.nextSeq[h.chats[1].ID]++
			m := &store.Message{ID: id, Chat: h.chats[1].ID, Seq: 100_000 + h.nextSeq[h.chats[1].ID], Kind: store.KindText,
				Sender: h.me, SenderDevice: h.dev, Mine: true, State: store.StateSent, Body: []byte("live")}
			if _, err := fresh.Apply(ctx, &store.Batch{Messages: []*store.Message{m}}); err != nil {
				t.Error(err)
				return
			}
			live = append(live, m.ID)
		}
	}

	// The first restore is cut after a few batches, with live messages
	// arriving meanwhile; the uploader runs before the restore is resumed.
	cut, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		arrive(100)
	}()
	_, err := Restore(cut, fresh, old, ring, RestoreOptions{BatchSize: 200, Progress: func(p Progress) {
		if p.MessagesMerged >= 1000 {
			cancel()
		}
	}})
	<-done
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cut restore: %v", err)
	}
	if _, err := up.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := Restore(ctx, fresh, old, ring, RestoreOptions{BatchSize: 200})
	if err != nil || res.Inserted == 0 || res.Conflicts != 0 {
		t.Fatalf("resumed restore: %+v %v", res, err)
	}
	arrive(3)
	if t.Failed() {
		t.FailNow()
	}
	if _, err := up.Upload(ctx); err != nil {
		t.Fatal(err)
	}

	got := uploadedMessages(t, mine, ring)
	for _, id := range live {
		if got[id] != 1 {
			t.Fatalf("live message uploaded %d times, want once", got[id])
		}
		delete(got, id)
	}
	if len(got) != 0 {
		t.Fatalf("%d restored messages uploaded again", len(got))
	}
	if v, ok, err := fresh.Setting(ctx, RestoredSetting); err != nil || ok {
		t.Fatalf("restored changes left after the upload passed them: %q %v %v", v, ok, err)
	}
	// A restored message changed later is uploaded again, in its new form.
	victim := scanAll(t, fresh, h.chats[2].ID)[5]
	if err := fresh.Update(ctx, func(tx *store.Tx) error {
		return tx.DeleteMessage(victim.ID, h.base.Add(72*time.Hour))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := uploadedMessages(t, mine, ring); got[victim.ID] != 1 || len(got) != len(live)+1 {
		t.Fatalf("after a deletion: %d copies of the deleted message, %d messages uploaded", got[victim.ID], len(got))
	}
}

func TestChangeRanges(t *testing.T) {
	r := changeRanges(nil).add([]store.ChangeSeq{5, 3, 4, 9, 11, 10})
	if s := r.String(); s != "3-5,9-11" {
		t.Fatalf("ranges %q", s)
	}
	r = r.add([]store.ChangeSeq{6, 8})
	if s := r.String(); s != "3-6,8-11" || parseRanges(r.String()).String() != s {
		t.Fatalf("ranges %q", s)
	}
	for c, want := range map[store.ChangeSeq]bool{2: false, 3: true, 6: true, 7: false, 8: true, 11: true, 12: false} {
		if r.has(c) != want {
			t.Fatalf("has(%d) = %v", c, !want)
		}
	}
	if s := r.after(4).String(); s != "5-6,8-11" {
		t.Fatalf("after 4: %q", s)
	}
	for _, bad := range []string{"x", "3-2", "0-1", "5-6,1-2", "1-2,2-3", "1-"} {
		if parseRanges(bad) != nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}
