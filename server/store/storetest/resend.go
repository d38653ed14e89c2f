package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/parley-im/parley/server/store"
)

// testConcurrentResends: resends of stored messages and the same new
// message sent twice at once, mixed into concurrent appends to a few groups
// (so that they share batches), each get the seq of the one stored copy,
// and every group's log stays without holes, each id stored once.
func testConcurrentResends(t *testing.T, s store.Store) {
	ctx := context.Background()
	const groups, stored, fresh, writers = 3, 30, 120, 24
	a := newAccount(t, s, "alice", 1)
	var gs []store.GroupID
	for i := 0; i < groups; i++ {
		gs = append(gs, newGroup(t, s, fmt.Sprintf("g%d", i), a.ref(0)))
	}
	msg := func(n int) store.Message { return app(gs[n%groups], a.ref(0), 0, n) }
	first := map[int]uint64{}
	for n := 0; n < stored; n++ {
		seq, err := s.AppendMessage(ctx, msg(n))
		noErr(t, "AppendMessage", err)
		first[n] = seq
	}
	// Each writer sends every fresh message whose number is ≡ w mod
	// writers/2, so every fresh message is sent by two writers at once,
	// with a resend of a stored message between any two sends.
	var mu sync.Mutex
	got := map[int][]uint64{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := stored + w%(writers/2); n < stored+fresh; n += writers / 2 {
				for _, k := range []int{n, (n + w) % stored} {
					seq, err := s.AppendMessage(ctx, msg(k))
					if err != nil {
						t.Errorf("AppendMessage(%d): %v", k, err)
						return
					}
					mu.Lock()
					got[k] = append(got[k], seq)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	bySeq := map[store.GroupID]map[uint64]store.MessageID{}
	for _, g := range gs {
		bySeq[g] = map[uint64]store.MessageID{}
	}
	for n, seq := range first {
		bySeq[msg(n).Group][seq] = msg(n).ID
	}
	for n, seqs := range got {
		for _, seq := range seqs {
			if n < stored && seq != first[n] {
				t.Fatalf("resend of message %d: seq %d, stored as %d", n, seq, first[n])
			}
			if seq != seqs[0] {
				t.Fatalf("message %d: seqs %v for one id", n, seqs)
			}
		}
		bySeq[msg(n).Group][seqs[0]] = msg(n).ID
	}
	for _, g := range gs {
		log, err := s.ReadGroup(ctx, g, 0, store.MaxReadLimit)
		noErr(t, "ReadGroup", err)
		if want := (stored + fresh) / groups; len(log) != want {
			t.Fatalf("group %q: %d entries, want %d", g, len(log), want)
		}
		for i, e := range log {
			if e.Seq != uint64(i+1) || bySeq[g][e.Seq] != e.ID {
				t.Fatalf("group %q entry %d: seq %d, id %x, answered %x", g, i, e.Seq, e.ID, bySeq[g][e.Seq])
			}
		}
	}
}
