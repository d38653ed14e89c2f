package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDedup(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := newChat(t, s, "dedup")
	bob := newAccount(t)
	if !insert(t, s, textMsg(c.ID, 1, bob, 10, "hello")) {
		t.Fatal("first insert reported a duplicate")
	}
	// The same id again (a redelivery), even with other content, is a no-op.
	dup := textMsg(c.ID, 1, bob, 10, "changed")
	if insert(t, s, dup) {
		t.Fatal("second insert of the same id was stored")
	}
	res, err := s.Apply(ctx, &Batch{Messages: []*Message{textMsg(c.ID, 1, bob, 10, "x"), textMsg(c.ID, 2, bob, 11, "new")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted[0] || !res.Inserted[1] {
		t.Fatalf("batch Inserted = %v, want [false true]", res.Inserted)
	}
	m, err := s.Message(ctx, msgID(1))
	if err != nil || string(m.Body) != "hello" || m.Seq != 10 || m.Sender != bob {
		t.Fatalf("stored message: %+v, %v", m, err)
	}
	page, err := s.History(ctx, c.ID, HistoryQuery{Limit: 10})
	if err != nil || len(page.Messages) != 2 {
		t.Fatalf("history has %d messages (%v), want 2", len(page.Messages), err)
	}
}

func TestOrderingAndPaging(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := newChat(t, s, "order")
	other := newChat(t, s, "other")
	bob := newAccount(t)
	me := newAccount(t)
	// Arrival order differs from server order; the server's order wins.
	seqs := []uint64{5, 1, 4, 2, 3, 9, 7, 8, 6, 10}
	update(t, s, func(tx *Tx) error {
		for _, seq := range seqs {
			if _, err := tx.InsertMessage(textMsg(c.ID, int(seq), bob, seq, fmt.Sprint("m", seq))); err != nil {
				return err
			}
		}
		_, err := tx.InsertMessage(textMsg(other.ID, 100, bob, 1, "elsewhere"))
		return err
	})
	// Two pending messages of ours come after every ordered one, in the
	// order they were written.
	p1 := &Message{ID: msgID(50), Chat: c.ID, Sender: me, Mine: true, Kind: KindText, Body: []byte("p1"), State: StatePending, SentAt: t0}
	p2 := &Message{ID: msgID(51), Chat: c.ID, Sender: me, Mine: true, Kind: KindText, Body: []byte("p2"), State: StatePending, SentAt: t0}
	insert(t, s, p1)
	insert(t, s, p2)
	if !p1.Position.Pending() || p2.Position <= p1.Position {
		t.Fatalf("pending positions %d, %d", p1.Position, p2.Position)
	}

	var got []string
	before := Position(0)
	for pages := 0; ; pages++ {
		page, err := s.History(ctx, c.ID, HistoryQuery{Before: before, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for _, m := range page.Messages {
			bodies = append(bodies, string(m.Body))
		}
		got = append(bodies, got...)
		if !page.More {
			break
		}
		before = page.Messages[0].Position
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	want := "[m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 p1 p2]"
	if fmt.Sprint(got) != want {
		t.Fatalf("history %v, want %s", got, want)
	}

	// The server acknowledges p2 first: it takes seq 12; p1 gets 11.
	update(t, s, func(tx *Tx) error {
		if err := tx.MarkSent(p2.ID, 12); err != nil {
			return err
		}
		return tx.MarkSent(p1.ID, 11)
	})
	// Our other device's echo of p1 is a duplicate.
	echo := *p1
	echo.Seq, echo.State = 11, StateReceived
	if insert(t, s, &echo) {
		t.Fatal("echo of our own message was stored twice")
	}
	page, err := s.History(ctx, c.ID, HistoryQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 2 || page.Messages[0].Seq != 11 || string(page.Messages[0].Body) != "p1" ||
		page.Messages[1].Seq != 12 || page.Messages[0].State != StateSent {
		t.Fatalf("after acks: %+v", page.Messages)
	}
	// States move forward only.
	update(t, s, func(tx *Tx) error {
		if err := tx.SetMessageState(p1.ID, StateRead); err != nil {
			return err
		}
		return tx.SetMessageState(p1.ID, StateDelivered)
	})
	if m, _ := s.Message(ctx, p1.ID); m.State != StateRead {
		t.Fatalf("state went back to %v", m.State)
	}
	// A pending message adopts the server's number when the echo arrives
	// before the ack.
	p3 := &Message{ID: msgID(52), Chat: c.ID, Sender: me, Mine: true, Kind: KindText, Body: []byte("p3"), State: StatePending}
	insert(t, s, p3)
	echo3 := *p3
	echo3.Seq = 13
	insert(t, s, &echo3)
	if m, _ := s.Message(ctx, p3.ID); m.Seq != 13 || m.State != StateSent {
		t.Fatalf("pending message after echo: seq %d state %v", m.Seq, m.State)
	}

	// Scan returns everything after a position, in order.
	all, err := s.Scan(ctx, c.ID, 8, 100)
	if err != nil || len(all) != 5 || all[0].Seq != 9 || all[4].Seq != 13 {
		t.Fatalf("scan: %d rows, %v", len(all), err)
	}
	if _, err := s.History(ctx, c.ID, HistoryQuery{Limit: 0}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("limit 0: %v", err)
	}
}

func TestEditsDeletesReactions(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := newChat(t, s, "events")
	bob, carol := newAccount(t), newAccount(t)
	insert(t, s, textMsg(c.ID, 1, bob, 1, "original"))
	insert(t, s, textMsg(c.ID, 2, carol, 2, "second"))
	ev := func(n int, kind MessageKind, from string, seq uint64, target int, body string) *Message {
		sender := bob
		if from == "carol" {
			sender = carol
		}
		m := textMsg(c.ID, n, sender, seq, body)
		m.Kind, m.Target = kind, msgID(target)
		return m
	}
	insert(t, s, ev(3, KindEdit, "bob", 3, 1, "edited"))
	insert(t, s, ev(4, KindEdit, "carol", 4, 1, "hijacked")) // not the author: ignored
	insert(t, s, ev(5, KindReaction, "carol", 5, 1, "👍"))
	insert(t, s, ev(6, KindReaction, "bob", 6, 1, "🎉"))
	insert(t, s, ev(7, KindReaction, "bob", 7, 1, "")) // bob withdraws
	page, err := s.History(ctx, c.ID, HistoryQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 2 || string(page.Messages[0].Body) != "edited" || page.Messages[0].Seq != 1 || page.Messages[0].EditedAt.IsZero() {
		t.Fatalf("after edit: %+v", page.Messages[0])
	}
	rs, err := s.Reactions(ctx, c.ID, msgID(1))
	if err != nil || len(rs) != 1 || rs[0].Sender != carol || string(rs[0].Body) != "👍" {
		t.Fatalf("reactions: %+v, %v", rs, err)
	}

	// Delete for everyone by someone else: ignored. By the author: tombstone,
	// and the edits and reactions pointing at it are erased too.
	insert(t, s, ev(8, KindDelete, "carol", 8, 1, ""))
	if m, _ := s.Message(ctx, msgID(1)); m.Deleted {
		t.Fatal("a non-author deleted the message")
	}
	insert(t, s, ev(9, KindDelete, "bob", 9, 1, ""))
	m, err := s.Message(ctx, msgID(1))
	if err != nil || !m.Deleted || m.Body != nil || m.Sender != "" || m.Seq != 1 {
		t.Fatalf("tombstone: %+v, %v", m, err)
	}
	for _, n := range []int{3, 5, 6} {
		if e, _ := s.Message(ctx, msgID(n)); !e.Deleted || e.Body != nil {
			t.Fatalf("event %d pointing at the deleted message kept its content", n)
		}
	}
	page, _ = s.History(ctx, c.ID, HistoryQuery{Limit: 10})
	if len(page.Messages) != 1 || string(page.Messages[0].Body) != "second" {
		t.Fatalf("history after delete: %d messages", len(page.Messages))
	}
	page, _ = s.History(ctx, c.ID, HistoryQuery{Limit: 10, IncludeDeleted: true})
	if len(page.Messages) != 2 || !page.Messages[0].Deleted {
		t.Fatalf("history with tombstones: %d messages", len(page.Messages))
	}
	// The deleted message redelivered is still a duplicate.
	if insert(t, s, textMsg(c.ID, 1, bob, 1, "original")) {
		t.Fatal("a deleted message came back")
	}

	// Events that arrive before their target (history merge) apply when it
	// arrives.
	insert(t, s, ev(20, KindEdit, "carol", 20, 30, "late edit"))
	insert(t, s, ev(21, KindDelete, "bob", 21, 31, ""))
	insert(t, s, textMsg(c.ID, 30, carol, 18, "early"))
	insert(t, s, textMsg(c.ID, 31, bob, 19, "doomed"))
	if m, _ := s.Message(ctx, msgID(30)); string(m.Body) != "late edit" {
		t.Fatalf("waiting edit not applied: %q", m.Body)
	}
	if m, _ := s.Message(ctx, msgID(31)); !m.Deleted {
		t.Fatal("waiting delete not applied")
	}

	// Delete for me.
	update(t, s, func(tx *Tx) error { return tx.DeleteMessage(msgID(2), t0) })
	if m, _ := s.Message(ctx, msgID(2)); !m.Deleted {
		t.Fatal("DeleteMessage did not delete")
	}
}

func TestUnreadCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := newChat(t, s, "a")
	b := newChat(t, s, "b")
	bob, me := newAccount(t), newAccount(t)
	for i := 1; i <= 5; i++ {
		insert(t, s, textMsg(a.ID, i, bob, uint64(i), "x"))
	}
	mine := textMsg(a.ID, 6, me, 6, "mine")
	mine.Mine = true
	insert(t, s, mine)
	r := textMsg(a.ID, 7, bob, 7, "")
	r.Kind, r.Target = KindReaction, msgID(1)
	insert(t, s, r)
	insert(t, s, textMsg(b.ID, 10, bob, 1, "y"))
	counts, err := s.UnreadCounts(ctx)
	if err != nil || counts[a.ID] != 5 || counts[b.ID] != 1 {
		t.Fatalf("unread %v, %v", counts, err)
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.MarkRead(a.ID, 3); err != nil {
			return err
		}
		return tx.MarkRead(a.ID, 2) // never backwards
	})
	counts, _ = s.UnreadCounts(ctx)
	if counts[a.ID] != 2 {
		t.Fatalf("unread after reading to 3: %d", counts[a.ID])
	}
	if c, _ := s.Conversation(ctx, a.ID); c.LastReadSeq != 3 {
		t.Fatalf("LastReadSeq %d", c.LastReadSeq)
	}
}

func TestExpirySweep(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := newChat(t, s, "vanishing")
	bob := newAccount(t)
	for i := 1; i <= 4; i++ {
		m := textMsg(c.ID, i, bob, uint64(i), fmt.Sprint("body", i))
		if i <= 3 {
			m.ExpiresAt = t0.Add(time.Duration(i) * time.Minute)
		}
		insert(t, s, m)
	}
	edit := textMsg(c.ID, 5, bob, 5, "edited body1")
	edit.Kind, edit.Target = KindEdit, msgID(1)
	insert(t, s, edit)
	next, ok, err := s.NextExpiry(ctx)
	if err != nil || !ok || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("NextExpiry %v %v %v", next, ok, err)
	}
	var expired []MessageRef
	update(t, s, func(tx *Tx) error {
		var err error
		expired, err = tx.ExpireMessages(t0.Add(2*time.Minute), 100)
		return err
	})
	if len(expired) != 2 || expired[0].ID != msgID(1) || expired[1].ID != msgID(2) || expired[0].Chat != c.ID {
		t.Fatalf("expired %v", expired)
	}
	page, _ := s.History(ctx, c.ID, HistoryQuery{Limit: 10})
	if len(page.Messages) != 2 || string(page.Messages[0].Body) != "body3" {
		t.Fatalf("history after sweep has %d messages", len(page.Messages))
	}
	if e, _ := s.Message(ctx, msgID(5)); !e.Deleted {
		t.Fatal("the edit of an expired message kept its content")
	}
	update(t, s, func(tx *Tx) error {
		var err error
		expired, err = tx.ExpireMessages(t0.Add(2*time.Minute), 100)
		return err
	})
	if len(expired) != 0 {
		t.Fatalf("second sweep expired %v", expired)
	}
	if insert(t, s, textMsg(c.ID, 1, bob, 1, "body1")) {
		t.Fatal("an expired message came back on redelivery")
	}
}

// TestSeqReused: a server restored from an older backup gives sequence
// numbers again that stored messages hold. The newcomer takes the number,
// the old holder is displaced below every sequence number (kept, by id), and
// the transaction goes on.
func TestSeqReused(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := newChat(t, s, "seq")
	bob, me := newAccount(t), newAccount(t)
	insert(t, s, textMsg(c.ID, 1, bob, 1, "first"))
	insert(t, s, textMsg(c.ID, 2, bob, 2, "second"))
	p := &Message{ID: msgID(9), Chat: c.ID, Sender: me, Mine: true, Kind: KindText, Body: []byte("p"), State: StatePending}
	insert(t, s, p)
	err := s.Update(ctx, func(tx *Tx) error {
		if ok, err := tx.InsertMessage(textMsg(c.ID, 3, bob, 1, "same seq")); err != nil || !ok {
			return fmt.Errorf("insert at a reused seq: %v, %v", ok, err)
		}
		if err := tx.MarkSent(p.ID, 2); err != nil {
			return fmt.Errorf("ack at a reused seq: %v", err)
		}
		if tx.Displaced() != 2 {
			return fmt.Errorf("displaced %d, want 2", tx.Displaced())
		}
		// A redelivery of a displaced message is recognised by its id.
		if ok, err := tx.InsertMessage(textMsg(c.ID, 1, bob, 1, "first")); err != nil || ok {
			return fmt.Errorf("redelivery of a displaced message: %v, %v", ok, err)
		}
		_, err := tx.InsertMessage(textMsg(c.ID, 4, bob, 3, "next"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[MessageID]uint64{msgID(3): 1, msgID(9): 2, msgID(4): 3, msgID(1): 0, msgID(2): 0}
	for id, seq := range want {
		m, err := s.Message(ctx, id)
		if err != nil || m.Seq != seq {
			t.Fatalf("message %v: seq %v (%v), want %d", id, m, err, seq)
		}
		if (seq == 0) != m.Position.Displaced() {
			t.Fatalf("message %v at position %d", id, m.Position)
		}
	}
	if m, _ := s.Message(ctx, msgID(9)); m.State != StateSent {
		t.Fatalf("our acked message is %v", m.State)
	}
	// History shows all five: displaced first, in displacement order, and
	// pages through them.
	page, err := s.History(ctx, c.ID, HistoryQuery{Limit: 3})
	if err != nil || len(page.Messages) != 3 {
		t.Fatalf("history: %v", err)
	}
	rest, err := s.History(ctx, c.ID, HistoryQuery{Limit: 10, Before: page.Messages[0].Position})
	if err != nil || len(rest.Messages) != 2 {
		t.Fatalf("history before %d: %v %v", page.Messages[0].Position, rest, err)
	}
	var got []MessageID
	for _, pg := range []*HistoryPage{rest, page} {
		for _, m := range pg.Messages {
			got = append(got, m.ID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]MessageID{msgID(1), msgID(2), msgID(3), msgID(9), msgID(4)}) {
		t.Fatalf("history order %v", got)
	}
	// What a delivery below the cursor is: known, new at a reused seq, new.
	for _, c2 := range []struct {
		id            MessageID
		seq           uint64
		known, reused bool
	}{{msgID(1), 1, true, false}, {msgID(77), 1, false, true}, {msgID(77), 99, false, false}} {
		known, reused, err := s.Redelivered(ctx, c.ID, c2.seq, c2.id)
		if err != nil || known != c2.known || reused != c2.reused {
			t.Fatalf("Redelivered(%v, %d) = %v, %v, %v; want %v, %v", c2.id, c2.seq, known, reused, err, c2.known, c2.reused)
		}
	}
	// A message cannot displace itself.
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.displaceFor(msgID(3), c.ID, 1)
	})
	if !errors.Is(err, ErrSeqTaken) {
		t.Fatalf("self-displacement: %v", err)
	}
}
