package archive

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

func TestConversationRecordCodec(t *testing.T) {
	rnd := testRand(30)
	a, b := newAccount(t, rnd), newAccount(t, rnd)
	g := store.GroupID("codec-group")
	live := &ConversationRecord{Conv: store.Conversation{ID: store.ChatIDFromGroup(g), Kind: store.ChatGroup, Group: g,
		Name: "the group ✓", Members: []identity.AccountID{a, b}, CreatedAt: time.Unix(100, 5).UTC(),
		DisappearAfter: time.Hour, Archived: true}, Admins: []identity.AccountID{a}, Updated: time.Unix(200, 0).UTC()}
	tomb := &ConversationRecord{Conv: store.Conversation{ID: live.Conv.ID, Kind: store.ChatGroup, Group: g},
		Updated: time.Unix(300, 0).UTC(), Deleted: true}
	raw, err := appendRecords([]Record{{Conv: live}, {Conv: tomb}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseRecords(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Conv == nil || got[1].Conv == nil {
		t.Fatalf("decoded %+v", got)
	}
	if g0 := got[0].Conv; g0.Conv.Name != live.Conv.Name || !slices.Equal(g0.Conv.Members, live.Conv.Members) ||
		!slices.Equal(g0.Admins, live.Admins) || !g0.Conv.CreatedAt.Equal(live.Conv.CreatedAt) || g0.Conv.DisappearAfter != time.Hour ||
		!g0.Conv.Archived || g0.Conv.Left || !g0.Updated.Equal(live.Updated) || g0.Deleted {
		t.Fatalf("live record came back as %+v", g0)
	}
	if !got[1].Conv.Deleted || got[1].Conv.Conv.Name != "" {
		t.Fatalf("tombstone came back as %+v", got[1].Conv)
	}

	// A tombstone may not carry content, on either side of the codec.
	bad := *tomb
	bad.Conv.Name = "leak"
	if _, err := appendRecords([]Record{{Conv: &bad}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("encoding a tombstone with a name: %v", err)
	}
	// Corruptions the decoder must refuse: each edits the encoded live record.
	one, _ := appendRecords([]Record{{Conv: live}})
	chatAt := 1 + 4 + 1 // version, count, kind
	groupAt := chatAt + 1 + store.ChatIDLen
	kindAt := groupAt + 1 + len(g)
	for name, edit := range map[string]func(b []byte){
		"unknown kind":   func(b []byte) { b[kindAt] = 9 },
		"unknown flag":   func(b []byte) { b[kindAt+1] |= 0x80 },
		"tombstone+name": func(b []byte) { b[kindAt+1] |= convDeleted },
		"group mismatch": func(b []byte) { b[groupAt+1] ^= 1 },
		"zero update":    func(b []byte) { clear(b[kindAt+2 : kindAt+10]) },
		"truncated":      func(b []byte) {},
	} {
		b := bytes.Clone(one)
		edit(b)
		if name == "truncated" {
			b = b[:len(b)-3]
		}
		if _, err := parseRecords(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestConversationsArchived: the archiver uploads each conversation once and
// again only when it changes; a fresh store restored from the archive lists
// the conversations with their names, members, admins and timers (a self
// group as left); the newest record wins; a conversation the store deleted
// is archived as a tombstone, compaction erases its messages and records,
// and a restore leaves it out.
func TestConversationsArchived(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 200, 31)
	ring, _ := NewKeyring(h.rnd)
	now := h.base
	a, err := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	self := store.GroupID("self-group")
	selfConv := &store.Conversation{ID: store.ChatIDFromGroup(self), Kind: store.ChatSelf, Group: self,
		Members: []identity.AccountID{h.me}, CreatedAt: h.base}
	grp := h.chats[0]
	grp.DisappearAfter, grp.Members = 90*time.Second, []identity.AccountID{h.me}
	if err := st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutConversation(selfConv); err != nil {
			return err
		}
		if err := tx.PutConversation(grp); err != nil {
			return err
		}
		return tx.SetSetting(store.ChatAdminsSetting(grp.ID), string(h.me))
	}); err != nil {
		t.Fatal(err)
	}
	up, err := a.Upload(ctx)
	if err != nil || up.Conversations != len(h.chats)+1 {
		t.Fatalf("first upload: %+v %v", up, err)
	}
	if up, err := a.Upload(ctx); err != nil || up.Conversations != 0 || up.Segments != 0 {
		t.Fatalf("unchanged conversations uploaded again: %+v %v", up, err)
	}
	wantPending(t, st, false)
	// A rename is uploaded (once), later than the first record.
	now = now.Add(time.Minute)
	grp.Name = "renamed"
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.PutConversation(grp) }); err != nil {
		t.Fatal(err)
	}
	wantPending(t, st, true)
	if up, err := a.Upload(ctx); err != nil || up.Conversations != 1 {
		t.Fatalf("rename: %+v %v", up, err)
	}
	wantPending(t, st, false)

	fresh := newStore(t)
	res, err := Restore(ctx, fresh, raw, ring, RestoreOptions{})
	if err != nil || res.Conversations != len(h.chats)+1 || res.Inserted != 200 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	got, err := fresh.Conversation(ctx, grp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || got.Kind != store.ChatGroup || got.DisappearAfter != 90*time.Second ||
		!slices.Equal(got.Members, grp.Members) || got.Left || !got.CreatedAt.Equal(grp.CreatedAt) {
		t.Fatalf("restored %+v, want %+v", got, grp)
	}
	if v, _, _ := fresh.Setting(ctx, store.ChatAdminsSetting(grp.ID)); v != string(h.me) {
		t.Fatalf("restored admins %q", v)
	}
	if s, err := fresh.Conversation(ctx, selfConv.ID); err != nil || !s.Left {
		t.Fatalf("restored self group %+v %v: want it listed as left", s, err)
	}
	if len(scanAll(t, fresh, grp.ID)) == 0 {
		t.Fatal("the restored conversation has no history")
	}

	// The store deletes a conversation: a tombstone; compaction erases
	// its name and its messages from the archive.
	doomed := h.chats[1]
	var doomedTexts []string
	for _, m := range scanAll(t, st, doomed.ID) {
		if m.Kind == store.KindText && !m.Deleted {
			doomedTexts = append(doomedTexts, string(m.Body))
		}
	}
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteConversation(doomed.ID) }); err != nil {
		t.Fatal(err)
	}
	wantPending(t, st, true)
	now = now.Add(time.Minute)
	if up, err := a.Upload(ctx); err != nil || up.Conversations != 1 {
		t.Fatalf("tombstone upload: %+v %v", up, err)
	}
	wantPending(t, st, false)
	if up, err := a.Upload(ctx); err != nil || up.Conversations != 0 {
		t.Fatalf("tombstone uploaded twice: %+v %v", up, err)
	}
	plain := bytes.Join(decryptAll(t, raw, ring), nil)
	if !bytes.Contains(plain, []byte(doomedTexts[0])) || !bytes.Contains(plain, []byte(doomed.Name)) {
		t.Fatal("the deleted conversation is not in the archive before compaction: the check below cannot fail")
	}
	if _, err := a.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	plain = bytes.Join(decryptAll(t, raw, ring), nil)
	for _, s := range append(doomedTexts, doomed.Name) {
		if bytes.Contains(plain, []byte(s)) {
			t.Fatalf("the archive still holds %q of a deleted conversation", s)
		}
	}
	again := newStore(t)
	res, err = Restore(ctx, again, raw, ring, RestoreOptions{})
	if err != nil || res.Conversations != len(h.chats) {
		t.Fatalf("restore after deletion: %+v %v", res, err)
	}
	if _, err := again.Conversation(ctx, doomed.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted conversation restored: %v", err)
	}
	if n := len(scanAll(t, again, doomed.ID)); n != 0 {
		t.Fatalf("%d messages of a deleted conversation restored", n)
	}
	if c, err := again.Conversation(ctx, grp.ID); err != nil || !strings.EqualFold(c.Name, "renamed") {
		t.Fatalf("surviving conversation after compaction: %+v %v", c, err)
	}
}

// wantPending checks what ConversationsPending says of st.
func wantPending(t *testing.T, st *store.Store, want bool) {
	t.Helper()
	got, err := ConversationsPending(context.Background(), st)
	if err != nil || got != want {
		t.Fatalf("ConversationsPending = %v, %v; want %v", got, err, want)
	}
}

// TestReadMarksUploadedOnce: a read mark is uploaded when it moves, and not
// again by later uploads, nor by an archiver made after a restart; a moved
// mark is pending until it is uploaded.
func TestReadMarksUploadedOnce(t *testing.T) {
	ctx := context.Background()
	raw := newMemRemote()
	st := newStore(t)
	h, _, _ := buildHistory(t, st, 50, 32)
	ring, _ := NewKeyring(h.rnd)
	archiver := func() *Archiver {
		a, err := New(Config{Store: st, Remote: raw, Keyring: ring, Device: h.dev, Rand: h.rnd, Now: func() time.Time { return h.base }})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	chat := h.chats[0].ID
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.MarkRead(chat, 3) }); err != nil {
		t.Fatal(err)
	}
	a := archiver()
	if _, err := a.Upload(ctx); err != nil {
		t.Fatal(err)
	}
	wantPending(t, st, false)
	for i, a := range []*Archiver{a, archiver()} {
		if up, err := a.Upload(ctx); err != nil || up.Records != 0 || up.Segments != 0 {
			t.Fatalf("upload %d with nothing changed: %+v %v", i, up, err)
		}
	}
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.MarkRead(chat, 7) }); err != nil {
		t.Fatal(err)
	}
	wantPending(t, st, true)
	if up, err := archiver().Upload(ctx); err != nil || up.Records != 1 {
		t.Fatalf("moved read mark: %+v %v", up, err)
	}
	wantPending(t, st, false)
	fresh := newStore(t)
	if _, err := Restore(ctx, fresh, raw, ring, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if c, err := fresh.Conversation(ctx, chat); err != nil || c.LastReadSeq != 7 {
		t.Fatalf("restored read mark: %+v %v", c, err)
	}
}
