package client_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/wire"
)

// TestRecoverRejoinsConversations: alice chats 1:1 with bob and in a group
// with bob and carol, archives, and loses her only device. Recovered from
// the words on a fresh profile, she lists both chats with their names and
// members and their history in order, before anyone reacted; her rejoin
// requests make bob and carol add her new device and drop the lost one in
// the same commit; then messages flow both ways in both chats. The server
// holds none of the texts.
func TestRecoverRejoinsConversations(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice, bob, carol := e.account("alice"), e.account("bob"), e.account("carol")
	direct, err := alice.StartDirect(ctx, "bob@127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateGroup(ctx, "the three of us", []string{"bob@127.0.0.1", "carol@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var canaries []string
	say := func(c *client.Client, chat client.ChatID, text string) {
		t.Helper()
		text = fmt.Sprintf("rejoin-canary %s", text)
		canaries = append(canaries, text)
		if _, err := c.Send(ctx, chat, text); err != nil {
			t.Fatal(err)
		}
	}
	// hasAll waits until c shows want (in order) at the end of chat.
	hasAll := func(what string, c *client.Client, chat client.ChatID, want []string) {
		t.Helper()
		eventually(t, what, func() error {
			got, err := texts(ctx, c, chat)
			if err != nil {
				return err
			}
			if len(got) < len(want) || strings.Join(got[len(got)-len(want):], "\n") != strings.Join(want, "\n") {
				return fmt.Errorf("shows %q, want %q at the end", got, want)
			}
			return nil
		})
	}
	for i := range 3 {
		say(alice, direct, fmt.Sprintf("a->b %d", i))
		say(alice, group, fmt.Sprintf("a->g %d", i))
	}
	hasAll("bob has alice's 1:1 messages", bob, direct, []string{"rejoin-canary a->b 0", "rejoin-canary a->b 1", "rejoin-canary a->b 2"})
	say(bob, direct, "b->a")
	hasAll("carol has the group", carol, group, []string{"rejoin-canary a->g 0", "rejoin-canary a->g 1", "rejoin-canary a->g 2"})
	say(carol, group, "c->g")
	hasAll("alice has bob's reply", alice, direct, []string{"rejoin-canary b->a"})
	hasAll("alice has carol's message", alice, group, []string{"rejoin-canary c->g"})
	wantDirect, err := texts(ctx, alice, direct)
	if err != nil {
		t.Fatal(err)
	}
	wantGroup, err := texts(ctx, alice, group)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice archives", func() error {
		_, err := alice.ArchiveHistory(ctx)
		return err
	})
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lost := alice.Me().DeviceID
	alice.Close() // every device of the account is gone

	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The username comes back (from the server's directory, whose claim
	// the account key signed), and with it the address.
	if me := rec.Me(); me.Username != "alice" || me.Address != "alice@127.0.0.1" {
		t.Fatalf("recovered identity: username %q, address %q; want alice", me.Username, me.Address)
	}
	// Straight from the archive, before anyone reacted: the chats with
	// their names and members, the history in order.
	chats, _, err := rec.Chats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[client.ChatID]*store.Conversation{}
	for _, c := range chats {
		listed[c.ID] = c
	}
	if c := listed[group]; c == nil || c.Name != "the three of us" || c.Kind != store.ChatGroup || len(c.Members) != 3 || c.Left {
		t.Fatalf("restored group %+v", c)
	}
	if c := listed[direct]; c == nil || c.Kind != store.ChatDirect || !slices.Contains(c.Members, bob.Me().AccountID) || c.Left {
		t.Fatalf("restored 1:1 chat %+v", c)
	}
	for chat, want := range map[client.ChatID][]string{direct: wantDirect, group: wantGroup} {
		got, err := texts(ctx, rec, chat)
		if err != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("restored history of %s: %q (%v), want %q", chat, got, err, want)
		}
	}
	if admins := rec.Admins(ctx, group); !slices.Equal(admins, []identity.AccountID{rec.Me().AccountID}) {
		t.Fatalf("restored admins %v", admins)
	}
	if _, err := rec.Send(ctx, group, "too early"); !errors.Is(err, client.ErrNotRejoined) {
		t.Fatalf("send before rejoining: %v", err)
	}
	devs, err := rec.Devices(ctx)
	if err != nil || len(devs) != 1 || !devs[0].Current {
		t.Fatalf("the recovered account lists devices %+v (%v): want only this one, the lost ones revoked", devs, err)
	}
	e.run(rec)

	// Bob and carol add the new device and remove the lost one.
	for _, chat := range []client.ChatID{direct, group} {
		for _, member := range []*client.Client{bob, carol} {
			if member == carol && chat == direct {
				continue
			}
			eventually(t, "the recovered device is back in "+string(chat), func() error {
				got, err := member.ChatDevices(ctx, chat)
				if err != nil {
					return err
				}
				if d := got[rec.Me().AccountID]; len(d) != 1 || d[0] != rec.Me().DeviceID {
					return fmt.Errorf("alice's devices in the group: %v (lost one %v)", d, lost)
				}
				return nil
			})
		}
		eventually(t, "the recovered device joins "+string(chat), func() error {
			got, err := rec.ChatDevices(ctx, chat)
			if err != nil || len(got[rec.Me().AccountID]) != 1 {
				return fmt.Errorf("%v %v", got, err)
			}
			return nil
		})
	}
	say(rec, direct, "recovered a->b")
	say(rec, group, "recovered a->g")
	hasAll("bob gets the recovered 1:1 message", bob, direct, []string{"rejoin-canary recovered a->b"})
	hasAll("bob gets the recovered group message", bob, group, []string{"rejoin-canary recovered a->g"})
	hasAll("carol gets the recovered group message", carol, group, []string{"rejoin-canary recovered a->g"})
	say(bob, direct, "b->recovered")
	say(carol, group, "c->recovered")
	hasAll("the recovered device gets bob's reply", rec, direct, []string{"rejoin-canary recovered a->b", "rejoin-canary b->recovered"})
	hasAll("the recovered device gets carol's reply", rec, group, []string{"rejoin-canary recovered a->g", "rejoin-canary c->recovered"})
	// The whole 1:1 history, old and new, in order.
	got, err := texts(ctx, rec, direct)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(wantDirect), "rejoin-canary recovered a->b", "rejoin-canary b->recovered")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("1:1 history after the rejoin %q, want %q", got, want)
	}

	// The same words again, on another fresh profile, while the first
	// restored profile still runs (the words were used on a device that is
	// not lost after all, or by someone else). The new profile gets its own
	// device; the first restored device is revoked like any lost one and
	// is told so, and bob and carol swap it for the new one.
	if rec.Me().DeviceID == lost {
		t.Fatal("the restored device reuses the lost device's id")
	}
	rec2, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec2.Me().DeviceID == rec.Me().DeviceID {
		t.Fatalf("both restored profiles have device %s", rec2.Me().DeviceID)
	}
	e.run(rec2)
	eventually(t, "the first restored device learns it was revoked", func() error {
		err := rec.Sync(ctx)
		var we *wire.Error
		if !errors.As(err, &we) || we.GetCode() != wire.ErrorCode_DEVICE_REVOKED {
			return fmt.Errorf("sync on the first restored device: %v, want DEVICE_REVOKED", err)
		}
		return nil
	})
	if got, err := texts(ctx, rec2, direct); err != nil || len(got) < len(wantDirect) {
		t.Fatalf("second recovery restored %q (%v)", got, err)
	}
	for _, chat := range []client.ChatID{direct, group} {
		for _, member := range []*client.Client{bob, carol} {
			if member == carol && chat == direct {
				continue
			}
			eventually(t, "the second restored device replaces the first in "+string(chat), func() error {
				got, err := member.ChatDevices(ctx, chat)
				if err != nil {
					return err
				}
				if d := got[rec2.Me().AccountID]; len(d) != 1 || d[0] != rec2.Me().DeviceID {
					return fmt.Errorf("alice's devices in the group: %v", d)
				}
				return nil
			})
		}
	}
	if devs, err := rec2.Devices(ctx); err != nil || len(devs) != 1 || devs[0].ID != rec2.Me().DeviceID {
		t.Fatalf("after the second recovery the account lists %+v (%v)", devs, err)
	}
	eventually(t, "the second restored device joins", func() error {
		for _, chat := range []client.ChatID{direct, group} {
			got, err := rec2.ChatDevices(ctx, chat)
			if err != nil || len(got[rec2.Me().AccountID]) != 1 {
				return fmt.Errorf("%s: %v %v", chat, got, err)
			}
		}
		return nil
	})
	say(rec2, direct, "second recovery a->b")
	hasAll("bob reads the second restored device in the 1:1 chat", bob, direct, []string{"rejoin-canary second recovery a->b"})
	say(bob, direct, "b->second")
	hasAll("the second restored device reads bob in the 1:1 chat", rec2, direct, []string{"rejoin-canary second recovery a->b", "rejoin-canary b->second"})
	say(rec2, group, "second recovery a->g")
	hasAll("bob reads the second recovered device", bob, group, []string{"rejoin-canary second recovery a->g"})
	say(carol, group, "c->second")
	hasAll("the second recovered device reads carol", rec2, group, []string{"rejoin-canary second recovery a->g", "rejoin-canary c->second"})
	// The group's name is as private as the messages.
	checkCanary(t, e.archDir, append(canaries, "the three of us"))
	checkCanary(t, e.srv.Dir, append(canaries, "the three of us"))
}

// TestRejoinRequestsResent: a member who stays offline longer than a
// request's window would drop it, so a recovered device asks again every
// 12 hours while a conversation still waits, and gives up after 30 days.
func TestRejoinRequestsResent(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice, bob, carol := e.account("alice"), e.account("bob"), e.account("carol")
	withBob, err := alice.StartDirect(ctx, "bob@127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	withCarol, err := alice.StartDirect(ctx, "carol@127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, chat := range []client.ChatID{withBob, withCarol} {
		if _, err := alice.Send(ctx, chat, "resend-canary hello"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "alice archives", func() error {
		if err := alice.Sync(ctx); err != nil {
			return err
		}
		_, err := alice.ArchiveHistory(ctx)
		return err
	})
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice.Close()
	carol.Close() // carol stays offline: her chat waits

	var skew atomic.Int64
	o := e.opts()
	o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.run(rec)
	eventually(t, "bob adds the recovered device", func() error {
		got, err := bob.ChatDevices(ctx, withBob)
		if err != nil || len(got[rec.Me().AccountID]) != 1 || got[rec.Me().AccountID][0] != rec.Me().DeviceID {
			return fmt.Errorf("%v %v", got, err)
		}
		return nil
	})
	sent := func() string {
		v, _, err := rec.Store().Setting(ctx, "rejoin.sent")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := sent()
	if first == "" {
		t.Fatal("no pending rejoin recorded while carol's chat waits")
	}
	if err := rec.Sync(ctx); err != nil || sent() != first {
		t.Fatalf("requests sent again before they were due (%v)", err)
	}
	skew.Store(int64(13 * time.Hour))
	eventually(t, "the requests are sent again", func() error {
		if err := rec.Sync(ctx); err != nil {
			return err
		}
		if sent() == first {
			return errors.New("not yet")
		}
		return nil
	})
	if _, err := rec.Send(ctx, withCarol, "still waiting"); !errors.Is(err, client.ErrNotRejoined) {
		t.Fatalf("send to the chat of an offline member: %v", err)
	}
	skew.Store(int64(31 * 24 * time.Hour))
	eventually(t, "the device gives up asking", func() error {
		if err := rec.Sync(ctx); err != nil {
			return err
		}
		if sent() != "" {
			return errors.New("still asking")
		}
		return nil
	})
	// A restored chat nobody answers for can still be left.
	if err := rec.Leave(ctx, withCarol); err != nil {
		t.Fatalf("leave a chat not rejoined: %v", err)
	}
	if c, err := rec.Store().Conversation(ctx, withCarol); err != nil || !c.Left {
		t.Fatalf("after leaving: %+v %v", c, err)
	}
}
