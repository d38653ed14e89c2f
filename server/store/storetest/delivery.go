package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/server/store"
)

func testCursors(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	b := newAccount(t, s, "bob", 1)
	g := newGroup(t, s, "g", a.ref(0))
	for i := 1; i <= 5; i++ {
		_, err := s.AppendMessage(ctx, app(g, a.ref(0), 0, i))
		noErr(t, "AppendMessage", err)
	}
	cursor := func() uint64 {
		m, err := s.Member(ctx, g, a.ref(0))
		noErr(t, "Member", err)
		return m.AckedSeq
	}
	noErr(t, "AckGroup 3", s.AckGroup(ctx, a.ref(0), g, 3))
	if c := cursor(); c != 3 {
		t.Fatalf("cursor = %d, want 3", c)
	}
	noErr(t, "AckGroup 2 (backwards)", s.AckGroup(ctx, a.ref(0), g, 2))
	if c := cursor(); c != 3 {
		t.Fatalf("cursor moved backwards to %d", c)
	}
	noErr(t, "AckGroup 5", s.AckGroup(ctx, a.ref(0), g, 5))
	if c := cursor(); c != 5 {
		t.Fatalf("cursor = %d, want 5", c)
	}
	wantErr(t, "ack past the end", s.AckGroup(ctx, a.ref(0), g, 6), store.ErrInvalid)
	wantErr(t, "ack by non-member", s.AckGroup(ctx, b.ref(0), g, 1), store.ErrNotMember)
	wantErr(t, "ack in unknown group", s.AckGroup(ctx, a.ref(0), "nope", 1), store.ErrNotFound)
	ms, err := s.Memberships(ctx, a.ref(0))
	noErr(t, "Memberships", err)
	if len(ms) != 1 || ms[0].AckedSeq != 5 || ms[0].LastSeq != 5 {
		t.Fatalf("Memberships = %+v", ms)
	}

	// Concurrent acks in any order leave the cursor at the maximum.
	var wg sync.WaitGroup
	for i := 5; i >= 1; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AckGroup(ctx, a.ref(0), g, uint64(i)); err != nil {
				t.Errorf("AckGroup: %v", err)
			}
		}()
	}
	wg.Wait()
	if c := cursor(); c != 5 {
		t.Fatalf("cursor after concurrent acks = %d", c)
	}
}

func testReadGroup(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	g := newGroup(t, s, "g", a.ref(0))
	other := newGroup(t, s, "other", a.ref(0))
	var sent []store.Message
	for i := 1; i <= 7; i++ {
		m := app(g, a.ref(0), 0, i)
		m.Data = append([]byte{0, 0xff}, m.Data...)
		sent = append(sent, m)
		_, err := s.AppendMessage(ctx, m)
		noErr(t, "AppendMessage", err)
	}
	_, err := s.AppendMessage(ctx, app(other, a.ref(0), 0, 100))
	noErr(t, "AppendMessage other", err)

	got, err := s.ReadGroup(ctx, g, 0, 0)
	noErr(t, "ReadGroup", err)
	if len(got) != 7 {
		t.Fatalf("ReadGroup: %d entries, want 7", len(got))
	}
	for i, e := range got {
		m := sent[i]
		if e.Seq != uint64(i+1) || e.ID != m.ID || e.Group != g || e.Epoch != 0 || e.Kind != store.KindApplication ||
			e.Sender != m.Sender || string(e.Data) != string(m.Data) {
			t.Fatalf("entry %d = %+v, want %+v", i, e, m)
		}
		sameTime(t, "LogEntry.CreatedAt", e.CreatedAt, m.At)
	}
	page, err := s.ReadGroup(ctx, g, 2, 3)
	noErr(t, "ReadGroup page", err)
	if len(page) != 3 || page[0].Seq != 3 || page[2].Seq != 5 {
		t.Fatalf("page = %d entries from %d", len(page), page[0].Seq)
	}
	tail, err := s.ReadGroup(ctx, g, 7, 10)
	noErr(t, "ReadGroup at end", err)
	if len(tail) != 0 {
		t.Fatalf("read past end: %d entries", len(tail))
	}
	_, err = s.ReadGroup(ctx, "nope", 0, 10)
	wantErr(t, "ReadGroup(unknown)", err, store.ErrNotFound)
}

func testMailbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 2)
	mail := func(n int) store.MailboxMessage {
		return store.MailboxMessage{To: a.ref(0), ID: msgID("mail", n), Kind: store.MailLink,
			Data: []byte(fmt.Sprintf("sealed %d", n)), At: at(n)}
	}
	for i := 1; i <= 5; i++ {
		seq, err := s.Deliver(ctx, mail(i))
		noErr(t, "Deliver", err)
		if seq != uint64(i) {
			t.Fatalf("seq = %d, want %d", seq, i)
		}
	}
	seq, err := s.Deliver(ctx, mail(3))
	noErr(t, "Deliver duplicate", err)
	if seq != 3 {
		t.Fatalf("duplicate seq = %d, want 3", seq)
	}
	if n, _ := s.MailboxDepth(ctx, a.ref(0)); n != 5 {
		t.Fatalf("depth = %d, want 5", n)
	}
	box, err := s.ReadMailbox(ctx, a.ref(0), 0, 100)
	noErr(t, "ReadMailbox", err)
	if len(box) != 5 {
		t.Fatalf("ReadMailbox: %d entries", len(box))
	}
	for i, e := range box {
		m := mail(i + 1)
		if e.Seq != uint64(i+1) || e.ID != m.ID || e.Kind != m.Kind || string(e.Data) != string(m.Data) || e.To != a.ref(0) {
			t.Fatalf("entry %d = %+v", i, e)
		}
		sameTime(t, "MailboxEntry.CreatedAt", e.CreatedAt, m.At)
	}
	if other, _ := s.ReadMailbox(ctx, a.ref(1), 0, 100); len(other) != 0 {
		t.Fatalf("another device sees %d entries", len(other))
	}

	noErr(t, "AckMailbox", s.AckMailbox(ctx, a.ref(0), []uint64{1, 3, 99}))
	noErr(t, "AckMailbox again", s.AckMailbox(ctx, a.ref(0), []uint64{1}))
	box, _ = s.ReadMailbox(ctx, a.ref(0), 0, 100)
	if len(box) != 3 || box[0].Seq != 2 || box[1].Seq != 4 || box[2].Seq != 5 {
		t.Fatalf("after ack: %+v", box)
	}
	if n, _ := s.MailboxDepth(ctx, a.ref(0)); n != 3 {
		t.Fatalf("depth after ack = %d, want 3", n)
	}
	page, _ := s.ReadMailbox(ctx, a.ref(0), 2, 1)
	if len(page) != 1 || page[0].Seq != 4 {
		t.Fatalf("page = %+v", page)
	}
	// Seqs are never reused, even after the newest entry is acked.
	noErr(t, "AckMailbox 5", s.AckMailbox(ctx, a.ref(0), []uint64{5}))
	seq, err = s.Deliver(ctx, mail(6))
	noErr(t, "Deliver after ack", err)
	if seq != 6 {
		t.Fatalf("seq after ack = %d, want 6", seq)
	}

	_, err = s.Deliver(ctx, store.MailboxMessage{To: firstDevice(newAccountValue("x"), "x").Ref(), ID: msgID("x", 0), Kind: store.MailOther, At: at(1)})
	wantErr(t, "Deliver to unknown device", err, store.ErrNotFound)
	noTime := mail(8)
	noTime.At = time.Time{}
	_, err = s.Deliver(ctx, noTime)
	wantErr(t, "Deliver without a time", err, store.ErrInvalid)
	bad := mail(7)
	bad.Kind = 0
	_, err = s.Deliver(ctx, bad)
	wantErr(t, "Deliver with bad kind", err, store.ErrInvalid)
	_, err = s.MailboxDepth(ctx, firstDevice(newAccountValue("x"), "x").Ref())
	wantErr(t, "MailboxDepth of unknown device", err, store.ErrNotFound)
}

func testMailboxLimit(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	full, ok := 0, 0
	for i := 0; i < MailboxLimit+10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Deliver(ctx, store.MailboxMessage{To: a.ref(0), ID: msgID("m", i), Kind: store.MailOther, Data: []byte("x"), At: at(i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrQueueFull):
				full++
			default:
				t.Errorf("Deliver: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != MailboxLimit || full != 10 {
		t.Fatalf("%d delivered, %d refused; want %d and 10", ok, full, MailboxLimit)
	}
	// An ack makes room for exactly one more.
	noErr(t, "AckMailbox", s.AckMailbox(ctx, a.ref(0), []uint64{1}))
	_, err := s.Deliver(ctx, store.MailboxMessage{To: a.ref(0), ID: msgID("late", 0), Kind: store.MailOther, Data: []byte("x"), At: at(1)})
	noErr(t, "Deliver after ack", err)
	_, err = s.Deliver(ctx, store.MailboxMessage{To: a.ref(0), ID: msgID("late", 1), Kind: store.MailOther, Data: []byte("x"), At: at(1)})
	wantErr(t, "Deliver when full again", err, store.ErrQueueFull)
	// A resend of a stored message is still answered when full.
	seq, err := s.Deliver(ctx, store.MailboxMessage{To: a.ref(0), ID: msgID("late", 0), Kind: store.MailOther, Data: []byte("x"), At: at(1)})
	noErr(t, "resend when full", err)
	if seq != MailboxLimit+1 {
		t.Fatalf("resend seq = %d", seq)
	}
}

func testExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	g := newGroup(t, s, "g", a.ref(0))
	for i := 1; i <= 6; i++ { // app(...) is stamped at(10+i)
		_, err := s.AppendMessage(ctx, app(g, a.ref(0), 0, i))
		noErr(t, "AppendMessage", err)
		_, err = s.Deliver(ctx, store.MailboxMessage{To: a.ref(0), ID: msgID("m", i), Kind: store.MailOther, Data: []byte("x"), At: at(10 + i)})
		noErr(t, "Deliver", err)
	}
	res, err := s.Expire(ctx, at(14)) // deletes entries stamped 11, 12, 13
	noErr(t, "Expire", err)
	if res.LogEntries != 3 || res.MailboxEntries != 3 {
		t.Fatalf("Expire = %+v, want 3 and 3", res)
	}
	log, _ := s.ReadGroup(ctx, g, 0, 100)
	if len(log) != 3 || log[0].Seq != 4 {
		t.Fatalf("log after expiry: %d entries from %d", len(log), log[0].Seq)
	}
	box, _ := s.ReadMailbox(ctx, a.ref(0), 0, 100)
	if len(box) != 3 || box[0].Seq != 4 {
		t.Fatalf("mailbox after expiry: %+v", box)
	}
	if n, _ := s.MailboxDepth(ctx, a.ref(0)); n != 3 {
		t.Fatalf("depth after expiry = %d, want 3", n)
	}
	res, err = s.Expire(ctx, at(100))
	noErr(t, "Expire all", err)
	if res.LogEntries != 3 || res.MailboxEntries != 3 {
		t.Fatalf("Expire all = %+v", res)
	}
	// Sequence numbers continue; the group still exists.
	seq, err := s.AppendMessage(ctx, app(g, a.ref(0), 0, 50))
	noErr(t, "AppendMessage after expiry", err)
	if seq != 7 {
		t.Fatalf("seq after expiry = %d, want 7", seq)
	}
	mseq, err := s.Deliver(ctx, store.MailboxMessage{To: a.ref(0), ID: msgID("m", 50), Kind: store.MailOther, Data: []byte("x"), At: at(200)})
	noErr(t, "Deliver after expiry", err)
	if mseq != 7 {
		t.Fatalf("mailbox seq after expiry = %d, want 7", mseq)
	}
	if n, _ := s.MailboxDepth(ctx, a.ref(0)); n != 1 {
		t.Fatalf("depth = %d, want 1", n)
	}
}

func testRevokedDevice(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 2)
	g := newGroup(t, s, "g", a.ref(0))
	addMembers(t, s, g, a.ref(0), 0, a.ref(1))
	noErr(t, "upload", s.UploadKeyPackages(ctx, a.ref(1), []store.KeyPackage{{Data: []byte("kp")}, {Data: []byte("lr"), LastResort: true}}))
	noErr(t, "upload d0", s.UploadKeyPackages(ctx, a.ref(0), []store.KeyPackage{{Data: []byte("kp0")}}))
	_, err := s.Deliver(ctx, store.MailboxMessage{To: a.ref(1), ID: msgID("m", 0), Kind: store.MailOther, Data: []byte("x"), At: at(1)})
	noErr(t, "Deliver", err)
	_, err = s.AppendMessage(ctx, app(g, a.ref(1), 1, 0)) // the device is known to be a sender
	noErr(t, "AppendMessage before revocation", err)

	noErr(t, "RevokeDevice", s.RevokeDevice(ctx, a.ref(1), at(5)))

	claimed, err := s.ClaimKeyPackages(ctx, a.account.ID)
	noErr(t, "ClaimKeyPackages", err)
	if len(claimed) != 1 || claimed[0].Device != a.devices[0].ID {
		t.Fatalf("claims include a revoked device: %+v", claimed)
	}
	_, err = s.Deliver(ctx, store.MailboxMessage{To: a.ref(1), ID: msgID("m", 1), Kind: store.MailOther, Data: []byte("x"), At: at(6)})
	wantErr(t, "Deliver to revoked device", err, store.ErrRevoked)
	if box, _ := s.ReadMailbox(ctx, a.ref(1), 0, 10); len(box) != 0 {
		t.Fatalf("revoked device's mailbox kept %d entries", len(box))
	}
	wantErr(t, "upload by revoked device", s.UploadKeyPackages(ctx, a.ref(1), []store.KeyPackage{{Data: []byte("x")}}), store.ErrRevoked)
	_, err = s.Member(ctx, g, a.ref(1))
	wantErr(t, "revoked device still a member", err, store.ErrNotMember)
	_, err = s.AppendMessage(ctx, app(g, a.ref(1), 1, 1))
	wantErr(t, "revoked device sends", err, store.ErrNotMember)
	wantErr(t, "CreateGroup by revoked device", s.CreateGroup(ctx, "g2", a.ref(1), at(7)), store.ErrRevoked)
}

// testConcurrentAppenders: many goroutines append to a few groups at once;
// every append is stored once, in a gap-free order per group.
func testConcurrentAppenders(t *testing.T, s store.Store) {
	ctx := context.Background()
	const groups, writers, perWriter = 4, 32, 25
	a := newAccount(t, s, "alice", 1)
	var gs []store.GroupID
	for i := 0; i < groups; i++ {
		gs = append(gs, newGroup(t, s, fmt.Sprintf("g%d", i), a.ref(0)))
	}
	type ack struct {
		group store.GroupID
		seq   uint64
		id    store.MessageID
	}
	acks := make(chan ack, writers*perWriter)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				n := w*perWriter + i
				m := app(gs[n%groups], a.ref(0), 0, n)
				seq, err := s.AppendMessage(ctx, m)
				if err != nil {
					t.Errorf("AppendMessage: %v", err)
					return
				}
				acks <- ack{m.Group, seq, m.ID}
			}
		}()
	}
	wg.Wait()
	close(acks)
	bySeq := map[store.GroupID]map[uint64]store.MessageID{}
	for _, g := range gs {
		bySeq[g] = map[uint64]store.MessageID{}
	}
	for a := range acks {
		if _, dup := bySeq[a.group][a.seq]; dup {
			t.Fatalf("seq %d in %q given twice", a.seq, a.group)
		}
		bySeq[a.group][a.seq] = a.id
	}
	for _, g := range gs {
		var all []store.LogEntry
		for after := uint64(0); ; {
			page, err := s.ReadGroup(ctx, g, after, 100)
			noErr(t, "ReadGroup", err)
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = page[len(page)-1].Seq
		}
		want := writers * perWriter / groups
		if len(all) != want || len(bySeq[g]) != want {
			t.Fatalf("group %q: %d stored, %d acknowledged, want %d", g, len(all), len(bySeq[g]), want)
		}
		for i, e := range all {
			if e.Seq != uint64(i+1) || bySeq[g][e.Seq] != e.ID {
				t.Fatalf("group %q entry %d: seq %d id mismatch", g, i, e.Seq)
			}
		}
	}
}

func testClose(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	g := newGroup(t, s, "g", a.ref(0))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AppendMessage(canceled, app(g, a.ref(0), 0, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with canceled context: %v", err)
	}
	noErr(t, "Close", s.Close())
	_, err := s.AppendMessage(ctx, app(g, a.ref(0), 0, 2))
	wantErr(t, "append after Close", err, store.ErrClosed)
	_, err = s.Account(ctx, a.account.ID)
	wantErr(t, "read after Close", err, store.ErrClosed)
	_, err = s.ReadGroup(ctx, g, 0, 10)
	wantErr(t, "ReadGroup after Close", err, store.ErrClosed)
}
