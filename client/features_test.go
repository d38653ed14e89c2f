package client

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/wire/wireclient"
)

// waitEvent waits for an event matching ok.
func (h *harness) waitEvent(ch <-chan Event, what string, ok func(Event) bool) Event {
	h.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ok(ev) {
				return ev
			}
		case <-timeout:
			h.t.Fatalf("no %s event", what)
		}
	}
}

// Receipts and typing are off by default; turned on, on one device, the
// setting reaches the account's other devices through the self group and
// the notices reach the other side.
func TestPrivacySettings(t *testing.T) {
	h := newHarness(t)
	a1, b1 := h.account("alice"), h.account("bob")
	b2 := h.link(b1)
	for _, c := range []*Client{a1, b1} {
		for name, def := range Settings {
			if v, err := c.Setting(h.ctx, name); err != nil || v != def || def != "off" {
				t.Fatalf("%s = %q, %v; want off", name, v, err)
			}
		}
	}
	chat, err := a1.StartDirect(h.ctx, "bob@"+a1.host)
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(b1, chat)
	first := h.send(a1, chat, "first")
	h.converged(chat, []string{"first"}, a1, b1, b2)
	if err := b1.MarkRead(h.ctx, chat, first); err != nil {
		t.Fatal(err)
	}
	if err := b1.SetTyping(h.ctx, chat, true); err != nil {
		t.Fatal(err)
	}
	// Read state travels to bob's other device even with receipts off.
	h.eventually("read state synced", func() error {
		conv, err := b2.st.Conversation(h.ctx, chat)
		if err != nil {
			return err
		}
		if _, unread, _ := b2.Chats(h.ctx); unread[chat] != 0 || conv.LastReadSeq == 0 {
			return fmt.Errorf("unread %d, last read %d", unread[chat], conv.LastReadSeq)
		}
		return nil
	})
	// Nothing reached alice: her message is not marked read.
	second := h.send(a1, chat, "second")
	h.converged(chat, []string{"first", "second"}, a1, b1, b2)
	if m, _ := a1.st.Message(h.ctx, first); m.State == store.StateRead {
		t.Fatal("a read receipt was sent while receipts were off")
	}

	events, stop := a1.Subscribe(256)
	defer stop()
	if err := b1.SetSetting(h.ctx, SettingReadReceipts, "on"); err != nil {
		t.Fatal(err)
	}
	if err := b1.SetSetting(h.ctx, SettingTyping, "on"); err != nil {
		t.Fatal(err)
	}
	h.eventually("settings synced", func() error {
		for _, name := range []string{SettingReadReceipts, SettingTyping} {
			if v, _ := b2.Setting(h.ctx, name); v != "on" {
				return fmt.Errorf("%s is %q on bob's second device", name, v)
			}
		}
		return nil
	})
	if err := b2.SetTyping(h.ctx, chat, true); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(events, "typing", func(ev Event) bool { return ev.Kind == EventTyping && ev.Typing && ev.Chat == chat })
	if err := b2.MarkRead(h.ctx, chat, second); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(events, "receipt", func(ev Event) bool { return ev.Kind == EventReceipt && ev.Target == second })
	h.eventually("message marked read", func() error {
		if m, _ := a1.st.Message(h.ctx, second); m.State != store.StateRead {
			return fmt.Errorf("state %v", m.State)
		}
		return nil
	})
	h.noUndecryptable(a1, b1, b2)
}

// Disappearing messages are deleted on every device when they expire.
func TestDisappearing(t *testing.T) {
	h := newHarness(t)
	a1, b1 := h.account("alice"), h.account("bob")
	a2 := h.link(a1)
	chat, err := a1.StartDirect(h.ctx, "bob@"+a1.host)
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(b1, chat)
	h.send(a1, chat, "stays")
	h.converged(chat, []string{"stays"}, a1, a2, b1)
	if err := a1.SetDisappearing(h.ctx, chat, time.Minute); err != nil {
		t.Fatal(err)
	}
	h.eventually("timer synced", func() error {
		conv, err := b1.st.Conversation(h.ctx, chat)
		if err != nil || conv.DisappearAfter != time.Minute {
			return fmt.Errorf("timer %v (%v)", conv.DisappearAfter, err)
		}
		return nil
	})
	h.send(b1, chat, "goes away")
	h.converged(chat, []string{"stays", "goes away"}, a1, a2, b1)
	h.skew.Store(int64(2 * time.Minute))
	for _, c := range []*Client{a1, a2, b1} {
		c.wake()
	}
	h.eventually("expired everywhere", func() error {
		for _, c := range []*Client{a1, a2, b1} {
			ms, err := chatMessages(h.ctx, c, chat)
			if err != nil {
				return err
			}
			if got := bodies(ms); !slices.Equal(got, []string{"stays"}) {
				m, _ := chatMessages(h.ctx, c, chat)
				return fmt.Errorf("%s shows %q now %v expires %v", c.Me().Address, got, c.now(), m[len(m)-1].ExpiresAt)
			}
		}
		return nil
	})
	h.noUndecryptable(a1, a2, b1)
}

// Leaving removes all of the account's devices; a commit by a non-admin
// that adds someone is reported and undone by an admin device.
func TestLeaveAndAdminRules(t *testing.T) {
	h := newHarness(t)
	a1, b1, c1, d1, e1 := h.account("alice"), h.account("bob"), h.account("carol"), h.account("dave"), h.account("erin")
	c2 := h.link(c1)
	group, err := a1.CreateGroup(h.ctx, "rules", []string{"bob@" + a1.host, "carol@" + a1.host, "erin@" + a1.host})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{b1, c1, c2} {
		h.chatOn(c, group)
	}
	h.eventually("name known", func() error {
		conv, err := b1.st.Conversation(h.ctx, group)
		if err != nil || conv.Name != "rules" {
			return fmt.Errorf("name %q (%v)", conv.Name, err)
		}
		return nil
	})
	if err := b1.AddMembers(h.ctx, group, []string{"dave@" + a1.host}); err != ErrNotAdmin {
		t.Fatalf("non-admin add: %v", err)
	}

	// Carol leaves from one device: both of hers leave, the others remove her.
	if err := c1.Leave(h.ctx, group); err != nil {
		t.Fatal(err)
	}
	h.eventually("carol gone", func() error {
		for _, c := range []*Client{a1, b1} {
			conv, err := c.st.Conversation(h.ctx, group)
			if err != nil {
				return err
			}
			if slices.Contains(conv.Members, c1.Me().AccountID) {
				return fmt.Errorf("%s still lists carol", c.Me().Address)
			}
		}
		conv, err := c2.st.Conversation(h.ctx, group)
		if err != nil || !conv.Left {
			return fmt.Errorf("carol's second device has not left (%v)", err)
		}
		return nil
	})

	// A misbehaving client of bob (not an admin) adds dave anyway.
	events, stop := a1.Subscribe(256)
	defer stop()
	conv, err := b1.st.Conversation(h.ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	err = b1.withConn(h.ctx, func(conn *wireConn) error {
		b1.mu.Lock()
		defer b1.mu.Unlock()
		return b1.addAccountsLocked(h.ctx, conn, conv, accountsOfClients(d1))
	})
	if err != nil {
		t.Fatal(err)
	}
	h.waitEvent(events, "policy", func(ev Event) bool { return ev.Kind == EventPolicy && ev.Chat == group })
	h.eventually("admin removed dave", func() error {
		for _, c := range []*Client{a1, b1} {
			conv, err := c.st.Conversation(h.ctx, group)
			if err != nil {
				return err
			}
			if slices.Contains(conv.Members, d1.Me().AccountID) {
				return fmt.Errorf("%s still lists dave", c.Me().Address)
			}
		}
		return nil
	})
	// The same client removes erin: an admin device adds her back.
	h.chatOn(e1, group)
	err = b1.withConn(h.ctx, func(conn *wireConn) error {
		b1.mu.Lock()
		defer b1.mu.Unlock()
		return b1.commitChange(h.ctx, conn, conv.Group, nil, func(m *memberID) bool { return m.Account == e1.Me().AccountID })
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eventually("erin back", func() error {
		for _, c := range []*Client{a1, b1, e1} {
			conv, err := c.st.Conversation(h.ctx, group)
			if err != nil {
				return err
			}
			if !slices.Contains(conv.Members, e1.Me().AccountID) || conv.Left {
				return fmt.Errorf("%s: erin not (back) in the group", c.Me().Address)
			}
		}
		return nil
	})
	h.send(a1, group, "after the rules")
	h.converged(group, []string{"after the rules"}, a1, b1, e1)
	h.noUndecryptable(a1, b1, c1, c2, d1, e1)
}

type wireConn = wireclient.Client

func accountsOfClients(cs ...*Client) []identity.AccountID {
	var out []identity.AccountID
	for _, c := range cs {
		out = append(out, c.Me().AccountID)
	}
	return out
}

// The outbox survives a restart: a message queued while the client was not
// connected is sent when the profile is opened and run again; the
// connection state is reported.
func TestOutboxSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	a1, b1 := h.account("alice"), h.account("bob")
	chat, err := a1.StartDirect(h.ctx, "bob@"+a1.host)
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(b1, chat)
	dir := a1.st.Dir()
	h.stop(a1)
	a1, err = Open(h.ctx, dir, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	h.send(a1, chat, "queued first")
	id := h.send(a1, chat, "queued while offline")
	if n, _ := a1.queued(h.ctx); n != 2 {
		t.Fatalf("queued %d, want 2", n)
	}
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	a1, err = Open(h.ctx, dir, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	if m, err := a1.st.Message(h.ctx, id); err != nil || m.State != store.StatePending {
		t.Fatalf("after restart: %v %v", m, err)
	}
	events, stop := a1.Subscribe(64)
	defer stop()
	h.run(a1)
	h.waitEvent(events, "online", func(ev Event) bool { return ev.Kind == EventConnection && ev.State == Online })
	h.converged(chat, []string{"queued first", "queued while offline"}, a1, b1)
	if m, _ := a1.st.Message(h.ctx, id); m.State != store.StateSent && m.State != store.StateDelivered {
		t.Fatalf("state %v, want sent (or delivered, once bob's receipt came)", m.State)
	}
	if _, err := ParseMessageID(id.String()); err != nil {
		t.Fatal(err)
	}
	h.noUndecryptable(a1, b1)
}

// Both sides compute the same safety number; verification is remembered.
func TestSafetyNumber(t *testing.T) {
	h := newHarness(t)
	a1, b1 := h.account("alice"), h.account("bob")
	sa, err := a1.SafetyNumber(h.ctx, "bob@"+a1.host)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b1.SafetyNumber(h.ctx, string(a1.Me().AccountID)+"@"+a1.host)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Number != sb.Number || len(strings.ReplaceAll(sa.Number, " ", "")) != 60 || sa.Verified {
		t.Fatalf("numbers %q %q verified %v", sa.Number, sb.Number, sa.Verified)
	}
	if err := a1.MarkVerified(h.ctx, sa); err != nil {
		t.Fatal(err)
	}
	if again, err := a1.SafetyNumber(h.ctx, "bob@"+a1.host); err != nil || !again.Verified || again.Changed {
		t.Fatalf("after verifying: %+v %v", again, err)
	}
	chat, _, err := a1.SendText(h.ctx, "bob@"+a1.host, "via address")
	if err != nil {
		t.Fatal(err)
	}
	if chat2, _, err := a1.SendText(h.ctx, string(chat), "via chat id"); err != nil || chat2 != chat {
		t.Fatalf("send by chat id: %v %v", chat2, err)
	}
	h.chatOn(b1, chat)
	h.converged(chat, []string{"via address", "via chat id"}, a1, b1)
	if _, err := a1.Resolve(h.ctx, "nobody@"+a1.host); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := a1.Resolve(h.ctx, "bob@elsewhere.example"); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("foreign server: %v", err)
	}
	if _, err := a1.Send(h.ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaa", "x"); !errors.Is(err, ErrUnknownChat) {
		t.Fatalf("unknown chat: %v", err)
	}
}

// Account data reaches the account's other devices through the self group
// and a newly linked device through the link bundle, and nobody else.
func TestAccountData(t *testing.T) {
	h := newHarness(t)
	a1, b1 := h.account("alice"), h.account("bob")
	a2 := h.link(a1)
	if err := a1.ShareAccountData(h.ctx, "archive.keyring", []byte("canary-keyring-v1")); err != nil {
		t.Fatal(err)
	}
	h.eventually("shared", func() error {
		v, ok, err := a2.AccountData(h.ctx, "archive.keyring")
		if err != nil || !ok || string(v) != "canary-keyring-v1" {
			return fmt.Errorf("%q %v %v", v, ok, err)
		}
		return nil
	})
	// A file message carries its descriptor end to end.
	chat, err := a1.StartDirect(h.ctx, "bob@"+a1.host)
	if err != nil {
		t.Fatal(err)
	}
	fid, err := a1.SendFile(h.ctx, chat, []byte("canary-file-descriptor"))
	if err != nil {
		t.Fatal(err)
	}
	h.eventually("file message", func() error {
		m, err := b1.st.Message(h.ctx, fid)
		if err != nil {
			return err
		}
		if m.Kind != store.KindFile || string(m.Body) != "canary-file-descriptor" {
			return fmt.Errorf("got %v %q", m.Kind, m.Body)
		}
		return nil
	})
	if _, ok, _ := b1.AccountData(h.ctx, "archive.keyring"); ok {
		t.Fatal("another account got the data")
	}
	a2.opts.LinkData = []string{"archive.keyring"}
	a3 := h.link(a2)
	if v, ok, err := a3.AccountData(h.ctx, "archive.keyring"); err != nil || !ok || string(v) != "canary-keyring-v1" {
		t.Fatalf("linked device: %q %v %v", v, ok, err)
	}
	if err := a1.ShareAccountData(h.ctx, "Bad Name", nil); err == nil {
		t.Fatal("accepted a bad name")
	}
	h.canary([]string{"canary-keyring-v1", "canary-file-descriptor"})
}
