package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	srvstore "github.com/parley-im/parley/server/store"
)

// A device that restarts between a member's leave message and the commit
// removing it still counts the removal as the member's own leave: when the
// last admin leaves, it reports no breach, does not add the admin back
// and ends with the same members as the others. Whoever commits the
// removal, the restarted device or another member, the outcome is the same.
func TestLeaveSurvivesRestart(t *testing.T) {
	for _, restartedFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("restartedCommits=%v", restartedFirst), func(t *testing.T) {
			testLeaveSurvivesRestart(t, restartedFirst)
		})
	}
}

func testLeaveSurvivesRestart(t *testing.T, restartedFirst bool) {
	h := newHarness(t)
	alice := h.account("alice")
	bob, _ := h.offline("bob")
	carol, carolDir := h.offline("carol")
	group, err := alice.CreateGroup(h.ctx, "g", []string{"bob@" + alice.host, "carol@" + alice.host})
	if err != nil {
		t.Fatal(err)
	}
	h.flushed(alice)
	h.eventually("admins known", func() error {
		for _, c := range []*Client{bob, carol} {
			h.sync(c)
			if got := c.Admins(h.ctx, group); !slices.Equal(got, accountsOfClients(alice)) {
				return fmt.Errorf("%s: admins %v", c.Me().Address, got)
			}
		}
		return nil
	})

	if err := alice.Leave(h.ctx, group); err != nil {
		t.Fatal(err)
	}
	// Carol's device takes the leave message, runs none of the tasks it
	// queued (no removal commit yet), and restarts.
	err = carol.withConn(h.ctx, func(conn *wireConn) error {
		carol.mu.Lock()
		defer carol.mu.Unlock()
		return carol.fetchAll(h.ctx, conn)
	})
	if err != nil {
		t.Fatal(err)
	}
	aliceID := alice.Me().AccountID
	if ok, err := isMember(h.ctx, carol, group, aliceID); err != nil || !ok {
		t.Fatalf("carol processed alice's removal before the restart (member %v, %v)", ok, err)
	}
	if got := carol.leavingIn(h.ctx, nil, group); !slices.Equal(got, []identity.AccountID{aliceID}) {
		t.Fatalf("carol's stored leaving members: %v", got)
	}
	carol = h.reopen(carol, carolDir)
	logs := map[string]*policyLog{"bob": watchPolicy(t, bob), "carol": watchPolicy(t, carol)}

	if restartedFirst {
		h.sync(carol) // commits the removal queued before the restart
		h.sync(bob)
	} else {
		h.sync(bob) // commits the removal
		h.sync(carol)
		h.sync(bob)
	}
	want := []identity.AccountID{bob.Me().AccountID, carol.Me().AccountID}
	slices.Sort(want)
	for _, c := range []*Client{bob, carol} {
		_, members, err := convState(h, c, group)
		if err != nil {
			t.Fatal(err)
		}
		members = slices.Sorted(slices.Values(members))
		if !slices.Equal(members, want) {
			t.Fatalf("%s: members %v, want %v", c.Me().Address, members, want)
		}
		if got := c.oustedIn(h.ctx, nil, group); len(got) != 0 {
			t.Fatalf("%s counts alice ousted: %v", c.Me().Address, got)
		}
		if got := c.leavingIn(h.ctx, nil, group); len(got) != 0 {
			t.Fatalf("%s still holds leaving members: %v", c.Me().Address, got)
		}
	}
	noPolicy(t, logs)
	// Nobody added alice back: her device stays out of the chat.
	h.send(bob, group, "after")
	h.sync(bob)
	h.sync(carol)
	h.converged(group, []string{"after"}, bob, carol)
	if conv, err := alice.st.Conversation(h.ctx, group); err != nil || !conv.Left {
		t.Fatalf("alice was added back (left %v, %v)", conv != nil && conv.Left, err)
	}
	if slices.Contains(h.texts(alice, group), "after") {
		t.Fatal("alice reads the group after leaving")
	}
}

// noKeyPackages is the server's store answering claims for chosen accounts
// with no key package, as for an account whose devices uploaded none.
type noKeyPackages struct {
	srvstore.Store
	mu   sync.Mutex
	none map[identity.AccountID]bool
}

func (s *noKeyPackages) ClaimKeyPackages(ctx context.Context, account identity.AccountID) ([]srvstore.ClaimedKeyPackage, error) {
	s.mu.Lock()
	none := s.none[account]
	s.mu.Unlock()
	if none {
		return nil, nil
	}
	return s.Store.ClaimKeyPackages(ctx, account)
}

func (s *noKeyPackages) set(account identity.AccountID, none bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.none[account] = none
}

// A re-add that fails holds up no other task: one of an account the server
// does not know is dropped, one of an account without key packages waits
// and is tried again later, and the removal queued after them happens.
func TestFailingReaddDoesNotBlockTasks(t *testing.T) {
	kp := &noKeyPackages{none: make(map[identity.AccountID]bool)}
	h := newHarness(t, testserver.WithConfig(func(cfg *server.Config) {
		kp.Store = cfg.Store
		cfg.Store = kp
	}))
	alice, _ := h.offline("alice")
	bob, carol, dave := h.account("bob"), h.account("carol"), h.account("dave")
	group, err := alice.CreateGroup(h.ctx, "g", []string{"bob@" + alice.host, "carol@" + alice.host})
	if err != nil {
		t.Fatal(err)
	}
	h.sync(alice)
	h.chatOn(bob, group)
	h.chatOn(carol, group)
	conv, err := alice.st.Conversation(h.ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ghost := identity.AccountIDFromKey(pub) // no such account
	daveID, carolID := dave.Me().AccountID, carol.Me().AccountID
	kp.set(daveID, true)
	alice.mu.Lock()
	alice.tasks.readdAccount(conv.Group, ghost)
	alice.tasks.readdAccount(conv.Group, daveID)
	alice.tasks.removeAccount(conv.Group, carolID)
	alice.mu.Unlock()

	h.sync(alice)
	if ok, err := isMember(h.ctx, alice, group, carolID); err != nil || ok {
		t.Fatalf("the removal queued after the failing re-adds did not happen (member %v, %v)", ok, err)
	}
	h.eventually("bob sees carol removed", func() error {
		if ok, err := isMember(h.ctx, bob, group, carolID); err != nil || ok {
			return fmt.Errorf("member %v, %v", ok, err)
		}
		return nil
	})
	alice.mu.Lock()
	queued := alice.tasks.readds[conv.Group]
	_, ghostQueued := queued[ghost]
	_, daveQueued := queued[daveID]
	alice.mu.Unlock()
	if ghostQueued || !daveQueued {
		t.Fatalf("queued re-adds: ghost %v (want dropped), dave %v (want kept)", ghostQueued, daveQueued)
	}

	// Dave's devices have key packages again: not before the retry time,
	// then dave is added.
	kp.set(daveID, false)
	h.sync(alice)
	if ok, err := isMember(h.ctx, alice, group, daveID); err != nil || ok {
		t.Fatalf("the re-add was tried again before its retry time (member %v, %v)", ok, err)
	}
	h.skew.Add(int64(readdRetry))
	h.sync(alice)
	if ok, err := isMember(h.ctx, alice, group, daveID); err != nil || !ok {
		t.Fatalf("the waiting re-add was not tried again (member %v, %v)", ok, err)
	}
	h.chatOn(dave, group)
	alice.mu.Lock()
	left := len(alice.tasks.readds)
	alice.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d groups still queued for re-adds", left)
	}
}
