package store

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestConcurrentUse runs writers and readers at once (meaningful under
// -race): every write lands, and reads never see an error.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := newChat(t, s, "busy")
	bob := newAccount(t)
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	errc := make(chan error, writers+2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				n := w*perWriter + i + 1
				if _, err := s.Apply(ctx, &Batch{Messages: []*Message{textMsg(c.ID, n, bob, uint64(n), "x")}}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var rg sync.WaitGroup
	for range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.History(ctx, c.ID, HistoryQuery{Limit: 20}); err != nil {
					errc <- err
					return
				}
				if _, err := s.UnreadCounts(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	counts, err := s.UnreadCounts(ctx)
	if err != nil || counts[c.ID] != writers*perWriter {
		t.Fatalf("unread %d, want %d (%v)", counts[c.ID], writers*perWriter, err)
	}
	// A panicking transaction leaves the writer usable.
	func() {
		defer func() { _ = recover() }()
		_ = s.Update(ctx, func(tx *Tx) error { panic("boom") })
	}()
	if err := s.Update(ctx, func(tx *Tx) error { return tx.SetSetting("after-panic", "ok") }); err != nil {
		t.Fatalf("write after a panicking transaction: %v", err)
	}
	s.Close()
	if _, err := s.History(ctx, c.ID, HistoryQuery{Limit: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

// TestTwoOpeners has two Stores (as two processes would) write to one
// profile: pending positions and change numbers never collide, and each
// sees the other's writes.
func TestTwoOpeners(t *testing.T) {
	ctx := context.Background()
	s1, dir := newStore(t)
	s2, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c := newChat(t, s1, "shared")
	me := newAccount(t)
	for i := range 10 {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		m := &Message{ID: msgID(i + 1), Chat: c.ID, Sender: me, Mine: true, Kind: KindText, Body: []byte("x"), State: StatePending}
		insert(t, s, m)
	}
	page, err := s2.History(ctx, c.ID, HistoryQuery{Limit: 20})
	if err != nil || len(page.Messages) != 10 {
		t.Fatalf("history %d, %v", len(page.Messages), err)
	}
	for i, m := range page.Messages {
		if m.ID != msgID(i+1) {
			t.Fatalf("message %d out of order", i)
		}
	}
	changes, err := s1.Changes(ctx, 0, 100)
	if err != nil || len(changes) != 10 {
		t.Fatalf("changes %d, %v", len(changes), err)
	}
}
