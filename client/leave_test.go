package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
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

// holdSend is the server's store running a hook after a send to one group
// is stored, before the server answers it.
type holdSend struct {
	srvstore.Store
	mu    sync.Mutex
	group srvstore.GroupID
	after func()
}

func (s *holdSend) AppendMessage(ctx context.Context, m srvstore.Message) (uint64, error) {
	seq, err := s.Store.AppendMessage(ctx, m)
	s.mu.Lock()
	f := s.after
	if m.Group != s.group || err != nil {
		f = nil
	}
	if f != nil {
		s.after = nil // once
	}
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return seq, err
}

// holdProxy forwards TCP connections to a server. cut closes every
// connection open through it; while held, new connections wait before
// they are forwarded.
type holdProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	conns   []net.Conn
	release chan struct{} // nil: not held
}

func newHoldProxy(t *testing.T, target string) *holdProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.unhold(); p.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			wait := p.release
			p.mu.Unlock()
			go func() {
				if wait != nil {
					<-wait
				}
				out, err := net.Dial("tcp", target)
				if err != nil {
					in.Close()
					return
				}
				p.mu.Lock()
				p.conns = append(p.conns, in, out)
				p.mu.Unlock()
				go func() { _, _ = io.Copy(out, in); out.Close() }()
				go func() { _, _ = io.Copy(in, out); in.Close() }()
			}()
		}
	}()
	return p
}

func (p *holdProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *holdProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.release == nil {
		p.release = make(chan struct{})
	}
}

func (p *holdProxy) unhold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.release != nil {
		close(p.release)
		p.release = nil
	}
}

func (p *holdProxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// A leave whose connection breaks after the server stored the leave
// message, before its answer, while the other members commit the removal
// and the leaver learns of it before Leave's retry: the leave took effect,
// so Leave succeeds although the retry finds the device no longer a
// member, and the chat ends as after any leave, left with nothing queued.
func TestLeaveCutRemovedBeforeRetry(t *testing.T) {
	hold := &holdSend{}
	h := newHarness(t, testserver.WithConfig(func(cfg *server.Config) {
		hold.Store = cfg.Store
		cfg.Store = hold
	}))
	proxy := newHoldProxy(t, strings.TrimPrefix(h.srv.HTTP, "http://"))
	o := h.opts()
	o.Username = "alice"
	alice, err := Init(h.ctx, t.TempDir(), proxy.url(), o)
	if err != nil {
		t.Fatal(err)
	}
	h.run(alice)
	bob, carol := h.account("bob"), h.account("carol")
	chat, err := alice.CreateGroup(h.ctx, "leaving", []string{"bob@" + bob.host, "carol@" + carol.host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(bob, chat)
	h.chatOn(carol, chat)
	h.flushed(alice)
	conv, err := alice.st.Conversation(h.ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	aliceID := alice.account()
	gone := func() error {
		for _, c := range []*Client{bob, carol} {
			if in, err := isMember(h.ctx, c, chat, aliceID); err != nil || in {
				return fmt.Errorf("%s lists alice: %v, %v", c.Me().Address, in, err)
			}
		}
		return nil
	}
	// The hook's outcome; sent before alice's connections go through
	// again, so before Leave can return.
	caughtUp := make(chan error, 1)
	hold.mu.Lock()
	hold.group = srvstore.GroupID(conv.Group)
	hold.after = func() {
		// The leave message is stored: bob and carol process it and
		// commit alice's removal. Then her connection breaks before the
		// answer, and her new connections wait while she learns (on a
		// connection of her own) that she was removed.
		h.eventually("bob and carol remove alice", gone)
		proxy.hold()
		proxy.cut()
		defer proxy.unhold()
		caughtUp <- func() error {
			conn, _, err := dialServer(h.ctx, h.srv.URL)
			if err != nil {
				return err
			}
			defer conn.CloseNow()
			if err := alice.authenticate(h.ctx, conn); err != nil {
				return err
			}
			alice.mu.Lock()
			defer alice.mu.Unlock()
			if err := alice.fetchAll(h.ctx, conn); err != nil {
				return err
			}
			if err := alice.checkMemberships(h.ctx, conn); err != nil {
				return err
			}
			if cur, err := alice.st.Conversation(h.ctx, chat); err != nil || !cur.Left {
				return fmt.Errorf("alice did not learn of her removal: %+v, %v", cur, err)
			}
			return nil
		}()
	}
	hold.mu.Unlock()

	if err := alice.Leave(h.ctx, chat); err != nil {
		t.Fatalf("leave whose removal was committed before its retry: %v", err)
	}
	select {
	case err := <-caughtUp:
		if err != nil {
			t.Fatalf("alice catching up before the retry: %v", err)
		}
	default:
		t.Fatal("the leave message was not held")
	}
	left, err := alice.st.Conversation(h.ctx, chat)
	if err != nil || !left.Left || slices.Contains(left.Members, aliceID) {
		t.Fatalf("alice's chat after leaving: %+v, %v", left, err)
	}
	if n, err := alice.queued(h.ctx); err != nil || n != 0 {
		t.Fatalf("%d sends still queued after the leave: %v", n, err)
	}
	if err := gone(); err != nil {
		t.Fatal(err)
	}
	h.send(bob, chat, "after")
	h.converged(chat, []string{"after"}, bob, carol)
	if slices.Contains(h.texts(alice, chat), "after") {
		t.Fatal("alice reads the chat after leaving")
	}
}

// A member removed unseen (offline) that then leaves: the server refuses
// the leave message as from a non-member, Leave learns it was removed and
// reports success, with the chat left and nothing queued. Only the admin
// and the remaining member stay in the chat.
func TestLeaveAfterUnseenRemoval(t *testing.T) {
	h := newHarness(t)
	alice := h.account("alice")
	carol, dir := h.offline("carol")
	chat, err := alice.CreateGroup(h.ctx, "removed", []string{"carol@" + alice.host})
	if err != nil {
		t.Fatal(err)
	}
	h.flushed(alice)
	h.sync(carol)
	carol = h.reopen(carol, dir)
	if err := alice.RemoveMembers(h.ctx, chat, []string{"carol@" + alice.host}); err != nil {
		t.Fatal(err)
	}
	h.flushed(alice)

	if err := carol.Leave(h.ctx, chat); err != nil {
		t.Fatalf("leave after an unseen removal: %v", err)
	}
	conv, err := carol.st.Conversation(h.ctx, chat)
	if err != nil || !conv.Left || slices.Contains(conv.Members, carol.account()) {
		t.Fatalf("carol's chat after leaving: %+v, %v", conv, err)
	}
	if n, err := carol.queued(h.ctx); err != nil || n != 0 {
		t.Fatalf("%d sends still queued after the leave: %v", n, err)
	}
	if in, err := isMember(h.ctx, alice, chat, carol.account()); err != nil || in {
		t.Fatalf("alice lists carol: %v, %v", in, err)
	}
}
