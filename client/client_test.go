package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/mls"
)

// harness runs clients against one real server.
type harness struct {
	t    *testing.T
	srv  *testserver.Server
	ctx  context.Context
	mu   sync.Mutex
	runs map[*Client]context.CancelFunc
	wg   sync.WaitGroup
	// skew moves every client's clock forward (disappearing messages).
	skew atomic.Int64
}

func newHarness(t *testing.T, opts ...testserver.Option) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	h := &harness{t: t, srv: testserver.Start(t, opts...), ctx: ctx, runs: make(map[*Client]context.CancelFunc)}
	t.Cleanup(func() {
		h.mu.Lock()
		for c, stop := range h.runs {
			stop()
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
		cancel()
	})
	return h
}

func (h *harness) opts() Options {
	return Options{
		KeyPackageStock: 6, MaxBackoff: 200 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) },
	}
}

func (h *harness) account(name string) *Client {
	h.t.Helper()
	o := h.opts()
	o.Username = name
	c, err := Init(h.ctx, h.t.TempDir(), h.srv.URL, o)
	if err != nil {
		h.t.Fatalf("init %s: %v", name, err)
	}
	h.run(c)
	return c
}

// run starts c's sync engine.
func (h *harness) run(c *Client) {
	ctx, cancel := context.WithCancel(h.ctx)
	h.mu.Lock()
	h.runs[c] = cancel
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		_ = c.Run(ctx)
	}()
}

// stop stops and closes c.
func (h *harness) stop(c *Client) {
	h.mu.Lock()
	cancel := h.runs[c]
	delete(h.runs, c)
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if err := c.Close(); err != nil {
		h.t.Fatalf("close: %v", err)
	}
}

// link links a new device to approver's account.
func (h *harness) link(approver *Client) *Client {
	h.t.Helper()
	pl, err := NewLink(h.ctx, h.t.TempDir(), h.srv.URL, h.opts())
	if err != nil {
		h.t.Fatalf("new link: %v", err)
	}
	req, err := ParseLinkCode(pl.Request().Code())
	if err != nil {
		h.t.Fatalf("parse link code: %v", err)
	}
	if req.Comparison() != pl.Request().Comparison() {
		h.t.Fatalf("comparison codes differ")
	}
	errc := make(chan error, 1)
	go func() { errc <- approver.ApproveLink(h.ctx, req) }()
	c, err := pl.Wait(h.ctx)
	if err != nil {
		h.t.Fatalf("wait for link: %v", err)
	}
	if err := <-errc; err != nil {
		h.t.Fatalf("approve link: %v", err)
	}
	if c.Me().AccountID != approver.Me().AccountID {
		h.t.Fatalf("linked device has account %s", c.Me().AccountID)
	}
	h.run(c)
	return c
}

// eventually polls cond until it holds (or fails the test after a minute).
func (h *harness) eventually(what string, cond func() error) {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chatMessages returns the visible text messages of a chat, in order.
func chatMessages(ctx context.Context, c *Client, chat ChatID) ([]*Message, error) {
	page, err := c.History(ctx, chat, store.HistoryQuery{Limit: store.MaxPageSize})
	if err != nil {
		return nil, err
	}
	var out []*Message
	for _, m := range page.Messages {
		if m.Kind == store.KindText || m.Kind == store.KindReply {
			out = append(out, m)
		}
	}
	return out, nil
}

func bodies(ms []*Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Body)
	}
	return out
}

// converged waits until every client shows the same messages of chat, in
// the same order, each once, all acknowledged by the server, and
// containing want.
func (h *harness) converged(chat ChatID, want []string, clients ...*Client) []*Message {
	h.t.Helper()
	var ref []*Message
	h.eventually("convergence", func() error {
		var first []*Message
		for i, c := range clients {
			ms, err := chatMessages(h.ctx, c, chat)
			if err != nil {
				return err
			}
			seen := make(map[MessageID]bool)
			for _, m := range ms {
				if seen[m.ID] {
					return fmt.Errorf("device %d shows %s twice", i, m.ID)
				}
				seen[m.ID] = true
				if m.Seq == 0 {
					return fmt.Errorf("device %d: message %q not yet ordered", i, m.Body)
				}
			}
			got := bodies(ms)
			for _, w := range want {
				if !slices.Contains(got, w) {
					return fmt.Errorf("device %d lacks %q (has %d messages)", i, w, len(got))
				}
			}
			if i == 0 {
				first = ms
				continue
			}
			if len(ms) != len(first) {
				return fmt.Errorf("device %d has %d messages, device 0 has %d", i, len(ms), len(first))
			}
			for j := range ms {
				if ms[j].ID != first[j].ID || ms[j].Seq != first[j].Seq || !bytes.Equal(ms[j].Body, first[j].Body) {
					return fmt.Errorf("device %d differs at %d", i, j)
				}
			}
		}
		ref = first
		return nil
	})
	return ref
}

func (h *harness) send(c *Client, chat ChatID, text string) MessageID {
	h.t.Helper()
	id, err := c.Send(h.ctx, chat, text)
	if err != nil {
		h.t.Fatalf("send %q: %v", text, err)
	}
	return id
}

// chatOn waits until c has the chat.
func (h *harness) chatOn(c *Client, chat ChatID) {
	h.t.Helper()
	h.eventually("chat arrives", func() error {
		_, err := c.activeConversation(h.ctx, chat)
		return err
	})
}

func (h *harness) noUndecryptable(clients ...*Client) {
	h.t.Helper()
	for i, c := range clients {
		if n := c.Undecryptable(); n != 0 {
			h.t.Errorf("client %d (%s): %d undecryptable messages", i, c.Me().Address, n)
		}
	}
}

// canary fails if any text occurs in the server's files or logs.
func (h *harness) canary(texts []string) {
	h.t.Helper()
	var blobs [][]byte
	_ = filepath.WalkDir(h.srv.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil {
				blobs = append(blobs, b)
			}
		}
		return nil
	})
	blobs = append(blobs, h.srv.Logs())
	if len(blobs) < 2 {
		h.t.Fatal("canary found no server files")
	}
	for _, text := range texts {
		for _, b := range blobs {
			if bytes.Contains(b, []byte(text)) {
				h.t.Errorf("server data contains the plaintext %q", text)
			}
		}
	}
}

func TestEndToEnd(t *testing.T) {
	h := newHarness(t)
	a1, b1, c1 := h.account("alice"), h.account("bob"), h.account("carol")
	a2, b2, c2 := h.link(a1), h.link(b1), h.link(c1)
	all := []*Client{a1, a2, b1, b2, c1, c2}
	var texts []string
	say := func(c *Client, chat ChatID, text string) MessageID {
		texts = append(texts, text)
		return h.send(c, chat, text)
	}

	// 1:1 between alice and bob: all four devices.
	direct, err := a1.StartDirect(h.ctx, "bob@"+a1.host)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a2, b1, b2} {
		h.chatOn(c, direct)
	}
	say(a1, direct, "canary-direct-1 hello bob")
	say(b2, direct, "canary-direct-2 hi alice")
	say(a2, direct, "canary-direct-3 from alice's second device")
	h.converged(direct, texts, a1, a2, b1, b2)

	// A group of the three accounts.
	group, err := a1.CreateGroup(h.ctx, "team", []string{"bob@" + a1.host, "carol@" + a1.host})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		h.chatOn(c, group)
	}
	events, stopEvents := c2.Subscribe(1024)
	var groupTexts []string
	for i, c := range all {
		for j := range 3 {
			text := fmt.Sprintf("canary-group-%d-%d", i, j)
			groupTexts = append(groupTexts, text)
			say(c, group, text)
		}
	}
	ms := h.converged(group, groupTexts, all...)
	if len(ms) != len(groupTexts) {
		t.Fatalf("group has %d messages, want %d", len(ms), len(groupTexts))
	}
	// The event stream showed each message once.
	stopEvents()
	seen := make(map[MessageID]int)
	for ev := range events {
		if ev.Kind == EventMessage && ev.Chat == group && ev.Message.Kind == store.KindText {
			seen[ev.Message.ID]++
		}
	}
	for _, m := range ms {
		if seen[m.ID] != 1 {
			t.Fatalf("message %q was announced %d times", m.Body, seen[m.ID])
		}
	}

	// Edit, delete, reaction, reply.
	var mine *Message
	for _, m := range ms {
		if m.Sender == c1.Me().AccountID && m.SenderDevice == c1.Me().DeviceID {
			mine = m
			break
		}
	}
	if _, err := c1.Edit(h.ctx, group, mine.ID, "canary-edited"); err != nil {
		t.Fatal(err)
	}
	var notBobs *Message
	for _, m := range ms {
		if m.Sender == a1.Me().AccountID {
			notBobs = m
		}
	}
	badDelete, err := b1.Delete(h.ctx, group, notBobs.ID) // not bob's: must not apply
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a2.React(h.ctx, group, mine.ID, "+1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.React(h.ctx, group, mine.ID, strings.Repeat("x", 5000)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a 5,000-byte reaction: %v, want ErrInvalid", err)
	}
	texts = append(texts, "canary-edited")
	for i, g := range groupTexts {
		if g == string(mine.Body) {
			groupTexts[i] = "canary-edited"
		}
	}
	h.eventually("edit applied everywhere", func() error {
		for _, c := range all {
			m, err := c.st.Message(h.ctx, mine.ID)
			if err != nil {
				return err
			}
			if string(m.Body) != "canary-edited" {
				return fmt.Errorf("%s shows %q", c.Me().Address, m.Body)
			}
			rs, err := c.st.Reactions(h.ctx, group, mine.ID)
			if err != nil || len(rs) != 1 {
				return fmt.Errorf("reactions %v %v", rs, err)
			}
		}
		return nil
	})
	// Delete for everyone, by the sender.
	var carols2 *Message
	for _, m := range ms {
		if m.SenderDevice == c1.Me().DeviceID && m.ID != mine.ID {
			carols2 = m
		}
	}
	if _, err := c1.Delete(h.ctx, group, carols2.ID); err != nil {
		t.Fatal(err)
	}
	h.eventually("deleted everywhere", func() error {
		for _, c := range all {
			m, err := c.st.Message(h.ctx, carols2.ID)
			if err != nil {
				return err
			}
			if !m.Deleted || len(m.Body) != 0 {
				return fmt.Errorf("%s still shows it", c.Me().Address)
			}
		}
		return nil
	})
	for i, g := range groupTexts {
		if g == string(carols2.Body) {
			groupTexts = slices.Delete(groupTexts, i, i+1)
			break
		}
	}
	h.eventually("bob's deletion arrives", func() error {
		_, err := a1.st.Message(h.ctx, badDelete)
		return err
	})
	if m, _ := a1.st.Message(h.ctx, notBobs.ID); m.Deleted {
		t.Fatal("a member deleted someone else's message")
	}

	// Remove carol: her devices decrypt nothing afterwards.
	if err := b1.RemoveMembers(h.ctx, group, []string{"carol@" + a1.host}); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("non-admin remove: %v", err)
	}
	if err := a1.RemoveMembers(h.ctx, group, []string{"carol@" + a1.host}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{c1, c2} {
		h.eventually("carol removed", func() error {
			conv, err := c.st.Conversation(h.ctx, group)
			if err != nil || !conv.Left {
				return fmt.Errorf("not left yet (%v)", err)
			}
			return nil
		})
	}
	secret := "canary-after-removal"
	groupTexts = append(groupTexts, secret)
	say(b2, group, secret)
	h.converged(group, groupTexts, a1, a2, b1, b2)
	for _, c := range []*Client{c1, c2} {
		if err := c.Sync(h.ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := chatMessages(h.ctx, c, group)
		if slices.Contains(bodies(got), secret) {
			t.Fatal("a removed member decrypted a later message")
		}
	}

	// Revoke bob's second device: it decrypts nothing afterwards.
	if err := b1.RevokeDevice(h.ctx, b2.Me().DeviceID); err != nil {
		t.Fatal(err)
	}
	b2dir, b2dev := b2.st.Dir(), b2.Me().DeviceID
	h.stop(b2)
	afterRevoke := "canary-after-revoke"
	say(a1, direct, afterRevoke)
	h.converged(direct, []string{afterRevoke}, a1, a2, b1)
	for _, c := range []*Client{a1, b1} { // removed from the MLS groups
		for _, chat := range []ChatID{direct, group} {
			conv, err := c.st.Conversation(h.ctx, chat)
			if err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			grp, err := c.group(h.ctx, conv.Group)
			var ms map[mls.LeafIndex]*memberID
			if err == nil {
				ms, err = c.groupMembers(grp)
			}
			c.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Device == b2dev {
					t.Fatalf("the revoked device is still in chat %s", chat)
				}
			}
		}
	}
	b2, err = Open(h.ctx, b2dir, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Sync(h.ctx); err == nil {
		t.Fatal("a revoked device synced")
	}
	if got, _ := chatMessages(h.ctx, b2, direct); slices.Contains(bodies(got), afterRevoke) {
		t.Fatal("the revoked device has a later message")
	}
	b2.Close()

	// A newly linked device receives what follows, its own account's too.
	a3 := h.link(a1)
	h.chatOn(a3, direct)
	h.chatOn(a3, group)
	say(b1, direct, "canary-for-the-new-device")
	say(a1, group, "canary-own-account-to-new-device")
	h.eventually("new device receives", func() error {
		d, _ := chatMessages(h.ctx, a3, direct)
		g, _ := chatMessages(h.ctx, a3, group)
		if !slices.Contains(bodies(d), "canary-for-the-new-device") || !slices.Contains(bodies(g), "canary-own-account-to-new-device") {
			return fmt.Errorf("direct %q group %q", bodies(d), bodies(g))
		}
		return nil
	})

	// Restart a client mid-conversation: nothing is lost.
	dir := b1.st.Dir()
	h.stop(b1)
	say(a2, direct, "canary-while-bob-was-away")
	b1, err = Open(h.ctx, dir, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	h.run(b1)
	say(b1, direct, "canary-bob-is-back")
	h.converged(direct, []string{"canary-while-bob-was-away", "canary-bob-is-back"}, a1, a2, b1)
	h.eventually("new device follows", func() error {
		d, _ := chatMessages(h.ctx, a3, direct)
		if !slices.Contains(bodies(d), "canary-bob-is-back") {
			return fmt.Errorf("has %q", bodies(d))
		}
		return nil
	})

	h.noUndecryptable(a1, a2, a3, b1, c1, c2)
	h.canary(texts)
}
