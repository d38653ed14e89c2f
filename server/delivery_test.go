package server_test

import (
	"bytes"
	"sync"
	"testing"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// twoPartyGroup registers alice and bob and puts bob's device into a group
// created by alice's device (epoch 1 afterwards).
func twoPartyGroup(t *testing.T, srv *ts.Server) (alice, bob *ts.Account, group []byte) {
	t.Helper()
	ctx := ts.Context(t)
	alice, bob = srv.NewAccount(t), srv.NewAccount(t)
	group = []byte("group-" + string(alice.ID[:8]))
	c := srv.Connect(t, alice.Devices[0])
	if err := c.CreateGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	r, err := ts.Commit(ctx, c, group, 0, []byte("commit-0"), []byte("welcome-bob"), []*ts.Device{bob.Devices[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetEpoch() != 1 {
		t.Fatalf("epoch after first commit %d", r.GetEpoch())
	}
	c.CloseNow()
	return alice, bob, group
}

func TestOfflineDeliveryAckAndRedelivery(t *testing.T) {
	ts.Backends(t, testOfflineDeliveryAckAndRedelivery)
}

func testOfflineDeliveryAckAndRedelivery(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob, group := twoPartyGroup(t, srv)

	// Bob is offline; alice sends two messages.
	ca := srv.Connect(t, alice.Devices[0])
	ids := [][16]byte{ts.MessageID(), ts.MessageID()}
	for i, id := range ids {
		if _, err := ca.SendMessage(ctx, group, 1, id, []byte{'m', byte(i)}); err != nil {
			t.Fatal(err)
		}
	}

	// Bob connects and catches up: his Welcome, then the two messages.
	cb := srv.Connect(t, bob.Devices[0])
	f, err := cb.Fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ds := f.GetDeliveries()
	if len(ds) != 3 || f.GetMore() {
		t.Fatalf("got %d deliveries (more=%v), want 3", len(ds), f.GetMore())
	}
	if ds[0].GetKind() != wire.MessageKind_MESSAGE_KIND_WELCOME || !bytes.Equal(ds[0].GetData(), []byte("welcome-bob")) || ds[0].GetMailboxSeq() == 0 {
		t.Fatalf("first delivery is not the welcome: %v", ds[0])
	}
	for i, d := range ds[1:] {
		if !bytes.Equal(d.GetMessageId(), ids[i][:]) || !bytes.Equal(d.GetGroupId(), group) || d.GetSender().GetAccountId() != string(alice.ID) {
			t.Fatalf("delivery %d: %v", i, d)
		}
	}

	// The ack of the welcome and the first message is "lost" (never sent):
	// after a reconnect the same entries come again, with the same ids.
	cb.CloseNow()
	cb = srv.Connect(t, bob.Devices[0])
	f2, err := cb.Fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(f2.GetDeliveries()) != 3 {
		t.Fatalf("redelivery: got %d", len(f2.GetDeliveries()))
	}
	for i, d := range f2.GetDeliveries() {
		if !bytes.Equal(d.GetMessageId(), ds[i].GetMessageId()) || d.GetSeq() != ds[i].GetSeq() || d.GetMailboxSeq() != ds[i].GetMailboxSeq() {
			t.Fatalf("redelivered %d differs: %v vs %v", i, d, ds[i])
		}
	}

	// Ack everything; nothing is left, also after a reconnect.
	refs := []*wire.AckRef{}
	for _, d := range f2.GetDeliveries() {
		refs = append(refs, wireclient.RefOf(d))
	}
	if err := cb.Ack(ctx, refs, true); err != nil {
		t.Fatal(err)
	}
	cb.CloseNow()
	cb = srv.Connect(t, bob.Devices[0])
	f3, err := cb.Fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(f3.GetDeliveries()) != 0 {
		t.Fatalf("after ack: %d deliveries left", len(f3.GetDeliveries()))
	}
}

func TestOnlinePushAndResendIsIdempotent(t *testing.T) {
	ts.Backends(t, testOnlinePushAndResendIsIdempotent)
}

func testOnlinePushAndResendIsIdempotent(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob, group := twoPartyGroup(t, srv)
	ca := srv.Connect(t, alice.Devices[0])
	cb := srv.Connect(t, bob.Devices[0])

	id := ts.MessageID()
	seq1, err := ca.SendMessage(ctx, group, 1, id, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	d := ts.NextDelivery(t, cb)
	if !bytes.Equal(d.GetMessageId(), id[:]) || d.GetSeq() != seq1 || string(d.GetData()) != "hello" {
		t.Fatalf("pushed %v", d)
	}
	// The sender's own device gets the entry too (its cursor must pass it).
	if d := ts.NextDelivery(t, ca); d.GetSeq() != seq1 {
		t.Fatalf("sender push %v", d)
	}
	// A resend with the same id is not stored twice.
	seq2, err := ca.SendMessage(ctx, group, 1, id, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if seq2 != seq1 {
		t.Fatalf("resend got seq %d, first %d", seq2, seq1)
	}
	entries, err := srv.Store.ReadGroup(ctx, store.GroupID(group), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 { // the commit and one message
		t.Fatalf("group log holds %d entries", len(entries))
	}
}

func TestMailboxSendPushesAndAcks(t *testing.T) { ts.Backends(t, testMailboxSendPushesAndAcks) }

func testMailboxSendPushesAndAcks(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob := srv.NewAccount(t), srv.NewAccount(t)
	ca := srv.Connect(t, alice.Devices[0])
	cb := srv.Connect(t, bob.Devices[0])
	id := ts.MessageID()
	_, err := ca.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
		To: bob.Devices[0].WireRef(), MessageId: id[:], Kind: wire.MessageKind_MESSAGE_KIND_LINK, Data: []byte("sealed"),
	}}}}})
	if err != nil {
		t.Fatal(err)
	}
	d := ts.NextDelivery(t, cb)
	if d.GetMailboxSeq() == 0 || d.GetKind() != wire.MessageKind_MESSAGE_KIND_LINK || !bytes.Equal(d.GetMessageId(), id[:]) {
		t.Fatalf("pushed %v", d)
	}
	if err := cb.Ack(ctx, []*wire.AckRef{wireclient.RefOf(d)}, true); err != nil {
		t.Fatal(err)
	}
	n, err := srv.Store.MailboxDepth(ctx, bob.Devices[0].Ref())
	if err != nil || n != 0 {
		t.Fatalf("mailbox depth %d, %v", n, err)
	}
}

func TestCommitRace(t *testing.T) { ts.Backends(t, testCommitRace) }

func testCommitRace(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	const n = 10
	accounts := make([]*ts.Account, n)
	for i := range accounts {
		accounts[i] = srv.NewAccount(t)
	}
	group := []byte("race")
	c0 := srv.Connect(t, accounts[0].Devices[0])
	if err := c0.CreateGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	var others []*ts.Device
	for _, a := range accounts[1:] {
		others = append(others, a.Devices[0])
	}
	if _, err := ts.Commit(ctx, c0, group, 0, []byte("add all"), []byte("w"), others, nil); err != nil {
		t.Fatal(err)
	}
	clients := []*wireclient.Client{c0}
	for _, a := range accounts[1:] {
		clients = append(clients, srv.Connect(t, a.Devices[0]))
	}
	var wg sync.WaitGroup
	begin := make(chan struct{})
	errs := make([]error, n)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			_, errs[i] = ts.Commit(ctx, c, group, 1, []byte{'c', byte(i)}, nil, nil, nil)
		}()
	}
	close(begin)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		e := ts.WantCode(t, err, wire.ErrorCode_EPOCH_CONFLICT)
		if e.GetCurrentEpoch() != 2 {
			t.Fatalf("conflict reports epoch %d, want 2", e.GetCurrentEpoch())
		}
	}
	if wins != 1 {
		t.Fatalf("%d commits won epoch 1, want exactly 1", wins)
	}
	g, err := srv.Store.Group(ctx, store.GroupID(group))
	if err != nil || g.Epoch != 2 || g.LastSeq != 2 {
		t.Fatalf("group %+v, %v", g, err)
	}
	// The group keeps working: a message for the new epoch is accepted,
	// one for epoch 0 (two behind, past the grace of one) is refused.
	if _, err := clients[3].SendMessage(ctx, group, 2, ts.MessageID(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	_, err = clients[3].SendMessage(ctx, group, 0, ts.MessageID(), []byte("x"))
	ts.WantCode(t, err, wire.ErrorCode_EPOCH_TOO_OLD)
}

func TestWelcomeWakesOnlineDevice(t *testing.T) { ts.Backends(t, testWelcomeWakesOnlineDevice) }

func testWelcomeWakesOnlineDevice(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob := srv.NewAccount(t), srv.NewAccount(t)
	cb := srv.Connect(t, bob.Devices[0])
	ca := srv.Connect(t, alice.Devices[0])
	if err := ca.CreateGroup(ctx, []byte("g")); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Commit(ctx, ca, []byte("g"), 0, []byte("c"), []byte("welcome"), []*ts.Device{bob.Devices[0]}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-cb.Events():
		if ev.GetWake() == nil {
			t.Fatalf("got %v, want wake", ev)
		}
	case <-ctx.Done():
		t.Fatal("no wake")
	}
	f, err := cb.Fetch(ctx, 0)
	if err != nil || len(f.GetDeliveries()) != 1 || string(f.GetDeliveries()[0].GetData()) != "welcome" {
		t.Fatalf("fetch %v, %v", f, err)
	}
}

func TestKeyPackages(t *testing.T) { ts.Backends(t, testKeyPackages) }

func testKeyPackages(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob := srv.NewAccount(t), srv.NewAccount(t)
	ca := srv.Connect(t, alice.Devices[0])
	r, err := ca.Do(ctx, &wire.Request{Kind: &wire.Request_UploadKeyPackages{UploadKeyPackages: &wire.UploadKeyPackages{
		KeyPackages: [][]byte{[]byte("kp1"), []byte("kp2")}, LastResort: []byte("last"),
	}}})
	if err != nil || r.GetUploadKeyPackages().GetCount() != 2 {
		t.Fatalf("upload %v %v", r, err)
	}
	cb := srv.Connect(t, bob.Devices[0])
	claim := func() *wire.ClaimedKeyPackage {
		r, err := cb.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimKeyPackages{ClaimKeyPackages: &wire.ClaimKeyPackages{AccountId: string(alice.ID)}}})
		if err != nil || len(r.GetClaimKeyPackages().GetKeyPackages()) != 1 {
			t.Fatalf("claim %v %v", r, err)
		}
		return r.GetClaimKeyPackages().GetKeyPackages()[0]
	}
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		kp := claim()
		if kp.GetLastResort() || !bytes.Equal(kp.GetDeviceId(), alice.Devices[0].ID[:]) {
			t.Fatalf("claim %d: %v", i, kp)
		}
		got[string(kp.GetData())] = true
	}
	if !got["kp1"] || !got["kp2"] {
		t.Fatalf("claimed %v", got)
	}
	if kp := claim(); !kp.GetLastResort() || string(kp.GetData()) != "last" {
		t.Fatalf("third claim %v", kp)
	}
	r, err = ca.Do(ctx, &wire.Request{Kind: &wire.Request_CountKeyPackages{CountKeyPackages: &wire.CountKeyPackages{}}})
	if err != nil || r.GetCountKeyPackages().GetCount() != 0 {
		t.Fatalf("count %v %v", r, err)
	}
}
