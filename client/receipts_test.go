package client

import (
	"fmt"
	"testing"

	"github.com/parley-im/parley/client/store"
	sstore "github.com/parley-im/parley/server/store"
)

// stateIs waits until c stores message id in state want.
func (h *harness) stateIs(c *Client, id MessageID, want store.MessageState) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("message %s %v", id, want), func() error {
		m, err := c.st.Message(h.ctx, id)
		if err != nil {
			return err
		}
		if m.State != want {
			return fmt.Errorf("state %v", m.State)
		}
		return nil
	})
}

// appEntries counts the application messages of account sender in chat's
// server log: what the server relayed for it.
func (h *harness) appEntries(c *Client, chat ChatID, sender *Client) int {
	h.t.Helper()
	conv, err := c.st.Conversation(h.ctx, chat)
	if err != nil {
		h.t.Fatal(err)
	}
	log, err := h.srv.Store.ReadGroup(h.ctx, sstore.GroupID(conv.Group), 0, 10000)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, e := range log {
		if e.Kind == sstore.KindApplication && e.Sender.Account == sender.Me().AccountID {
			n++
		}
	}
	return n
}

// 1:1: our message goes sent → delivered when the peer's device has it,
// with an EventState for each step; a burst the peer fetches at once costs
// it one receipt; the peer's receipts are never acknowledged in turn.
func TestDeliveryReceiptsDirect(t *testing.T) {
	h := newHarness(t)
	alice := h.account("alice")
	bob, bobDir := h.offline("bob")
	chat, err := alice.StartDirect(h.ctx, "bob@"+alice.host)
	if err != nil {
		t.Fatal(err)
	}
	events, stop := alice.Subscribe(1024)
	defer stop()
	first := h.send(alice, chat, "first")
	h.waitEvent(events, "sent", func(ev Event) bool {
		return ev.Kind == EventState && ev.Target == first && ev.MessageState == store.StateSent && ev.Chat == chat
	})
	h.stateIs(alice, first, store.StateSent)

	const burst = 20
	ids := []MessageID{first}
	for i := range burst - 1 {
		ids = append(ids, h.send(alice, chat, fmt.Sprint("burst ", i)))
	}
	h.flushed(alice)
	h.sync(bob) // one fetch: the Welcome and all 20 messages
	h.sync(bob)
	if got := h.appEntries(alice, chat, bob); got != 1 {
		t.Fatalf("bob's device sent %d messages for a burst of %d, want 1 receipt", got, burst)
	}
	delivered := map[MessageID]bool{}
	for len(delivered) < burst {
		ev := h.waitEvent(events, "delivered", func(ev Event) bool {
			return ev.Kind == EventState && ev.MessageState == store.StateDelivered
		})
		if ev.Sender != bob.Me().AccountID || ev.Chat != chat {
			t.Fatalf("delivered event from %s in %s", ev.Sender, ev.Chat)
		}
		delivered[ev.Target] = true
	}
	for _, id := range ids {
		h.stateIs(alice, id, store.StateDelivered)
	}
	// Alice's device does not acknowledge bob's receipt, and bob's
	// messages get their own receipt from alice.
	reply := h.send(bob, chat, "got them")
	h.sync(bob)
	h.converged(chat, []string{"got them"}, alice)
	h.flushed(alice)
	bob = h.reopen(bob, bobDir)
	h.sync(bob)
	h.stateIs(bob, reply, store.StateDelivered)
	if got := h.appEntries(alice, chat, alice); got != burst+1 {
		t.Fatalf("alice's device sent %d messages, want %d and one receipt", got, burst+1)
	}
	h.noUndecryptable(alice, bob)
}

// Group: delivered once every other member account has the message, read
// once every other member account has read it (read receipts on).
func TestReceiptsGroup(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.account("alice"), h.account("bob")
	carol, _ := h.offline("carol")
	chat, err := alice.CreateGroup(h.ctx, "trio", []string{"bob@" + alice.host, "carol@" + alice.host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(bob, chat)
	msg := h.send(alice, chat, "hello both")
	h.converged(chat, []string{"hello both"}, alice, bob)
	// Bob's receipt precedes his next message in the log: once alice has
	// that, she has processed the receipt.
	h.send(bob, chat, "hi")
	h.converged(chat, []string{"hi"}, alice, bob)
	if m, _ := alice.st.Message(h.ctx, msg); m.State != store.StateSent {
		t.Fatalf("with carol offline the message is %v, want sent", m.State)
	}
	h.sync(carol)
	h.sync(carol)
	h.stateIs(alice, msg, store.StateDelivered)

	for _, c := range []*Client{bob, carol} {
		if err := c.SetSetting(h.ctx, SettingReadReceipts, "on"); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.MarkRead(h.ctx, chat, msg); err != nil {
		t.Fatal(err)
	}
	h.send(bob, chat, "read it")
	h.converged(chat, []string{"read it"}, alice, bob)
	if m, _ := alice.st.Message(h.ctx, msg); m.State != store.StateDelivered {
		t.Fatalf("read by bob only, the message is %v, want delivered", m.State)
	}
	if err := carol.MarkRead(h.ctx, chat, msg); err != nil {
		t.Fatal(err)
	}
	h.sync(carol)
	h.stateIs(alice, msg, store.StateRead)

	// Dave joins after the next message was sent: it cannot reach him,
	// and it is delivered once bob and carol, its recipients, have it.
	dave := h.account("dave")
	later := h.send(alice, chat, "before dave")
	h.flushed(alice)
	if err := alice.AddMembers(h.ctx, chat, []string{"dave@" + alice.host}); err != nil {
		t.Fatal(err)
	}
	h.chatOn(dave, chat)
	h.sync(carol)
	h.sync(carol)
	h.stateIs(alice, later, store.StateDelivered)
	h.noUndecryptable(alice, bob, carol, dave)
}

// BenchmarkDeliveryReceipts measures the sender's side of delivery
// receipts, per message: fetch the peer's receipts (one per 256 messages
// it received in one batch), record the receipt per message and move the
// message to delivered. cpu-µs/op is the process's CPU time (the
// in-process server included).
func BenchmarkDeliveryReceipts(b *testing.B) {
	ctx, a, bob, chat := benchPair(b)
	for i := range b.N {
		if _, err := a.Send(ctx, chat, fmt.Sprintf("benchmark message %048d", i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	if err := bob.Sync(ctx); err != nil { // receives, sends the receipts
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := processCPU()
	if err := a.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	page, err := a.History(ctx, chat, store.HistoryQuery{Limit: 1})
	if err != nil || len(page.Messages) != 1 || page.Messages[0].State != store.StateDelivered {
		b.Fatalf("last message not delivered (%v)", err)
	}
}
