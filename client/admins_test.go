package client

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parley-im/parley/identity"
)

// convState reports c's name and members of chat.
func convState(h *harness, c *Client, chat ChatID) (string, []identity.AccountID, error) {
	conv, err := c.st.Conversation(h.ctx, chat)
	if err != nil {
		return "", nil, err
	}
	return conv.Name, conv.Members, nil
}

// noPolicy fails the test if any of the logs holds a policy event.
func noPolicy(t *testing.T, logs map[string]*policyLog) {
	t.Helper()
	for who, l := range logs {
		if evs := l.events(); len(evs) > 0 {
			t.Fatalf("%s reported a policy breach: %+v", who, evs)
		}
	}
}

// When the last admin leaves, the group administers itself: every
// remaining member may rename it and add and remove members, and the
// others accept it without a policy report.
func TestLastAdminLeaves(t *testing.T) {
	h := newHarness(t)
	a1, b1, c1, d1 := h.account("alice"), h.account("bob"), h.account("carol"), h.account("dave")
	group, err := a1.CreateGroup(h.ctx, "g", []string{"bob@" + a1.host, "carol@" + a1.host})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{b1, c1} {
		h.chatOn(c, group)
	}
	h.eventually("admins known", func() error {
		for _, c := range []*Client{b1, c1} {
			if got := c.Admins(h.ctx, group); !slices.Equal(got, accountsOfClients(a1)) {
				return fmt.Errorf("%s: admins %v", c.Me().Address, got)
			}
		}
		return nil
	})
	logs := map[string]*policyLog{"bob": watchPolicy(t, b1), "carol": watchPolicy(t, c1)}
	if err := b1.Rename(h.ctx, group, "x"); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("rename by a non-admin while the admin is a member: %v", err)
	}

	if err := a1.Leave(h.ctx, group); err != nil {
		t.Fatal(err)
	}
	h.eventually("alice gone", func() error {
		for _, c := range []*Client{b1, c1} {
			_, members, err := convState(h, c, group)
			if err != nil {
				return err
			}
			if slices.Contains(members, a1.Me().AccountID) {
				return fmt.Errorf("%s still lists alice", c.Me().Address)
			}
		}
		return nil
	})

	// Bob renames and adds dave; carol removes dave again.
	if err := b1.Rename(h.ctx, group, "renamed"); err != nil {
		t.Fatalf("rename after the last admin left: %v", err)
	}
	if err := b1.AddMembers(h.ctx, group, []string{"dave@" + a1.host}); err != nil {
		t.Fatalf("add after the last admin left: %v", err)
	}
	h.chatOn(d1, group)
	h.eventually("rename and add accepted", func() error {
		for _, c := range []*Client{b1, c1, d1} {
			name, members, err := convState(h, c, group)
			if err != nil {
				return err
			}
			if name != "renamed" || !slices.Contains(members, d1.Me().AccountID) {
				return fmt.Errorf("%s: name %q, members %v", c.Me().Address, name, members)
			}
		}
		return nil
	})
	if err := c1.RemoveMembers(h.ctx, group, []string{"dave@" + a1.host}); err != nil {
		t.Fatalf("remove after the last admin left: %v", err)
	}
	h.eventually("removal accepted", func() error {
		_, members, err := convState(h, b1, group)
		if err != nil {
			return err
		}
		if slices.Contains(members, d1.Me().AccountID) {
			return fmt.Errorf("bob still lists dave: %v", members)
		}
		return nil
	})
	// Carol makes herself the admin: bob is a non-admin again.
	if err := c1.SetAdmins(h.ctx, group, []string{"carol@" + a1.host}); err != nil {
		t.Fatal(err)
	}
	h.eventually("bob learns the admin", func() error {
		if got := b1.Admins(h.ctx, group); !slices.Equal(got, accountsOfClients(c1)) {
			return fmt.Errorf("admins %v", got)
		}
		return nil
	})
	if err := b1.Rename(h.ctx, group, "again"); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("rename by a non-admin after an admin was set: %v", err)
	}
	// Flush anything still in flight before looking at the reports.
	h.send(c1, group, "done")
	h.converged(group, []string{"done"}, b1, c1)
	noPolicy(t, logs)
}

// A non-admin that removes the group's only admin gains nothing: the
// removal is reported, the admin stays the admin and the remaining members
// add it back, and the remover's rename is refused and reported.
func TestNonAdminRemovesLastAdmin(t *testing.T) {
	h := newHarness(t)
	a1, b1, c1 := h.account("alice"), h.account("bob"), h.account("carol")
	group, err := a1.CreateGroup(h.ctx, "g", []string{"bob@" + a1.host, "carol@" + a1.host})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{b1, c1} {
		h.chatOn(c, group)
	}
	h.eventually("admins known", func() error {
		for _, c := range []*Client{b1, c1} {
			if got := c.Admins(h.ctx, group); !slices.Equal(got, accountsOfClients(a1)) {
				return fmt.Errorf("%s: admins %v", c.Me().Address, got)
			}
		}
		return nil
	})
	carol := watchPolicy(t, c1)

	// A misbehaving client of bob removes alice, then renames the group
	// and makes itself the admin.
	conv, err := b1.st.Conversation(h.ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	err = b1.withConn(h.ctx, func(conn *wireConn) error {
		b1.mu.Lock()
		defer b1.mu.Unlock()
		return b1.commitChange(h.ctx, conn, conv.Group, nil, func(m *memberID) bool { return m.Account == a1.Me().AccountID })
	})
	if err != nil {
		t.Fatal(err)
	}
	bob := []identity.AccountID{b1.Me().AccountID}
	if err := b1.queueControlNote(h.ctx, group, groupInfoContent("taken", bob), ""); err != nil {
		t.Fatal(err)
	}
	h.eventually("alice back", func() error {
		for _, c := range []*Client{a1, b1, c1} {
			conv, err := c.activeConversation(h.ctx, group)
			if err != nil {
				return fmt.Errorf("%s: %v", c.Me().Address, err)
			}
			if !slices.Contains(conv.Members, a1.Me().AccountID) {
				return fmt.Errorf("%s: members %v", c.Me().Address, conv.Members)
			}
		}
		return nil
	})
	h.send(a1, group, "back")
	h.converged(group, []string{"back"}, c1)
	name, _, err := convState(h, c1, group)
	if err != nil {
		t.Fatal(err)
	}
	if name != "g" {
		t.Fatalf("carol took the non-admin's rename: %q", name)
	}
	if got := c1.Admins(h.ctx, group); !slices.Equal(got, accountsOfClients(a1)) {
		t.Fatalf("carol's admins: %v", got)
	}
	if c1.isAdmin(h.ctx, conv, c1.Me().AccountID) {
		t.Fatal("carol counts herself an admin with alice back")
	}
	var removal, rename bool
	for _, ev := range carol.events() {
		removal = removal || ev.Sender == b1.Me().AccountID && ev.Chat == group && strings.Contains(ev.Text, "may not remove")
		rename = rename || ev.Sender == b1.Me().AccountID && ev.Chat == group && strings.Contains(ev.Text, "rename")
	}
	if !removal || !rename {
		t.Fatalf("carol's reports (removal %v, rename %v): %+v", removal, rename, carol.events())
	}
	if got := c1.oustedIn(h.ctx, nil, group); len(got) != 0 {
		t.Fatalf("alice still counted ousted: %v", got)
	}
}

// Effective admins: the recorded ones still in the group, else everyone.
func TestEffectiveAdmins(t *testing.T) {
	a, b, c := identity.AccountID("a"), identity.AccountID("b"), identity.AccountID("c")
	ids := func(v ...identity.AccountID) []identity.AccountID { return v }
	for _, tc := range []struct {
		recorded, members, ousted, want []identity.AccountID
	}{
		{ids(a), ids(a, b), nil, ids(a)},
		{ids(a, c), ids(b, c), nil, ids(c)},
		{ids(a), ids(b, c), nil, ids(b, c)},
		{ids(a), ids(b, c), ids(a), ids(a)},
		{nil, ids(b, c), nil, nil},
		{ids(a), nil, nil, nil},
	} {
		if got := effectiveAdmins(tc.recorded, tc.members, tc.ousted); !slices.Equal(got, tc.want) {
			t.Errorf("effectiveAdmins(%v, %v, %v) = %v, want %v", tc.recorded, tc.members, tc.ousted, got, tc.want)
		}
	}
}
