package client

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/parley-im/parley/client/store"
)

// offline makes an account whose device syncs only when told to (like
// the one-shot CLI), in a profile folder that outlives Close.
func (h *harness) offline(name string) (*Client, string) {
	h.t.Helper()
	dir := h.t.TempDir()
	o := h.opts()
	o.Username = name
	c, err := Init(h.ctx, dir, h.srv.URL, o)
	if err != nil {
		h.t.Fatalf("init %s: %v", name, err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c, dir
}

// reopen closes c and opens its profile again, as a new CLI command does.
func (h *harness) reopen(c *Client, dir string) *Client {
	h.t.Helper()
	if err := c.Close(); err != nil {
		h.t.Fatal(err)
	}
	c, err := Open(h.ctx, dir, h.opts())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) sync(c *Client) {
	h.t.Helper()
	if err := c.Sync(h.ctx); err != nil {
		h.t.Fatalf("sync %s: %v", c.Me().Address, err)
	}
}

// texts returns the text bodies c holds for chat.
func (h *harness) texts(c *Client, chat ChatID) []string {
	h.t.Helper()
	ms, err := chatMessages(h.ctx, c, chat)
	if err != nil {
		h.t.Fatal(err)
	}
	return bodies(ms)
}

// flushed waits until the outbox of c is empty (its messages are on the
// server).
func (h *harness) flushed(c *Client) {
	h.t.Helper()
	h.eventually("outbox empty", func() error {
		if n, err := c.queued(h.ctx); err != nil || n != 0 {
			return fmt.Errorf("%d queued (%v)", n, err)
		}
		return nil
	})
}

// TestRemovedWhileOffline: a device removed while offline learns it on its
// next sync (the chat stays, listed as left, and nothing more is synced);
// added again, it reads everything sent after.
func TestRemovedWhileOffline(t *testing.T) {
	h := newHarness(t)
	a := h.account("alice")
	carol, dir := h.offline("carol")
	group, err := a.CreateGroup(h.ctx, "offline", []string{"carol@" + a.host})
	if err != nil {
		t.Fatal(err)
	}
	h.send(a, group, "one")
	h.flushed(a)
	h.sync(carol)
	if got := h.texts(carol, group); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("carol has %q before removal", got)
	}
	carol = h.reopen(carol, dir)
	events, stop := carol.Subscribe(64)
	defer stop()

	if err := a.RemoveMembers(h.ctx, group, []string{"carol@" + a.host}); err != nil {
		t.Fatal(err)
	}
	h.send(a, group, "two")
	h.flushed(a)
	h.sync(carol)
	conv, err := carol.st.Conversation(h.ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if !conv.Left {
		t.Fatal("carol's device does not know it was removed")
	}
	if _, err := carol.st.GroupState(h.ctx, conv.Group); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the removed device still holds the group state (%v)", err)
	}
	h.waitEvent(events, "removal event", func(ev Event) bool {
		return ev.Kind == EventMembership && ev.Chat == group && ev.Text == "removed from the chat"
	})
	if _, err := carol.Send(h.ctx, group, "from outside"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("send after removal: %v", err)
	}
	h.sync(carol) // a second sync is quiet
	if got := h.texts(carol, group); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("carol has %q after removal", got)
	}

	// Added again: the Welcome makes a fresh state; the history stays.
	if err := a.AddMembers(h.ctx, group, []string{"carol@" + a.host}); err != nil {
		t.Fatal(err)
	}
	h.send(a, group, "three")
	h.flushed(a)
	carol = h.reopen(carol, dir)
	h.sync(carol)
	if got := h.texts(carol, group); !slices.Equal(got, []string{"one", "three"}) {
		t.Fatalf("carol has %q after being added again", got)
	}
	if conv, err := carol.st.Conversation(h.ctx, group); err != nil || conv.Left || conv.Name != "offline" {
		t.Fatalf("carol's chat after re-adding: %+v (%v)", conv, err)
	}
	h.noUndecryptable(a, carol)
}

// TestReaddedWhileOffline: removed and added again while offline, the
// device replaces its stale group state with the Welcome's and decrypts
// everything sent after (zero undecryptable).
func TestReaddedWhileOffline(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("alice"), h.account("bob")
	carol, dir := h.offline("carol")
	group, err := a.CreateGroup(h.ctx, "readd", []string{"bob@" + a.host, "carol@" + a.host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(b, group)
	h.send(a, group, "one")
	h.flushed(a)
	h.sync(carol)
	carol = h.reopen(carol, dir)

	if err := a.RemoveMembers(h.ctx, group, []string{"carol@" + a.host}); err != nil {
		t.Fatal(err)
	}
	h.send(a, group, "two")
	h.send(b, group, "two-b")
	h.converged(group, []string{"two", "two-b"}, a, b)
	if err := a.AddMembers(h.ctx, group, []string{"carol@" + a.host}); err != nil {
		t.Fatal(err)
	}
	h.send(a, group, "three")
	h.send(b, group, "four")
	h.flushed(a)
	h.flushed(b)
	h.sync(carol)
	// three and four were sent at once: the server picks their order.
	if got := h.texts(carol, group); len(got) != 3 || got[0] != "one" || !slices.Contains(got, "three") || !slices.Contains(got, "four") {
		t.Fatalf("carol has %q after being added again", got)
	}
	if _, err := carol.Send(h.ctx, group, "five"); err != nil {
		t.Fatal(err)
	}
	h.sync(carol)
	h.eventually("others read carol", func() error {
		for _, c := range []*Client{a, b} {
			if got := h.texts(c, group); !slices.Contains(got, "five") {
				return fmt.Errorf("%s has %q", c.Me().Address, got)
			}
		}
		return nil
	})
	h.noUndecryptable(a, b, carol)
}

// TestLinkedDeviceLearnsGroupInfo: a device linked after a group was made
// learns the group's name and admins, whether its account is an admin or
// not, and nobody reports a rule broken.
func TestLinkedDeviceLearnsGroupInfo(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("alice"), h.account("bob")
	group, err := a.CreateGroup(h.ctx, "names", []string{"bob@" + a.host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(b, group)
	aEvents, stopA := a.Subscribe(256)
	defer stopA()
	bEvents, stopB := b.Subscribe(256)
	defer stopB()
	a2 := h.link(a) // an admin's new device
	b2 := h.link(b) // a member's new device
	for _, c := range []*Client{a2, b2} {
		h.chatOn(c, group)
		h.eventually("group info on a linked device", func() error {
			conv, err := c.st.Conversation(h.ctx, group)
			if err != nil {
				return err
			}
			if conv.Name != "names" {
				return fmt.Errorf("%s: name %q", c.Me().DeviceID, conv.Name)
			}
			if admins := c.admins(h.ctx, group); !slices.Equal(admins, accountsOfClients(a)) {
				return fmt.Errorf("%s: admins %v", c.Me().DeviceID, admins)
			}
			return nil
		})
	}
	h.send(b2, group, "from bob's new device")
	h.converged(group, []string{"from bob's new device"}, a, a2, b, b2)
	for _, ch := range []<-chan Event{aEvents, bEvents} {
		for len(ch) > 0 {
			if ev := <-ch; ev.Kind == EventPolicy {
				t.Errorf("policy event: %s", ev.Text)
			}
		}
	}
	h.noUndecryptable(a, a2, b, b2)
}

// TestRemovalAfterUnfetchedEntries: a connected device whose removal
// commit is pushed behind entries it never fetched (the server stops
// returning the group's log once it is removed, so the gap never fills)
// still learns it was removed, without a reconnect.
func TestRemovalAfterUnfetchedEntries(t *testing.T) {
	h := newHarness(t)
	a := h.account("alice")
	carol, _ := h.offline("carol")
	group, err := a.CreateGroup(h.ctx, "gap", []string{"carol@" + a.host})
	if err != nil {
		t.Fatal(err)
	}
	h.send(a, group, "one")
	h.flushed(a)
	h.sync(carol) // connected from here on; no sync loop runs
	h.send(a, group, "two")
	h.flushed(a)
	if err := a.RemoveMembers(h.ctx, group, []string{"carol@" + a.host}); err != nil {
		t.Fatal(err)
	}
	h.eventually("removal commit pushed", func() error {
		carol.pushMu.Lock()
		defer carol.pushMu.Unlock()
		if len(carol.pushed) == 0 {
			return errors.New("no pushed commit yet")
		}
		return nil
	})
	h.sync(carol)
	conv, err := carol.st.Conversation(h.ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if !conv.Left {
		t.Fatal("carol's device does not know it was removed")
	}
	h.noUndecryptable(a, carol)
}
