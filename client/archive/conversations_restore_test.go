package archive

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// TestRestoredConversationsNotUploadedAgain: a store restored from the
// archive holds its conversations (a self group turned left among them)
// and read marks as uploaded: nothing is pending, and its uploads carry
// none of them, so its possibly stale copies never beat a record another
// device uploads after the restore. A change made on the restored store is
// uploaded, and wins over the record it was restored from even when the
// restoring device's clock is behind the one that uploaded it. A chat
// deleted on the restored store stays deleted through another restore.
func TestRestoredConversationsNotUploadedAgain(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 40, 33)
	ring, _ := NewKeyring(h.rnd)
	now := h.base
	a, err := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	self := store.GroupID("self-group-33")
	grp, other := h.chats[0], h.chats[1]
	if err := st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutConversation(&store.Conversation{ID: store.ChatIDFromGroup(self), Kind: store.ChatSelf, Group: self,
			Members: []identity.AccountID{h.me}, CreatedAt: h.base}); err != nil {
			return err
		}
		if err := tx.SetSetting(store.ChatAdminsSetting(grp.ID), string(h.me)+","+string(h.me)); err != nil {
			return err
		}
		return tx.MarkRead(grp.ID, 3)
	}); err != nil {
		t.Fatal(err)
	}
	if up, err := a.Upload(ctx); err != nil || up.Conversations != len(h.chats)+1 {
		t.Fatalf("first upload: %+v %v", up, err)
	}

	// Device B restores. Its messages are device A's to upload (A has the
	// lower id), so an upload by B has nothing of its own to carry.
	later := newStore(t)
	res, err := Restore(ctx, later, raw, ring, RestoreOptions{})
	if err != nil || res.Conversations != len(h.chats)+1 || res.ReadMarks != 1 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	bNow := now.Add(time.Hour)
	b, err := New(Config{Store: later, Remote: raw, Keyring: ring, Device: device(9), Rand: h.rnd,
		Devices: func() []identity.DeviceID { return []identity.DeviceID{h.dev, device(9)} },
		Now:     func() time.Time { return bNow }})
	if err != nil {
		t.Fatal(err)
	}
	wantPending(t, later, false)

	// A renames after B restored; B's upload, stamped later, must not put
	// the old name back.
	now = now.Add(time.Minute)
	grp.Name = "renamed on A"
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.PutConversation(grp) }); err != nil {
		t.Fatal(err)
	}
	if up, err := a.Upload(ctx); err != nil || up.Conversations != 1 {
		t.Fatalf("rename on A: %+v %v", up, err)
	}
	if up, err := b.Upload(ctx); err != nil || up.Conversations != 0 || up.Records != 0 {
		t.Fatalf("B's upload after a restore alone: %+v %v", up, err)
	}
	wantName(t, raw, ring, grp.ID, "renamed on A")

	// B changes a conversation, its clock now an hour behind A's: the
	// change is uploaded, and wins over the restored record.
	bNow = h.base.Add(-time.Hour)
	o, err := later.Conversation(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	o.Name = "renamed on B"
	if err := later.Update(ctx, func(tx *store.Tx) error { return tx.PutConversation(o) }); err != nil {
		t.Fatal(err)
	}
	wantPending(t, later, true)
	if up, err := b.Upload(ctx); err != nil || up.Conversations != 1 {
		t.Fatalf("B's change: %+v %v", up, err)
	}
	wantPending(t, later, false)
	wantName(t, raw, ring, other.ID, "renamed on B")
	wantName(t, raw, ring, grp.ID, "renamed on A")

	// B deletes a chat, then restores again before uploading: the chat
	// stays deleted and its tombstone is still uploaded.
	gone := h.chats[2].ID
	if err := later.Update(ctx, func(tx *store.Tx) error { return tx.DeleteConversation(gone) }); err != nil {
		t.Fatal(err)
	}
	if res, err := Restore(ctx, later, raw, ring, RestoreOptions{}); err != nil || res.Conversations != 0 {
		t.Fatalf("restore after a deletion: %+v %v", res, err)
	}
	if _, err := later.Conversation(ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a restore brought back a chat deleted here: %v", err)
	}
	if up, err := b.Upload(ctx); err != nil || up.Conversations != 1 {
		t.Fatalf("tombstone upload: %+v %v", up, err)
	}
	fresh := newStore(t)
	if _, err := Restore(ctx, fresh, raw, ring, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Conversation(ctx, gone); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the deleted chat was restored: %v", err)
	}
}

// wantName restores the archive into a fresh store and checks chat's name.
func wantName(t *testing.T, raw Remote, ring *Keyring, chat store.ChatID, want string) {
	t.Helper()
	ctx := context.Background()
	fresh := newStore(t)
	if _, err := Restore(ctx, fresh, raw, ring, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := fresh.Conversation(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != want {
		t.Fatalf("restored name %q, want %q", c.Name, want)
	}
}
