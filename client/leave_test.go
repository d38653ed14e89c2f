package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	srvstore "github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
)

// refuseSends is the server's store refusing the next sends to one group
// as a full mailbox would (QUEUE_FULL, an answer rather than a broken
// connection).
type refuseSends struct {
	srvstore.Store
	mu      sync.Mutex
	group   srvstore.GroupID
	left    int
	refused int
}

func (s *refuseSends) AppendMessage(ctx context.Context, m srvstore.Message) (uint64, error) {
	s.mu.Lock()
	if s.left > 0 && m.Group == s.group {
		s.left--
		s.refused++
		s.mu.Unlock()
		return 0, srvstore.ErrQueueFull
	}
	s.mu.Unlock()
	return s.Store.AppendMessage(ctx, m)
}

// refuse makes the server refuse the next n sends to g.
func (s *refuseSends) refuse(g store.GroupID, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.group, s.left, s.refused = srvstore.GroupID(g), n, 0
}

func (s *refuseSends) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// leaveEnv is alice and bob in a group whose sends the server may refuse.
func leaveEnv(t *testing.T) (h *harness, refuse *refuseSends, alice, bob *Client, chat ChatID, g store.GroupID) {
	refuse = &refuseSends{}
	h = newHarness(t, testserver.WithConfig(func(cfg *server.Config) {
		refuse.Store = cfg.Store
		cfg.Store = refuse
	}))
	alice, bob = h.account("alice"), h.account("bob")
	chat, err := alice.CreateGroup(h.ctx, "leaving", []string{"bob@" + alice.host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(bob, chat)
	h.eventually("alice's outbox drains", func() error {
		if n, err := alice.queued(h.ctx); err != nil || n != 0 {
			return fmt.Errorf("%d queued: %v", n, err)
		}
		return nil
	})
	conv, err := alice.st.Conversation(h.ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	return h, refuse, alice, bob, chat, conv.Group
}

// isMember reports whether c lists acct in chat.
func isMember(ctx context.Context, c *Client, chat ChatID, acct identity.AccountID) (bool, error) {
	conv, err := c.st.Conversation(ctx, chat)
	if err != nil {
		return false, err
	}
	return slices.Contains(conv.Members, acct), nil
}

// A leave message the server refuses once is sent again by Leave, which
// returns once it is delivered: the other members see the member gone.
func TestLeaveRefusedOnceIsDelivered(t *testing.T) {
	h, refuse, alice, bob, chat, g := leaveEnv(t)
	refuse.refuse(g, 1)
	if err := alice.Leave(h.ctx, chat); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if n := refuse.count(); n != 1 {
		t.Fatalf("the server refused %d sends, want 1", n)
	}
	conv, err := alice.st.Conversation(h.ctx, chat)
	if err != nil || !conv.Left {
		t.Fatalf("alice's chat after leaving: %+v, %v", conv, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		in, err := isMember(h.ctx, bob, chat, alice.account())
		if err != nil {
			t.Fatal(err)
		}
		if !in {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob never saw alice leave: the refused leave message was lost")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A leave message the server keeps refusing makes Leave fail: alice keeps
// the group (she still sends to it), and her leave is withdrawn rather
// than sent later behind her back.
func TestLeaveRefusedReportsFailure(t *testing.T) {
	h, refuse, alice, bob, chat, g := leaveEnv(t)
	refuse.refuse(g, 1000)
	err := alice.Leave(h.ctx, chat)
	if err == nil {
		t.Fatal("leave succeeded although the server refused every leave message")
	}
	if wireCode(err) != wire.ErrorCode_QUEUE_FULL {
		t.Fatalf("leave failed with %v, want the server's refusal", err)
	}
	if n := refuse.count(); n < 2 {
		t.Fatalf("the leave message was sent %d times", n)
	}
	refuse.refuse(g, 0)
	conv, err := alice.activeConversation(h.ctx, chat)
	if err != nil || conv.Left {
		t.Fatalf("alice's chat after a failed leave: %+v, %v", conv, err)
	}
	if n, err := alice.queued(h.ctx); err != nil || n != 0 {
		t.Fatalf("%d sends still queued after a failed leave: %v", n, err)
	}
	h.send(alice, chat, "still here")
	h.converged(chat, []string{"still here"}, alice, bob)
	in, err := isMember(h.ctx, bob, chat, alice.account())
	if err != nil || !in {
		t.Fatalf("bob lists alice as a member: %v, %v", in, err)
	}
}
