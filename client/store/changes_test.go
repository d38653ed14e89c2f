package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestChangeFeed(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	c := newChat(t, s, "feed")
	bob, me := newAccount(t), newAccount(t)
	insert(t, s, textMsg(c.ID, 1, bob, 1, "one"))
	insert(t, s, textMsg(c.ID, 2, bob, 2, "two"))
	pending := &Message{ID: msgID(3), Chat: c.ID, Sender: me, Mine: true, Kind: KindText, Body: []byte("mine"), State: StatePending}
	insert(t, s, pending)

	var cursor ChangeSeq
	next := func() []*Message {
		t.Helper()
		got, err := s.Changes(ctx, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range got {
			if m.Change <= cursor || (i > 0 && m.Change <= got[i-1].Change) {
				t.Fatalf("change numbers out of order: %d after %d", m.Change, cursor)
			}
		}
		if len(got) > 0 {
			cursor = got[len(got)-1].Change
		}
		return got
	}
	if got := next(); len(got) != 3 || got[0].ID != msgID(1) || got[2].ID != msgID(3) {
		t.Fatalf("first changes: %d", len(got))
	}
	if got := next(); len(got) != 0 {
		t.Fatalf("changes seen twice: %d", len(got))
	}
	// A redelivered duplicate is no change; an edit changes the edit row
	// and its target; the ack changes the pending message.
	insert(t, s, textMsg(c.ID, 1, bob, 1, "one"))
	e := textMsg(c.ID, 4, bob, 4, "one, edited")
	e.Kind, e.Target = KindEdit, msgID(1)
	insert(t, s, e)
	update(t, s, func(tx *Tx) error { return tx.MarkSent(msgID(3), 3) })
	got := next()
	if len(got) != 3 || got[0].ID != msgID(4) || got[1].ID != msgID(1) || string(got[1].Body) != "one, edited" || got[2].ID != msgID(3) || got[2].Seq != 3 {
		t.Fatalf("changes after edit and ack: %+v", got)
	}
	// A deletion changes the target and the edit pointing at it.
	d := textMsg(c.ID, 5, bob, 5, "")
	d.Kind, d.Target = KindDelete, msgID(1)
	insert(t, s, d)
	got = next()
	if len(got) != 3 || got[0].ID != msgID(5) || got[1].ID != msgID(1) || !got[1].Deleted || got[2].ID != msgID(4) || !got[2].Deleted {
		t.Fatalf("changes after delete: %d", len(got))
	}
	// A rolled-back transaction leaves no gap in the change numbers, and
	// the counter carries on after a reopen.
	last := cursor
	_ = s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.InsertMessage(textMsg(c.ID, 6, bob, 6, "lost")); err != nil {
			return err
		}
		return errors.New("abort")
	})
	insert(t, s, textMsg(c.ID, 8, bob, 8, "kept"))
	if got = next(); len(got) != 1 || got[0].ID != msgID(8) || got[0].Change != last+1 {
		t.Fatalf("change after a rollback: %+v (last %d)", got, last)
	}
	s.Close()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	last = cursor
	m := textMsg(c.ID, 7, bob, 7, "after reopen")
	m.ExpiresAt = t0.Add(time.Minute)
	insert(t, s, m)
	got = next()
	if len(got) != 1 || got[0].ID != msgID(7) || got[0].Change != last+1 {
		t.Fatalf("change after reopen: %+v (last %d)", got, last)
	}
	update(t, s, func(tx *Tx) error {
		_, err := tx.ExpireMessages(t0.Add(time.Hour), 10)
		return err
	})
	if got = next(); len(got) != 1 || !got[0].Deleted {
		t.Fatalf("expiry is not in the feed: %+v", got)
	}
}

// TestChangeNumbersNotReusedAfterDeletedChat: deleting the conversation
// whose messages hold the latest change numbers does not hand them out
// again, so a consumer of the feed (the archive uploader) that had passed
// them still sees the next change, also after the store is reopened.
func TestChangeNumbersNotReusedAfterDeletedChat(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	keep, gone := newChat(t, s, "keep"), newChat(t, s, "gone")
	bob := newAccount(t)
	insert(t, s, textMsg(keep.ID, 1, bob, 1, "one"))
	insert(t, s, textMsg(gone.ID, 2, bob, 1, "two"))
	insert(t, s, textMsg(gone.ID, 3, bob, 2, "three"))
	all, err := s.Changes(ctx, 0, 100)
	if err != nil || len(all) != 3 {
		t.Fatalf("changes: %d %v", len(all), err)
	}
	cursor := all[len(all)-1].Change
	update(t, s, func(tx *Tx) error { return tx.DeleteConversation(gone.ID) })
	insert(t, s, textMsg(keep.ID, 4, bob, 2, "four"))
	got, err := s.Changes(ctx, cursor, 100)
	if err != nil || len(got) != 1 || got[0].ID != msgID(4) {
		t.Fatalf("changes after the deleted chat: %d %v", len(got), err)
	}
	cursor = got[0].Change
	update(t, s, func(tx *Tx) error { return tx.DeleteConversation(keep.ID) })
	s.Close()
	s, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again := newChat(t, s, "again")
	insert(t, s, textMsg(again.ID, 5, bob, 1, "five"))
	if got, err := s.Changes(ctx, cursor, 100); err != nil || len(got) != 1 || got[0].ID != msgID(5) {
		t.Fatalf("changes after reopening with no message left: %d %v", len(got), err)
	}
}
