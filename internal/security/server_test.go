package security

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// snapshot is the server state an attack must not change: a group's log
// and members, and the mailboxes of the devices named.
type snapshot struct {
	group   store.Group
	log     []store.LogEntry
	members []store.Member
	mail    map[store.DeviceRef][]store.MailboxEntry
	devices map[identity.AccountID][]store.Device
}

func snap(t *testing.T, srv *ts.Server, group []byte, accounts ...*ts.Account) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	var err error
	if group != nil {
		gid := store.GroupID(group)
		if s.group, err = srv.Store.Group(ctx, gid); err != nil {
			t.Fatal(err)
		}
		if s.log, err = srv.Store.ReadGroup(ctx, gid, 0, 1000); err != nil {
			t.Fatal(err)
		}
		if s.members, err = srv.Store.Members(ctx, gid); err != nil {
			t.Fatal(err)
		}
	}
	s.mail = map[store.DeviceRef][]store.MailboxEntry{}
	s.devices = map[identity.AccountID][]store.Device{}
	for _, a := range accounts {
		ds, err := srv.Store.Devices(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.devices[a.ID] = ds
		for _, d := range a.Devices {
			m, err := srv.Store.ReadMailbox(ctx, d.Ref(), 0, 1000)
			if err != nil && err != store.ErrNotFound {
				t.Fatal(err)
			}
			s.mail[d.Ref()] = m
		}
	}
	return s
}

func unchanged(t *testing.T, what string, before, after snapshot) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("%s changed the server state:\nbefore %+v\nafter  %+v", what, before, after)
	}
}

// threeMembers: alice creates a group with bob and carol (epoch 2 after).
func threeMembers(t *testing.T, srv *ts.Server) (alice, bob, carol *ts.Account, group []byte, ca *wireclient.Client) {
	t.Helper()
	ctx := ts.Context(t)
	alice, bob, carol = srv.NewAccount(t), srv.NewAccount(t), srv.NewAccount(t)
	group = []byte("sec-" + string(alice.ID[:8]))
	ca = srv.Connect(t, alice.Devices[0])
	if err := ca.CreateGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Commit(ctx, ca, group, 0, []byte("add-bob-carol"), []byte("welcome"), []*ts.Device{bob.Devices[0], carol.Devices[0]}, nil); err != nil {
		t.Fatal(err)
	}
	return alice, bob, carol, group, ca
}

// TestRemovedMemberCannotPostOrRead: after a commit removes carol, the
// server (which knows members for routing) refuses her posts and commits
// with FORBIDDEN, and delivers her nothing sent after the removal.
func TestRemovedMemberCannotPostOrRead(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	alice, bob, carol, group, ca := threeMembers(t, srv)
	cc := srv.Connect(t, carol.Devices[0])
	// Carol takes her Welcome and acks it, as a client would.
	f, err := cc.Fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var refs []*wire.AckRef
	for _, d := range f.GetDeliveries() {
		refs = append(refs, wireclient.RefOf(d))
	}
	if err := cc.Ack(ctx, refs, true); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Commit(ctx, ca, group, 1, []byte("remove-carol"), nil, nil, []*ts.Device{carol.Devices[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SendMessage(ctx, group, 2, ts.MessageID(), []byte("secret after carol")); err != nil {
		t.Fatal(err)
	}
	before := snap(t, srv, group, alice, bob, carol)
	_, err = cc.SendMessage(ctx, group, 2, ts.MessageID(), []byte("carol posts anyway"))
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	_, err = cc.SendMessage(ctx, group, 1, ts.MessageID(), []byte("carol posts in the old epoch"))
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	_, err = ts.Commit(ctx, cc, group, 2, []byte("carol re-adds herself"), []byte("w"), []*ts.Device{carol.Devices[0]}, nil)
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	err = cc.Ack(ctx, []*wire.AckRef{{GroupId: group, Seq: 3}}, true)
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	f, err = cc.Fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.GetDeliveries() {
		if bytes.Contains(d.GetData(), []byte("secret after carol")) {
			t.Fatal("the server delivered a post-removal message to the removed member")
		}
	}
	unchanged(t, "a removed member's attempts", before, snap(t, srv, group, alice, bob, carol))
}

// TestRevokedDeviceCannotConnectReadOrPost: once revoked by an account-key
// signature, a device's open connection is closed, it cannot authenticate
// again (DEVICE_REVOKED), it is no longer a group member, and nothing can be
// addressed to it.
func TestRevokedDeviceCannotConnectReadOrPost(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	alice, bob, _, group, ca := threeMembers(t, srv)
	laptop := srv.AddDevice(t, bob)
	if _, err := ts.Commit(ctx, ca, group, 1, []byte("add-laptop"), []byte("welcome"), []*ts.Device{laptop}, nil); err != nil {
		t.Fatal(err)
	}
	cl := srv.Connect(t, laptop)
	cb := srv.Connect(t, bob.Devices[0])
	now := time.Now().Unix()
	sig, _ := bob.Key.Sign(wire.DomainDeviceRevoke, wire.RevokeMessage("127.0.0.1", bob.ID, laptop.ID, now))
	// The stolen laptop cannot revoke the phone: revocation needs the
	// account key, not a device key.
	devSig, _ := identity.SignAsDevice(laptop.Key, wire.DomainDeviceRevoke, wire.RevokeMessage("127.0.0.1", bob.ID, bob.Devices[0].ID, now), nil)
	before := snap(t, srv, group, bob)
	_, err := cl.Do(ctx, &wire.Request{Kind: &wire.Request_RevokeDevice{RevokeDevice: &wire.RevokeDevice{DeviceId: bob.Devices[0].ID[:], UnixTime: now, Signature: devSig}}})
	ts.WantCode(t, err, wire.ErrorCode_INVALID_SIGNATURE)
	unchanged(t, "a device-key revocation", before, snap(t, srv, group, bob))

	if _, err := cb.Do(ctx, &wire.Request{Kind: &wire.Request_RevokeDevice{RevokeDevice: &wire.RevokeDevice{DeviceId: laptop.ID[:], UnixTime: now, Signature: sig}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.Done():
	case <-ctx.Done():
		t.Fatal("the revoked device's connection stays open")
	}
	before = snap(t, srv, group, alice, bob)
	c := srv.Dial(t)
	err = c.Authenticate(ctx, bob.ID, laptop.ID, laptop.Key)
	ts.WantCode(t, err, wire.ErrorCode_DEVICE_REVOKED)
	_, err = c.Fetch(ctx, 0)
	if ts.Code(err) != wire.ErrorCode_UNAUTHENTICATED && ts.Code(err) != wire.ErrorCode_DEVICE_REVOKED && err == nil {
		t.Fatalf("fetch after refused auth: %v", err)
	}
	_, err = c.SendMessage(ctx, group, 2, ts.MessageID(), []byte("from a stolen laptop"))
	if err == nil {
		t.Fatal("a revoked device posted")
	}
	id := ts.MessageID()
	_, err = ca.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
		To: laptop.WireRef(), MessageId: id[:], Kind: wire.MessageKind_MESSAGE_KIND_WELCOME, Data: []byte("x"),
	}}}}})
	ts.WantCode(t, err, wire.ErrorCode_DEVICE_REVOKED)
	unchanged(t, "a revoked device's attempts", before, snap(t, srv, group, alice, bob))
	// The directory no longer lists the laptop.
	r, err := ca.Do(ctx, &wire.Request{Kind: &wire.Request_Lookup{Lookup: &wire.Lookup{By: &wire.Lookup_AccountId{AccountId: string(bob.ID)}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range r.GetLookup().GetDeviceCertificates() {
		if c, err := identity.ParseDeviceCertificate(raw); err == nil && c.DeviceID() == laptop.ID {
			t.Fatal("the directory still lists the revoked device")
		}
	}
}

// TestReadAnotherDevicesMailboxOrGroup: mallory can neither read, ack
// away, post to nor commit to bob's mailbox or a group she is not in.
func TestReadAnotherDevicesMailboxOrGroup(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	alice, bob, _, group, _ := threeMembers(t, srv)
	mallory := srv.NewAccount(t)
	cm := srv.Connect(t, mallory.Devices[0])
	before := snap(t, srv, group, alice, bob, mallory)
	f, err := cm.Fetch(ctx, 0)
	if err != nil || len(f.GetDeliveries()) != 0 {
		t.Fatalf("mallory fetched %v (%v)", f, err)
	}
	// Bob's Welcome is mailbox entry 1 of his mailbox; mallory acking seq 1
	// names her own mailbox only.
	if err := cm.Ack(ctx, []*wire.AckRef{{MailboxSeq: 1}}, true); err != nil {
		t.Fatal(err)
	}
	ts.WantCode(t, cm.Ack(ctx, []*wire.AckRef{{GroupId: group, Seq: 1}}, true), wire.ErrorCode_FORBIDDEN)
	_, err = cm.SendMessage(ctx, group, 1, ts.MessageID(), []byte("spam"))
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	_, err = ts.Commit(ctx, cm, group, 1, []byte("takeover"), []byte("w"), []*ts.Device{mallory.Devices[0]}, []*ts.Device{alice.Devices[0]})
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	unchanged(t, "mallory's attempts", before, snap(t, srv, group, alice, bob, mallory))
}

func claim(ctx context.Context, t *testing.T, c *wireclient.Client, signer *ts.Account, name string) error {
	t.Helper()
	cl, err := identity.IssueUsernameClaim(signer.Key, name, "127.0.0.1", time.Now())
	if err != nil {
		return err
	}
	_, err = c.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimUsername{ClaimUsername: &wire.ClaimUsername{Claim: cl.Marshal()}}})
	return err
}

// TestClaimSomeoneElsesUsernameOrLookAlike: a taken name, its case and
// confusable variants, and a claim signed by the owner but sent by another
// account are all refused; the directory still answers with the owner.
func TestClaimSomeoneElsesUsernameOrLookAlike(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	alice, mallory := srv.NewAccount(t), srv.NewAccount(t)
	ca, cm := srv.Connect(t, alice.Devices[0]), srv.Connect(t, mallory.Devices[0])
	if err := claim(ctx, t, ca, alice, "alice"); err != nil {
		t.Fatal(err)
	}
	owner := func() {
		t.Helper()
		u, err := srv.Store.UsernameOf(ctx, alice.ID)
		if err != nil || u.Account != alice.ID {
			t.Fatalf("alice no longer owns her name: %+v %v", u, err)
		}
		if _, err := srv.Store.UsernameOf(ctx, mallory.ID); err == nil {
			t.Fatal("mallory got a username")
		}
	}
	for _, name := range []string{"alice", "ALICE", "Alice", "a1ice", "al1ce", "aIice", "аlice" /* Cyrillic а */, "alice\u200b"} {
		err := claim(ctx, t, cm, mallory, name)
		// Non-ASCII names cannot even be signed (identity refuses them);
		// the rest reach the server and are refused there.
		if c := ts.Code(err); c != wire.ErrorCode_USERNAME_TAKEN && c != wire.ErrorCode_USERNAME_INVALID && !errors.Is(err, identity.ErrInvalidUsername) {
			t.Errorf("claim %q: got %v, want USERNAME_TAKEN, USERNAME_INVALID or identity.ErrInvalidUsername", name, err)
		}
		owner()
	}
	// Alice's own signed claim replayed from mallory's connection.
	ts.WantCode(t, claim(ctx, t, cm, alice, "alice_two"), wire.ErrorCode_FORBIDDEN)
	owner()
}

// TestKeyPackageReuse: the server hands each one-time KeyPackage out once,
// then only the last-resort one, and never the same one-time package twice
// even to concurrent claimers.
func TestKeyPackageReuse(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	alice := srv.NewAccount(t)
	ca := srv.Connect(t, alice.Devices[0])
	const n = 8
	var pkgs [][]byte
	for i := range n {
		pkgs = append(pkgs, []byte{'k', 'p', byte(i)})
	}
	if _, err := ca.Do(ctx, &wire.Request{Kind: &wire.Request_UploadKeyPackages{UploadKeyPackages: &wire.UploadKeyPackages{KeyPackages: pkgs, LastResort: []byte("last")}}}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		data []byte
		last bool
	}
	out := make(chan result, 2*n)
	claimer := srv.NewAccount(t)
	var conns []*wireclient.Client
	for range 2 * n {
		conns = append(conns, srv.Connect(t, claimer.Devices[0]))
	}
	for _, c := range conns {
		go func() {
			r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimKeyPackages{ClaimKeyPackages: &wire.ClaimKeyPackages{AccountId: string(alice.ID)}}})
			if err != nil || len(r.GetClaimKeyPackages().GetKeyPackages()) != 1 {
				out <- result{}
				return
			}
			kp := r.GetClaimKeyPackages().GetKeyPackages()[0]
			out <- result{kp.GetData(), kp.GetLastResort()}
		}()
	}
	seen := map[string]int{}
	lasts := 0
	for range 2 * n {
		r := <-out
		switch {
		case r.data == nil:
			t.Error("a claim failed")
		case r.last:
			lasts++
		default:
			seen[string(r.data)]++
		}
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("one-time KeyPackage %q handed out %d times", k, c)
		}
	}
	if len(seen) != n || lasts != n {
		t.Errorf("got %d one-time and %d last-resort packages, want %d and %d", len(seen), lasts, n, n)
	}
}
