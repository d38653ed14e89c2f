package client

import (
	"fmt"
	"slices"
	"testing"
)

// TestSendOrderOneChat sends many messages to one chat as fast as the
// public API allows, with the sync engine flushing batches meanwhile: the
// server's order (and so both sides' history) must be the send order.
func TestSendOrderOneChat(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.account("alice"), h.account("bob")
	chat, err := alice.StartDirect(h.ctx, bob.Me().Address)
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(bob, chat)
	const n = 300
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("message %d", i)
		h.send(alice, chat, want[i])
	}
	ms := h.converged(chat, want, alice, bob)
	if got := bodies(ms); !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("history has %d messages, first difference at %d (seq %d): %q, want %q", len(got), i, ms[i].Seq, got[i], want[i])
			}
		}
		t.Fatalf("history has %d messages, want %d", len(got), n)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Seq <= ms[i-1].Seq {
			t.Fatalf("seq %d after %d at %d", ms[i].Seq, ms[i-1].Seq, i)
		}
	}
	h.noUndecryptable(alice, bob)
}
