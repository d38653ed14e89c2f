package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
)

func TestOutboxSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	a := newChat(t, s, "a")
	b := newChat(t, s, "b")
	me := newAccount(t)
	var ids []OutboxID
	update(t, s, func(tx *Tx) error {
		// The pending message and its send are written together.
		for i, chat := range []ChatID{a.ID, b.ID, a.ID} {
			m := &Message{ID: msgID(i + 1), Chat: chat, Sender: me, Mine: true, Kind: KindText, Body: []byte("hi"), State: StatePending}
			if _, err := tx.InsertMessage(m); err != nil {
				return err
			}
			id, err := tx.Enqueue(&OutboxItem{Chat: chat, Message: m.ID, Payload: []byte{byte(i + 1)}, NextAttempt: t0, CreatedAt: t0})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	s.Close()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	due, err := s.OutboxDue(ctx, t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Only each chat's head is due: a's first send and b's send.
	if len(due) != 2 || due[0].ID != ids[0] || due[1].ID != ids[1] || !bytes.Equal(due[0].Payload, []byte{1}) || due[0].Message != msgID(1) {
		t.Fatalf("due after reopen: %+v", due)
	}
	if due, _ := s.OutboxDue(ctx, t0.Add(-time.Second), 10); len(due) != 0 {
		t.Fatalf("sends due before their time: %d", len(due))
	}
	// a's head fails once: it is retried later, and a's second send waits
	// behind it.
	update(t, s, func(tx *Tx) error { return tx.RetryLater(ids[0], t0.Add(time.Minute)) })
	due, _ = s.OutboxDue(ctx, t0, 10)
	if len(due) != 1 || due[0].ID != ids[1] {
		t.Fatalf("due after a retry: %+v", due)
	}
	next, ok, err := s.NextOutboxAttempt(ctx)
	if err != nil || !ok || !next.Equal(t0) {
		t.Fatalf("next attempt %v %v %v", next, ok, err)
	}
	// The server acknowledges a's head: remove it and mark the message sent
	// together.
	update(t, s, func(tx *Tx) error {
		if err := tx.RemoveFromOutbox(ids[0]); err != nil {
			return err
		}
		return tx.MarkSent(msgID(1), 1)
	})
	items, err := s.Outbox(ctx, a.ID, 10)
	if err != nil || len(items) != 1 || items[0].ID != ids[2] || items[0].Attempts != 0 {
		t.Fatalf("a's outbox: %+v, %v", items, err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.RemoveFromOutbox(ids[0]) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	if m, _ := s.Message(ctx, msgID(1)); m.State != StateSent || m.Seq != 1 {
		t.Fatalf("message after ack: %v seq %d", m.State, m.Seq)
	}
}

func TestGroupStateCursorsKeyPackages(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	update(t, s, func(tx *Tx) error {
		if err := tx.PutGroupState("g", GroupState("v1"), t0); err != nil {
			return err
		}
		if err := tx.PutGroupState("g", GroupState("v2"), t0); err != nil {
			return err
		}
		if err := tx.AdvanceCursor(GroupStream("g"), 10); err != nil {
			return err
		}
		if err := tx.AdvanceCursor(GroupStream("g"), 5); err != nil { // never backwards
			return err
		}
		if err := tx.AdvanceCursor(MailboxStream, 3); err != nil {
			return err
		}
		if err := tx.PutKeyPackage("kp1", KeyPackagePrivate("priv1"), t0); err != nil {
			return err
		}
		return tx.PutKeyPackage("kp2", KeyPackagePrivate("priv2"), t0)
	})
	if st, err := s.GroupState(ctx, "g"); err != nil || string(st) != "v2" {
		t.Fatalf("group state %q, %v", st, err)
	}
	if _, err := s.GroupState(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing group: %v", err)
	}
	if gs, err := s.Groups(ctx); err != nil || len(gs) != 1 || gs[0] != "g" {
		t.Fatalf("groups %v, %v", gs, err)
	}
	if c, _ := s.Cursor(ctx, GroupStream("g")); c != 10 {
		t.Fatalf("group cursor %d", c)
	}
	if c, _ := s.Cursor(ctx, MailboxStream); c != 3 {
		t.Fatalf("mailbox cursor %d", c)
	}
	if c, _ := s.Cursor(ctx, GroupStream("other")); c != 0 {
		t.Fatalf("unknown cursor %d", c)
	}
	var priv KeyPackagePrivate
	update(t, s, func(tx *Tx) error {
		var err error
		priv, err = tx.TakeKeyPackage("kp1")
		return err
	})
	if string(priv) != "priv1" {
		t.Fatalf("taken key package %q", priv)
	}
	if _, err := s.KeyPackage(ctx, "kp1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("used key package still there: %v", err)
	}
	if n, _ := s.KeyPackageCount(ctx); n != 1 {
		t.Fatalf("key package count %d", n)
	}
	// A failed transaction keeps nothing: the key package is not used up and
	// the group state is not replaced.
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.TakeKeyPackage("kp2"); err != nil {
			return err
		}
		if err := tx.PutGroupState("g", GroupState("v3"), t0); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error %v", err)
	}
	if _, err := s.KeyPackage(ctx, "kp2"); err != nil {
		t.Fatalf("rolled-back take lost the key package: %v", err)
	}
	if st, _ := s.GroupState(ctx, "g"); string(st) != "v2" {
		t.Fatalf("rolled-back state kept: %q", st)
	}
}

func TestConversationsSettingsContacts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	bob, carol := newAccount(t), newAccount(t)
	g := GroupID("g-conv")
	want := &Conversation{
		ID: ChatIDFromGroup(g), Kind: ChatGroup, Group: g, Name: "Friends", CreatedAt: t0,
		Members: []identity.AccountID{bob, carol}, DisappearAfter: time.Hour, Archived: true,
	}
	update(t, s, func(tx *Tx) error { return tx.PutConversation(want) })
	got, err := s.ConversationByGroup(ctx, g)
	if err != nil || got.ID != want.ID || got.Name != "Friends" || len(got.Members) != 2 || got.Members[1] != carol ||
		got.DisappearAfter != time.Hour || !got.Archived || got.Left || got.Kind != ChatGroup || !got.CreatedAt.Equal(t0) {
		t.Fatalf("conversation %+v, %v", got, err)
	}
	if parsed, err := ParseChatID(strings.ToUpper(string(want.ID))); err != nil || parsed != want.ID {
		t.Fatalf("ParseChatID: %v", err)
	}
	bad := *want
	bad.ID = ChatIDFromGroup("another group")
	if err := s.Update(ctx, func(tx *Tx) error { return tx.PutConversation(&bad) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("chat id not derived from the group: %v", err)
	}
	if all, err := s.Conversations(ctx); err != nil || len(all) != 1 {
		t.Fatalf("conversations %d, %v", len(all), err)
	}

	// Privacy settings are off until set.
	for _, name := range []string{SettingReadReceipts, SettingTyping, SettingLastSeen} {
		if on, err := s.SettingOn(ctx, name); err != nil || on {
			t.Fatalf("%s defaults to on (%v)", name, err)
		}
	}
	update(t, s, func(tx *Tx) error { return tx.SetSetting(SettingReadReceipts, On) })
	if on, _ := s.SettingOn(ctx, SettingReadReceipts); !on {
		t.Fatal("read receipts did not turn on")
	}
	update(t, s, func(tx *Tx) error { return tx.DeleteSetting(SettingReadReceipts) })
	if on, _ := s.SettingOn(ctx, SettingReadReceipts); on {
		t.Fatal("deleted setting still on")
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.SetSetting("Bad Name", "x") }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad setting name: %v", err)
	}

	update(t, s, func(tx *Tx) error {
		if err := tx.PutContact(&Contact{Account: bob, Verified: true, SafetyNumber: "12345", DisplayName: "Bob"}); err != nil {
			return err
		}
		return tx.PutContact(&Contact{Account: carol, DisplayName: "Carol"})
	})
	c, err := s.Contact(ctx, bob)
	if err != nil || !c.Verified || c.SafetyNumber != "12345" || c.DisplayName != "Bob" {
		t.Fatalf("contact %+v, %v", c, err)
	}
	if all, err := s.Contacts(ctx); err != nil || len(all) != 2 {
		t.Fatalf("contacts %d, %v", len(all), err)
	}
	update(t, s, func(tx *Tx) error { return tx.DeleteContact(carol) })
	if _, err := s.Contact(ctx, carol); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted contact: %v", err)
	}

	// Deleting the conversation takes its messages, sends, state and cursor.
	update(t, s, func(tx *Tx) error {
		if _, err := tx.InsertMessage(textMsg(want.ID, 1, bob, 1, "x")); err != nil {
			return err
		}
		if err := tx.PutGroupState(g, GroupState("st"), t0); err != nil {
			return err
		}
		return tx.AdvanceCursor(GroupStream(g), 1)
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteConversation(want.ID) })
	if _, err := s.Conversation(ctx, want.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted conversation: %v", err)
	}
	if _, err := s.Message(ctx, msgID(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("message of deleted conversation: %v", err)
	}
	if _, err := s.GroupState(ctx, g); !errors.Is(err, ErrNotFound) {
		t.Fatalf("state of deleted conversation: %v", err)
	}
}
