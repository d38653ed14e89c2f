package security

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	ts "github.com/parley-im/parley/internal/testserver"
	sstore "github.com/parley-im/parley/server/store"
)

// sdk runs real SDK clients against one real server.
type sdk struct {
	t   *testing.T
	srv *ts.Server
	ctx context.Context
	wg  sync.WaitGroup
}

func newSDK(t *testing.T) *sdk {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	h := &sdk{t: t, srv: ts.Start(t), ctx: ctx}
	t.Cleanup(func() { cancel(); h.wg.Wait() })
	return h
}

var sdkOpts = client.Options{KeyPackageStock: 4, MaxBackoff: 200 * time.Millisecond}

func (h *sdk) account() *client.Client {
	h.t.Helper()
	c, err := client.Init(h.ctx, h.t.TempDir(), h.srv.URL, sdkOpts)
	if err != nil {
		h.t.Fatalf("init: %v", err)
	}
	h.run(c)
	return c
}

// run starts c's sync engine until the test ends.
func (h *sdk) run(c *client.Client) {
	h.wg.Add(1)
	go func() { defer h.wg.Done(); _ = c.Run(h.ctx) }()
	h.t.Cleanup(func() { c.Close() })
}

func (h *sdk) addr(c *client.Client) string { return string(c.Me().AccountID) }

func texts(t *testing.T, c *client.Client, chat client.ChatID) []string {
	t.Helper()
	page, err := c.History(context.Background(), chat, store.HistoryQuery{Limit: store.MaxPageSize})
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range page.Messages {
		if m.Kind == store.KindText {
			out = append(out, string(m.Body))
		}
	}
	return out
}

func (h *sdk) eventually(what string, cond func() error) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (h *sdk) has(c *client.Client, chat client.ChatID, text string) {
	h.t.Helper()
	h.eventually("message "+text+" arrives", func() error {
		if !slices.Contains(texts(h.t, c, chat), text) {
			return fmt.Errorf("%s lacks %q", c.Me().AccountID, text)
		}
		return nil
	})
}

func ref(c *client.Client) sstore.DeviceRef {
	return sstore.DeviceRef{Account: c.Me().AccountID, Device: c.Me().DeviceID}
}

// TestServerSubstitutedDeviceKeyDetectedByClient: a compromised operator
// writes a device of its own making into bob's directory entry (straight
// into the database). The server serves it, but alice's client drops it:
// it is not signed by bob's account key.
func TestServerSubstitutedDeviceKeyDetectedByClient(t *testing.T) {
	h := newSDK(t)
	alice, bob := h.account(), h.account()
	evil, _ := identity.GenerateAccountKey(rand.Reader)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	id, _ := identity.NewDeviceID(rand.Reader)
	forged, err := identity.IssueDeviceCertificate(evil, id, pub, identity.SuiteX25519AES128GCMEd25519, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Store.AddDevice(h.ctx, sstore.Device{Account: bob.Me().AccountID, ID: id, Certificate: forged.Marshal(), SigningKey: pub, CreatedAt: time.Now()}); err != nil {
		t.Fatalf("operator inserts a device: %v", err)
	}
	devs, _ := h.srv.Store.Devices(h.ctx, bob.Me().AccountID)
	if len(devs) != 2 {
		t.Fatalf("the server lists %d devices for bob, want the real one and the forged one", len(devs))
	}
	acct, err := alice.Resolve(h.ctx, h.addr(bob))
	if err != nil {
		t.Fatal(err)
	}
	if acct.ID != bob.Me().AccountID || len(acct.Devices) != 1 || acct.Devices[0].DeviceID() != bob.Me().DeviceID {
		t.Fatalf("alice's client accepted the substituted device: %d devices", len(acct.Devices))
	}
	// A chat started now includes only bob's real device, and works.
	chat, msg, err := alice.SendTo(h.ctx, h.addr(bob), "hello real bob")
	if err != nil {
		t.Fatal(err)
	}
	_ = msg
	h.has(bob, chat, "hello real bob")
	for _, m := range mustMembers(t, h, alice, bob) {
		if m.Device.Device == id {
			t.Fatal("the server routes the chat to the forged device")
		}
	}
}

// shared returns the groups both clients' devices are members of on the
// server (the server knows groups, not chats).
func (h *sdk) shared(a, b *client.Client) []sstore.GroupID {
	h.t.Helper()
	ma, err := h.srv.Store.Memberships(h.ctx, ref(a))
	if err != nil {
		h.t.Fatal(err)
	}
	mb, err := h.srv.Store.Memberships(h.ctx, ref(b))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []sstore.GroupID
	for _, x := range ma {
		for _, y := range mb {
			if string(x.Group) == string(y.Group) {
				out = append(out, x.Group)
			}
		}
	}
	return out
}

func mustMembers(t *testing.T, h *sdk, a, b *client.Client) []sstore.Member {
	t.Helper()
	var out []sstore.Member
	for _, g := range h.shared(a, b) {
		m, err := h.srv.Store.Members(h.ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) == 0 {
		t.Fatal("no shared group on the server")
	}
	return out
}

// TestReplayedApplicationMessageShownOnce: while alice is offline, a
// compromised server appends copies of bob's ciphertext to the group log
// under fresh message ids. When alice comes back, the MLS layer refuses the
// consumed key, her client shows the message once, and the chat keeps
// working.
func TestReplayedApplicationMessageShownOnce(t *testing.T) {
	h := newSDK(t)
	bob := h.account()
	dir := t.TempDir()
	alice, err := client.Init(h.ctx, dir, h.srv.URL, sdkOpts)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = alice.Run(actx) }()
	chat, err := alice.StartDirect(h.ctx, h.addr(bob))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(h.ctx, chat, "hello bob"); err != nil {
		t.Fatal(err)
	}
	h.has(bob, chat, "hello bob")
	if _, err := bob.Send(h.ctx, chat, "transfer 100 to alice"); err != nil {
		t.Fatal(err)
	}
	h.has(alice, chat, "transfer 100 to alice")
	groups := h.shared(alice, bob)
	if len(groups) != 1 {
		t.Fatalf("%d shared groups, want 1", len(groups))
	}
	stop()
	<-done
	aliceRef := ref(alice)
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	log, err := h.srv.Store.ReadGroup(h.ctx, groups[0], 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var last *sstore.LogEntry
	for i := range log {
		if log[i].Kind == sstore.KindApplication && log[i].Sender.Account == bob.Me().AccountID {
			last = &log[i]
		}
	}
	if last == nil {
		t.Fatal("bob's message is not in the log")
	}
	for range 3 {
		id := sstore.MessageID(ts.MessageID())
		if _, err := h.srv.Store.AppendMessage(h.ctx, sstore.Message{Group: last.Group, ID: id, Epoch: last.Epoch, Kind: last.Kind, Sender: last.Sender, Data: last.Data, At: time.Now(), EpochGrace: 1}); err != nil {
			t.Fatalf("operator appends the replay: %v", err)
		}
	}
	if _, err := bob.Send(h.ctx, chat, "after the replays"); err != nil {
		t.Fatal(err)
	}
	alice, err = client.Open(h.ctx, dir, sdkOpts)
	if err != nil {
		t.Fatal(err)
	}
	h.run(alice)
	h.has(alice, chat, "after the replays")
	// Alice's cursor passed the replays: she processed them.
	h.eventually("alice acks past the replays", func() error {
		m, err := h.srv.Store.Member(h.ctx, groups[0], aliceRef)
		if err != nil {
			return err
		}
		if g, _ := h.srv.Store.Group(h.ctx, groups[0]); m.AckedSeq < g.LastSeq {
			return fmt.Errorf("acked %d of %d", m.AckedSeq, g.LastSeq)
		}
		return nil
	})
	n := 0
	for _, x := range texts(t, alice, chat) {
		if x == "transfer 100 to alice" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("alice shows the replayed message %d times", n)
	}
	t.Logf("alice counted %d undecryptable (the refused replays)", alice.Undecryptable())
}

// offline is a client the test can stop and reopen.
type offline struct {
	h    *sdk
	dir  string
	c    *client.Client
	stop context.CancelFunc
	done chan struct{}
}

func (h *sdk) offlineAccount() *offline {
	h.t.Helper()
	o := &offline{h: h, dir: h.t.TempDir()}
	c, err := client.Init(h.ctx, o.dir, h.srv.URL, sdkOpts)
	if err != nil {
		h.t.Fatal(err)
	}
	o.c = c
	o.start()
	return o
}

func (o *offline) start() {
	ctx, cancel := context.WithCancel(o.h.ctx)
	o.stop, o.done = cancel, make(chan struct{})
	go func() { defer close(o.done); _ = o.c.Run(ctx) }()
	o.h.t.Cleanup(func() { cancel(); <-o.done; o.c.Close() })
}

func (o *offline) down() {
	o.h.t.Helper()
	o.stop()
	<-o.done
	if err := o.c.Close(); err != nil {
		o.h.t.Fatal(err)
	}
}

func (o *offline) up() {
	o.h.t.Helper()
	c, err := client.Open(o.h.ctx, o.dir, sdkOpts)
	if err != nil {
		o.h.t.Fatal(err)
	}
	o.c = c
	o.start()
}

// TestWelcomeForUsedKeyPackageRefusedByClient: a compromised server
// delivers a Welcome bob already used a second time. Bob's client refuses
// it (the KeyPackage's private key is gone): no second chat, nothing shown
// twice, and the chat keeps working.
func TestWelcomeForUsedKeyPackageRefusedByClient(t *testing.T) {
	h := newSDK(t)
	alice := h.account()
	bob := h.offlineAccount()
	bobRef := ref(bob.c)
	bob.down()
	chat, err := alice.StartDirect(h.ctx, string(bobRef.Account))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(h.ctx, chat, "welcome message one"); err != nil {
		t.Fatal(err)
	}
	mail, err := h.srv.Store.ReadMailbox(h.ctx, bobRef, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var welcome []byte
	for _, m := range mail {
		if m.Kind == sstore.MailWelcome {
			welcome = m.Data
		}
	}
	if welcome == nil {
		t.Fatal("no Welcome in bob's mailbox")
	}
	bob.up()
	h.has(bob.c, chat, "welcome message one")
	chatsBefore, _, err := bob.c.Chats(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	bob.down()
	id := sstore.MessageID(ts.MessageID())
	if _, err := h.srv.Store.Deliver(h.ctx, sstore.MailboxMessage{To: bobRef, ID: id, Kind: sstore.MailWelcome, Data: welcome, At: time.Now()}); err != nil {
		t.Fatalf("operator re-delivers the Welcome: %v", err)
	}
	bob.up()
	if _, err := alice.Send(h.ctx, chat, "welcome message two"); err != nil {
		t.Fatal(err)
	}
	h.has(bob.c, chat, "welcome message two")
	h.eventually("bob consumes the replayed Welcome", func() error {
		m, err := h.srv.Store.ReadMailbox(h.ctx, bobRef, 0, 100)
		if err != nil {
			return err
		}
		if len(m) != 0 {
			return fmt.Errorf("%d mailbox entries left", len(m))
		}
		return nil
	})
	chatsAfter, _, err := bob.c.Chats(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(chatsAfter) != len(chatsBefore) {
		t.Fatalf("bob has %d chats after the replayed Welcome, %d before", len(chatsAfter), len(chatsBefore))
	}
	n := 0
	for _, x := range texts(t, bob.c, chat) {
		if x == "welcome message one" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bob shows the first message %d times", n)
	}
	t.Logf("bob counted %d undecryptable after the replayed Welcome", bob.c.Undecryptable())
}
