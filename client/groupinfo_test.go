package client

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/blob"
)

// withArchive mounts the archive storage as `parley serve` mounts it.
func withArchive(t *testing.T) testserver.Option {
	dir := t.TempDir()
	return testserver.WithConfig(func(cfg *server.Config) {
		h, err := blob.NewArchiveHandler(dir, &blob.DeviceAuthorizer{Store: cfg.Store})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Routes = map[string]http.Handler{"/v1/archive/": h}
	})
}

// policyLog collects the EventPolicy events of a client.
type policyLog struct {
	mu  sync.Mutex
	evs []Event
}

func watchPolicy(t *testing.T, c *Client) *policyLog {
	evs, cancel := c.Subscribe(4096)
	t.Cleanup(cancel)
	l := &policyLog{}
	go func() {
		for ev := range evs {
			if ev.Kind == EventPolicy {
				l.mu.Lock()
				l.evs = append(l.evs, ev)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *policyLog) events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// A device linked to a member who is not an admin restores the archive
// before it joins the group, and the archive lags behind the group: bob
// (the admin) renamed it after alice's device last uploaded. The group
// info alice's device sends with the add carries the new name; the new
// device learns it, as a new member does, instead of reporting a
// non-admin rename. In the batch it catches up with, bob makes carol an
// admin and carol renames the group: legitimate, though the store knows
// carol as an admin only once the batch is stored. alice's own rename
// (she is no admin) is still reported, once.
func TestGroupInfoOnRestoredLinkedDevice(t *testing.T) {
	h := newHarness(t, withArchive(t))
	ctx := h.ctx
	// alice's first device is driven by hand (no Run), so it uploads its
	// history only when told to: the archive can lag behind it.
	o := h.opts()
	o.Username = "alice"
	a1, err := Init(ctx, t.TempDir(), h.srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a1.Close() })
	if !a1.HasArchive(ctx) {
		t.Fatal("alice has no archive")
	}
	b1, c1 := h.account("bob"), h.account("carol")
	host := b1.host
	alice, bob, carol := a1.Me().AccountID, b1.Me().AccountID, c1.Me().AccountID
	group, err := b1.CreateGroup(ctx, "team", []string{"alice@" + host, "carol@" + host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(c1, group)
	nameOn := func(c *Client, want string) func() error {
		return func() error {
			conv, err := c.st.Conversation(ctx, group)
			if err != nil {
				return err
			}
			if conv.Name != want {
				return fmt.Errorf("%s shows %q, want %q", c.Me().Address, conv.Name, want)
			}
			return nil
		}
	}
	// alice's device joins and archives the group as "team".
	h.eventually("alice joins", func() error {
		if err := a1.Sync(ctx); err != nil {
			return err
		}
		if err := nameOn(a1, "team")(); err != nil {
			return err
		}
		if !slices.Equal(a1.Admins(ctx, group), []identity.AccountID{bob}) {
			return fmt.Errorf("alice knows admins %v", a1.Admins(ctx, group))
		}
		return nil
	})

	if _, err := a1.ArchiveHistory(ctx); err != nil {
		t.Fatal(err)
	}
	// bob renames; alice's device learns it only while approving the link
	// (after its upload), and adds the new device with the new name.
	if err := b1.Rename(ctx, group, "renamed"); err != nil {
		t.Fatal(err)
	}
	h.eventually("carol sees the rename", nameOn(c1, "renamed"))
	pl, err := NewLink(ctx, t.TempDir(), h.srv.URL, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseLinkCode(pl.Request().Code())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- a1.ApproveLink(ctx, req) }()
	a2, err := pl.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a2.Close() })
	// The new device restores the archive before it joins: the group as
	// "team".
	if _, err := a2.RestoreHistory(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := nameOn(a2, "team")(); err != nil {
		t.Fatalf("restored: %v", err)
	}
	h.eventually("alice's device adds the new one", func() error {
		if err := a1.Sync(ctx); err != nil {
			return err
		}
		if !a1.groupHolds(h.ctx, group, a2.Me().DeviceID) {
			return fmt.Errorf("not added yet")
		}
		return nil
	})

	// While the new device is not running: carol becomes an admin and
	// renames the group; alice, no admin, renames it too.
	if err := b1.SetAdmins(ctx, group, []string{"bob@" + host, "carol@" + host}); err != nil {
		t.Fatal(err)
	}
	h.eventually("carol is an admin", func() error {
		if !slices.Contains(c1.Admins(ctx, group), carol) {
			return fmt.Errorf("carol knows admins %v", c1.Admins(ctx, group))
		}
		return nil
	})
	if err := c1.Rename(ctx, group, "carol's"); err != nil {
		t.Fatal(err)
	}
	h.eventually("bob sees carol's rename", nameOn(b1, "carol's"))
	bobPolicy := watchPolicy(t, b1)
	if err := a1.queueControl(ctx, group, groupInfoContent("alice's", []identity.AccountID{alice})); err != nil {
		t.Fatal(err)
	}
	h.eventually("alice's rename is sent", func() error {
		if err := a1.Sync(ctx); err != nil {
			return err
		}
		if n, err := a1.queued(ctx); err != nil || n != 0 {
			return fmt.Errorf("%d queued (%v)", n, err)
		}
		return nil
	})
	h.eventually("bob reports alice's rename", func() error {
		if len(bobPolicy.events()) == 0 {
			return fmt.Errorf("no report yet")
		}
		return nil
	})

	h.send(c1, group, "last")

	// The new device catches up with all of it.
	policy := watchPolicy(t, a2)
	h.run(a2)
	h.eventually("the new device catches up", func() error {
		ms, err := chatMessages(ctx, a2, group)
		if err != nil {
			return err
		}
		if !slices.Contains(bodies(ms), "last") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	evs := policy.events()
	for _, ev := range evs {
		t.Logf("the new device reports %s: %s", ev.Sender, ev.Text)
	}
	if len(evs) != 1 || evs[0].Sender != alice {
		t.Errorf("the new device reports %d rule breaks, want alice's rename alone", len(evs))
	}
	if err := nameOn(a2, "carol's")(); err != nil {
		t.Error(err)
	}
	if got := a2.Admins(ctx, group); !slices.Equal(got, []identity.AccountID{bob, carol}) {
		t.Errorf("the new device knows admins %v, want bob and carol", got)
	}
	for _, ev := range bobPolicy.events() {
		if ev.Sender != alice {
			t.Fatalf("bob reports %s: %s", ev.Sender, ev.Text)
		}
	}
}
