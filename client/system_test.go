package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// systemMessages returns the system messages of chat on c, by id.
func systemMessages(h *harness, c *Client, chat ChatID) (map[MessageID]*Message, error) {
	page, err := c.History(h.ctx, chat, store.HistoryQuery{Limit: store.MaxPageSize})
	if err != nil {
		return nil, err
	}
	out := make(map[MessageID]*Message)
	for _, m := range page.Messages {
		if m.Kind == store.KindSystem {
			out[m.ID] = m
		}
	}
	return out, nil
}

// sameSystemMessage waits until every client stores one system message
// whose text is want, under one id, with one sent_at and one position,
// and returns it.
func (h *harness) sameSystemMessage(chat ChatID, want string, clients ...*Client) *Message {
	h.t.Helper()
	var ref *Message
	h.eventually("system message "+want, func() error {
		ref = nil
		for i, c := range clients {
			ms, err := systemMessages(h, c, chat)
			if err != nil {
				return err
			}
			var got *Message
			for _, m := range ms {
				if string(m.Body) == want {
					if got != nil {
						return fmt.Errorf("device %d shows %q twice", i, want)
					}
					got = m
				}
			}
			if got == nil {
				return fmt.Errorf("device %d (%s) lacks %q", i, c.Me().Address, want)
			}
			if got.Seq == 0 {
				return fmt.Errorf("device %d: %q not yet ordered", i, want)
			}
			if ref == nil {
				ref = got
				continue
			}
			if got.ID != ref.ID || got.Seq != ref.Seq || !got.SentAt.Equal(ref.SentAt) || got.Sender != ref.Sender {
				return fmt.Errorf("device %d: %q is %s seq %d sent %v by %s; device 0: %s seq %d sent %v by %s", i, want,
					got.ID, got.Seq, got.SentAt, got.Sender, ref.ID, ref.Seq, ref.SentAt, ref.Sender)
			}
		}
		return nil
	})
	return ref
}

// Renames, timer changes and membership changes are system messages, the
// same on every device (id, position, sent_at); a linked device is not a
// new member; a member who leaves shows as "-" on the committing device
// too; a chat left lists the members without us.
func TestSystemMessages(t *testing.T) {
	h := newHarness(t)
	a1, b1, c1 := h.account("alice"), h.account("bob"), h.account("carol")
	group, err := a1.CreateGroup(h.ctx, "team", []string{"bob@" + a1.host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(b1, group)
	h.eventually("name known", func() error {
		conv, err := b1.st.Conversation(h.ctx, group)
		if err != nil || conv.Name != "team" {
			return fmt.Errorf("name %q (%v)", conv.Name, err)
		}
		return nil
	})

	// A second device of alice: a device change, not a membership change.
	a2 := h.link(a1)
	h.chatOn(a2, group)
	alice, bob, carol := a1.Me().AccountID, b1.Me().AccountID, c1.Me().AccountID
	h.sameSystemMessage(group, "devices changed: "+string(alice), a1, b1)

	if err := a1.Rename(h.ctx, group, "new name"); err != nil {
		t.Fatal(err)
	}
	m := h.sameSystemMessage(group, `renamed the group to "new name"`, a1, a2, b1)
	if m.Sender != alice {
		t.Fatalf("rename sent by %s, want alice", m.Sender)
	}
	if err := a1.SetDisappearing(h.ctx, group, time.Hour); err != nil {
		t.Fatal(err)
	}
	h.sameSystemMessage(group, "disappearing messages: 1h0m0s", a1, a2, b1)
	if err := a1.SetDisappearing(h.ctx, group, 0); err != nil {
		t.Fatal(err)
	}
	h.sameSystemMessage(group, "disappearing messages: off", a1, a2, b1)

	if err := a1.AddMembers(h.ctx, group, []string{"carol@" + a1.host}); err != nil {
		t.Fatal(err)
	}
	h.chatOn(c1, group)
	h.sameSystemMessage(group, "members: +"+string(carol), a1, a2, b1)

	// Bob leaves; one of alice's devices removes him and shows it too.
	if err := b1.Leave(h.ctx, group); err != nil {
		t.Fatal(err)
	}
	h.sameSystemMessage(group, "members: -"+string(bob), a1, a2, c1)
	for _, c := range []*Client{a1, a2, c1} {
		ms, err := systemMessages(h, c, group)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if strings.Contains(string(m.Body), "+"+string(alice)) || strings.Contains(string(m.Body), "-"+string(alice)) {
				t.Fatalf("%s shows alice's device change as a membership change: %q", c.Me().Address, m.Body)
			}
		}
	}
	convs, _, err := b1.Chats(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, conv := range convs {
		if conv.ID != group {
			continue
		}
		if !conv.Left || slices.Contains(conv.Members, bob) || !slices.Contains(conv.Members, alice) {
			t.Fatalf("bob's left chat: left %v, members %v", conv.Left, conv.Members)
		}
	}
	h.noUndecryptable(a1, a2, b1, c1)
}

// A link refused on the approving device ends the new device's wait at
// once, with ErrLinkRefused, and links nothing.
func TestLinkRefused(t *testing.T) {
	h := newHarness(t)
	a1 := h.account("alice")
	pl, err := NewLink(h.ctx, t.TempDir(), h.srv.URL, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	req, err := ParseLinkCode(pl.Request().Code())
	if err != nil {
		t.Fatal(err)
	}
	if err := a1.RefuseLink(h.ctx, req); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	c, err := pl.Wait(ctx)
	if !errors.Is(err, ErrLinkRefused) || c != nil {
		t.Fatalf("Wait after a refusal: %v, %v (after %v)", c, err, time.Since(start))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the refusal took %v to arrive", d)
	}
	devs, err := a1.Devices(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 {
		t.Fatalf("alice has %d devices after a refused link", len(devs))
	}
}

// The committer's time survives the commit's authenticated data; anything
// else falls back to the server's time.
func FuzzCommitTime(f *testing.F) {
	f.Add(commitAAD(time.UnixMilli(1_790_000_000_123)), int64(1_790_000_001))
	f.Add([]byte{}, int64(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, int64(5))
	f.Fuzz(func(t *testing.T, aad []byte, server int64) {
		got := commitTime(aad, server)
		if len(aad) != 8 && !got.Equal(time.Unix(server, 0)) {
			t.Fatalf("commitTime(%x, %d) = %v, want the server's time", aad, server, got)
		}
		if len(aad) == 8 && !got.Equal(time.Unix(server, 0)) && !commitTime(commitAAD(got), 0).Equal(got) {
			t.Fatalf("commitTime(%x) = %v does not round-trip", aad, got)
		}
	})
}

func TestMembershipText(t *testing.T) {
	a, b, c := identity.AccountID("a"), identity.AccountID("b"), identity.AccountID("c")
	for _, tc := range []struct {
		old, now, touched []identity.AccountID
		want              string
	}{
		{[]identity.AccountID{a}, []identity.AccountID{a, b}, []identity.AccountID{b}, "members: +b"},
		{[]identity.AccountID{a, b}, []identity.AccountID{a}, []identity.AccountID{b}, "members: -b"},
		{[]identity.AccountID{a, b}, []identity.AccountID{a, b}, []identity.AccountID{b, b}, "devices changed: b"},
		{[]identity.AccountID{a, b}, []identity.AccountID{a, c}, []identity.AccountID{a, b, c}, "members: +c -b; devices changed: a"},
		{[]identity.AccountID{a, b}, []identity.AccountID{a, b}, nil, ""},
	} {
		if got := membershipText(tc.old, tc.now, tc.touched); got != tc.want {
			t.Errorf("membershipText(%v, %v, %v) = %q, want %q", tc.old, tc.now, tc.touched, got, tc.want)
		}
	}
}
