package store

import (
	"context"
	"testing"

	"github.com/parley-im/parley/identity"
)

func myMsg(chat ChatID, n int, me identity.AccountID, seq uint64) *Message {
	m := textMsg(chat, n, me, seq, "mine")
	m.Mine, m.State = true, StateSent
	return m
}

func record(t *testing.T, s *Store, chat ChatID, reader identity.AccountID, state MessageState, need []identity.AccountID, ids ...MessageID) []StateChange {
	t.Helper()
	var out []StateChange
	update(t, s, func(tx *Tx) error {
		var err error
		out, err = tx.RecordReceipts(chat, reader, ids, state, need)
		return err
	})
	return out
}

func stateOf(t *testing.T, s *Store, id MessageID) MessageState {
	t.Helper()
	m, err := s.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.State
}

// In a group a message of ours is delivered (and read) once every other
// member account has it (has read it); receipts from non-members, for
// someone else's messages, for other chats or for deleted messages change
// nothing; states never move back.
func TestReceiptsGroup(t *testing.T) {
	s, dir := newStore(t)
	c := newChat(t, s, "receipts")
	other := newChat(t, s, "elsewhere")
	me, bob, carol, mallory := newAccount(t), newAccount(t), newAccount(t), newAccount(t)
	need := []identity.AccountID{bob, carol}
	insert(t, s, myMsg(c.ID, 1, me, 1))
	insert(t, s, myMsg(c.ID, 2, me, 2))
	insert(t, s, textMsg(c.ID, 3, bob, 3, "bob's"))
	insert(t, s, myMsg(other.ID, 4, me, 1))

	if ch := record(t, s, c.ID, bob, StateDelivered, need, msgID(1), msgID(2), msgID(3), msgID(4), msgID(99)); len(ch) != 0 {
		t.Fatalf("one of two members: changes %v", ch)
	}
	if ch := record(t, s, c.ID, mallory, StateDelivered, need, msgID(1)); len(ch) != 0 {
		t.Fatalf("a non-member's receipt: changes %v", ch)
	}
	if ch := record(t, s, c.ID, bob, StateDelivered, need, msgID(1)); len(ch) != 0 {
		t.Fatalf("the same receipt twice: changes %v", ch)
	}
	ch := record(t, s, c.ID, carol, StateRead, need, msgID(1))
	if len(ch) != 1 || ch[0] != (StateChange{ID: msgID(1), State: StateDelivered}) {
		t.Fatalf("both have it: changes %v, want 1 delivered", ch)
	}
	if got := stateOf(t, s, msgID(2)); got != StateSent {
		t.Fatalf("message 2 is %v, want sent (carol has not got it)", got)
	}
	if got := stateOf(t, s, msgID(3)); got != StateReceived {
		t.Fatalf("bob's message is %v", got)
	}
	if got := stateOf(t, s, msgID(4)); got != StateSent {
		t.Fatalf("a message of another chat is %v", got)
	}
	ch = record(t, s, c.ID, bob, StateRead, need, msgID(1))
	if len(ch) != 1 || ch[0].State != StateRead {
		t.Fatalf("both read: changes %v", ch)
	}
	// A late delivery receipt does not move read back.
	if ch := record(t, s, c.ID, bob, StateDelivered, need, msgID(1)); len(ch) != 0 || stateOf(t, s, msgID(1)) != StateRead {
		t.Fatalf("late delivery: changes %v, state %v", ch, stateOf(t, s, msgID(1)))
	}
	// Deleted: receipts go with the content and later ones are ignored.
	update(t, s, func(tx *Tx) error { return tx.DeleteMessage(msgID(2), t0) })
	if ch := record(t, s, c.ID, carol, StateDelivered, need, msgID(2)); len(ch) != 0 {
		t.Fatalf("receipt for a deleted message: %v", ch)
	}
	if _, err := (&Tx{}).RecordReceipts(c.ID, bob, nil, StateSent, need); err == nil {
		t.Fatal("a receipt saying sent was accepted")
	}
	// Readers are not readable on disk.
	s.Close()
	for _, a := range []identity.AccountID{bob, carol} {
		if n := grepDir(t, dir, []byte(a)); n != 0 {
			t.Fatalf("an account id appears %d times in the profile", n)
		}
	}
}

// A read receipt covers our messages up to its target (anyone's message),
// not those after it.
func TestReadCovered(t *testing.T) {
	s, _ := newStore(t)
	c := newChat(t, s, "read")
	me, bob := newAccount(t), newAccount(t)
	insert(t, s, myMsg(c.ID, 1, me, 1))
	insert(t, s, myMsg(c.ID, 2, me, 2))
	insert(t, s, textMsg(c.ID, 3, bob, 3, "bob's"))
	insert(t, s, myMsg(c.ID, 4, me, 4))
	var ids []MessageID
	update(t, s, func(tx *Tx) error {
		var err error
		ids, err = tx.ReadCovered(c.ID, msgID(3), bob, MaxPageSize)
		return err
	})
	if len(ids) != 2 || ids[0] != msgID(2) || ids[1] != msgID(1) {
		t.Fatalf("covered %v, want messages 2 and 1", ids)
	}
	update(t, s, func(tx *Tx) error {
		var err error
		ids, err = tx.ReadCovered(c.ID, msgID(77), bob, MaxPageSize)
		return err
	})
	if len(ids) != 0 {
		t.Fatalf("an unknown target covers %v", ids)
	}
	record(t, s, c.ID, bob, StateRead, []identity.AccountID{bob}, msgID(1), msgID(2))
	update(t, s, func(tx *Tx) error {
		var err error
		ids, err = tx.ReadCovered(c.ID, msgID(4), bob, MaxPageSize)
		return err
	})
	if len(ids) != 1 || ids[0] != msgID(4) {
		t.Fatalf("after reading 1 and 2, covered %v, want only 4", ids)
	}

	// In a group, what one reader read is not covered again for that
	// reader, while the others have not read it.
	g := newChat(t, s, "group-read")
	carol := newAccount(t)
	need := []identity.AccountID{bob, carol}
	for i := 10; i < 13; i++ {
		insert(t, s, myMsg(g.ID, i, me, uint64(i)))
	}
	record(t, s, g.ID, bob, StateRead, need, msgID(10), msgID(11))
	covered := func(reader identity.AccountID) []MessageID {
		var ids []MessageID
		update(t, s, func(tx *Tx) error {
			var err error
			ids, err = tx.ReadCovered(g.ID, msgID(12), reader, MaxPageSize)
			return err
		})
		return ids
	}
	if ids := covered(bob); len(ids) != 1 || ids[0] != msgID(12) {
		t.Fatalf("bob's next read covers %v, want only 12", ids)
	}
	if ids := covered(carol); len(ids) != 3 {
		t.Fatalf("carol's read covers %v, want all 3", ids)
	}
}

// In a 1:1 chat the peer's receipt moves the message at once (no rows are
// kept), and never backwards.
func TestReceiptsDirect(t *testing.T) {
	s, _ := newStore(t)
	c := newChat(t, s, "direct")
	me, bob := newAccount(t), newAccount(t)
	need := []identity.AccountID{bob}
	insert(t, s, myMsg(c.ID, 1, me, 1))
	if ch := record(t, s, c.ID, bob, StateDelivered, need, msgID(1)); len(ch) != 1 || ch[0].State != StateDelivered {
		t.Fatalf("delivered: %v", ch)
	}
	if ch := record(t, s, c.ID, bob, StateRead, need, msgID(1)); len(ch) != 1 || ch[0].State != StateRead {
		t.Fatalf("read: %v", ch)
	}
	if ch := record(t, s, c.ID, bob, StateDelivered, need, msgID(1)); len(ch) != 0 || stateOf(t, s, msgID(1)) != StateRead {
		t.Fatalf("late delivery: %v %v", ch, stateOf(t, s, msgID(1)))
	}
	var n int
	update(t, s, func(tx *Tx) error { return tx.queryRow(`SELECT COUNT(*) FROM receipts`).Scan(&n) })
	if n != 0 {
		t.Fatalf("%d receipt rows kept for a 1:1 chat", n)
	}
}

// A group message waits for the accounts it was sent to that are still
// members: not for one added after it was sent, not for one removed.
func TestReceiptsExpected(t *testing.T) {
	s, _ := newStore(t)
	c := newChat(t, s, "grown")
	me, bob, carol, dave := newAccount(t), newAccount(t), newAccount(t), newAccount(t)
	insert(t, s, myMsg(c.ID, 1, me, 1))
	insert(t, s, myMsg(c.ID, 2, me, 2))
	update(t, s, func(tx *Tx) error {
		if err := tx.ExpectReceipts(c.ID, msgID(1), []identity.AccountID{bob, carol}); err != nil {
			return err
		}
		return tx.ExpectReceipts(c.ID, msgID(2), []identity.AccountID{bob, carol})
	})
	// Dave joined later; carol then left.
	now := []identity.AccountID{bob, carol, dave}
	record(t, s, c.ID, bob, StateDelivered, now, msgID(1), msgID(2))
	if ch := record(t, s, c.ID, carol, StateDelivered, now, msgID(1)); len(ch) != 1 || ch[0].ID != msgID(1) {
		t.Fatalf("the members it was sent to have it: changes %v", ch)
	}
	if got := stateOf(t, s, msgID(2)); got != StateSent {
		t.Fatalf("message 2 is %v before carol has it", got)
	}
	after := []identity.AccountID{bob, dave}
	if ch := record(t, s, c.ID, bob, StateRead, after, msgID(2)); len(ch) != 1 || ch[0].State != StateRead {
		t.Fatalf("carol removed, bob read it: changes %v", ch)
	}
}
