package client

import (
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/internal/testserver"
	sstore "github.com/parley-im/parley/server/store"
)

// A server that appends an already delivered ciphertext again, under new
// sequence numbers, makes the receiver refuse it as a replay: counted by
// Replays, not by Undecryptable, not stored, and the conversation goes on.
func TestServerReplayCountedAsReplay(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.account("alice"), h.account("bob")
	chat, err := alice.StartDirect(h.ctx, "bob@"+alice.host)
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(bob, chat)
	h.send(bob, chat, "transfer 100 to alice")
	h.converged(chat, []string{"transfer 100 to alice"}, alice, bob)
	conv, err := alice.st.Conversation(h.ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	group := sstore.GroupID(conv.Group)
	log, err := h.srv.Store.ReadGroup(h.ctx, group, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var last *sstore.LogEntry
	for i := range log {
		if log[i].Kind == sstore.KindApplication && log[i].Sender.Account == bob.Me().AccountID {
			last = &log[i]
		}
	}
	if last == nil {
		t.Fatal("bob's message is not in the server's log")
	}
	const replays = 3
	for range replays {
		// What a malicious operator can do: the same ciphertext, under
		// a fresh message id and sequence number.
		m := sstore.Message{Group: group, ID: sstore.MessageID(testserver.MessageID()), Epoch: last.Epoch, Kind: last.Kind,
			Sender: last.Sender, Data: last.Data, At: time.Now(), EpochGrace: 1}
		if _, err := h.srv.Store.AppendMessage(h.ctx, m); err != nil {
			t.Fatalf("append the replay: %v", err)
		}
	}
	// The next real message makes alice fetch past the replays.
	h.send(bob, chat, "after the replays")
	h.converged(chat, []string{"transfer 100 to alice", "after the replays"}, alice, bob)
	// The replays precede bob's last message in the log, so alice has
	// processed them by now.
	if n := alice.Replays(); n != replays {
		t.Errorf("%d replays counted, want %d", n, replays)
	}
	page, err := alice.History(h.ctx, chat, store.HistoryQuery{Limit: store.MaxPageSize, IncludeDeleted: true})
	if err != nil {
		t.Fatal(err)
	}
	texts := 0
	for _, m := range page.Messages {
		if m.State == store.StateUndecryptable {
			t.Fatalf("a replay was stored as an undecryptable %v message", m.Kind)
		}
		if m.Kind == store.KindText {
			texts++
		}
	}
	if texts != 2 {
		t.Fatalf("alice stores %d texts, want the 2 bob sent", texts)
	}
	if n := alice.Undecryptable(); n != 0 {
		t.Fatalf("replays counted as %d undecryptable", n)
	}
	h.noUndecryptable(alice, bob)
}
