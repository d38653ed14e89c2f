package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

func testAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)

	got, err := s.Account(ctx, a.account.ID)
	noErr(t, "Account", err)
	if got.ID != a.account.ID || !bytes.Equal(got.PublicKey, a.account.PublicKey) {
		t.Fatalf("Account = %+v, want %+v", got, a.account)
	}
	sameTime(t, "Account.CreatedAt", got.CreatedAt, a.account.CreatedAt)

	err = s.CreateAccount(ctx, store.NewAccount{Account: a.account, FirstDevice: a.devices[0]})
	wantErr(t, "CreateAccount twice", err, store.ErrExists)

	_, err = s.Account(ctx, identity.AccountIDFromKey(pubKey("nobody")))
	wantErr(t, "Account(unknown)", err, store.ErrNotFound)

	// The first device must belong to the account.
	b := newAccountValue("bob")
	other := a.devices[0]
	err = s.CreateAccount(ctx, store.NewAccount{Account: b, FirstDevice: other})
	wantErr(t, "CreateAccount with a foreign device", err, store.ErrInvalid)
	err = s.CreateAccount(ctx, store.NewAccount{Account: store.Account{ID: b.ID}, FirstDevice: other})
	wantErr(t, "CreateAccount without key", err, store.ErrInvalid)
	_, err = s.Account(ctx, b.ID)
	wantErr(t, "Account after refused registration", err, store.ErrNotFound)

	err = s.DeleteAccount(ctx, b.ID)
	wantErr(t, "DeleteAccount(unknown)", err, store.ErrNotFound)
}

// newAccountValue returns an account record without storing it.
func newAccountValue(label string) store.Account {
	pub := pubKey(label)
	return store.Account{ID: identity.AccountIDFromKey(pub), PublicKey: pub, CreatedAt: at(5)}
}

// firstDevice returns a first-device record for acct.
func firstDevice(acct store.Account, label string) store.Device {
	return store.Device{Account: acct.ID, ID: deviceID(label, 0), Certificate: []byte("cert"),
		SigningKey: pubKey(label + " device"), CreatedAt: at(5)}
}

func testInvites(t *testing.T, s store.Store) {
	ctx := context.Background()
	noErr(t, "CreateInvite", s.CreateInvite(ctx, "tok1", at(1)))
	wantErr(t, "CreateInvite twice", s.CreateInvite(ctx, "tok1", at(2)), store.ErrExists)
	wantErr(t, "CreateInvite empty", s.CreateInvite(ctx, "", at(2)), store.ErrInvalid)
	wantErr(t, "UseInvite unknown", s.UseInvite(ctx, "nope", at(3)), store.ErrNotFound)
	noErr(t, "UseInvite", s.UseInvite(ctx, "tok1", at(3)))
	wantErr(t, "UseInvite twice", s.UseInvite(ctx, "tok1", at(4)), store.ErrInviteUsed)
}

func testRegistrationWithInvite(t *testing.T, s store.Store) {
	ctx := context.Background()
	noErr(t, "CreateInvite", s.CreateInvite(ctx, "welcome", at(1)))
	carol := newAccountValue("carol")
	reg := store.NewAccount{Account: carol, FirstDevice: firstDevice(carol, "carol"), Invite: "unknown"}
	wantErr(t, "register with unknown invite", s.CreateAccount(ctx, reg), store.ErrNotFound)
	_, err := s.Account(ctx, carol.ID)
	wantErr(t, "account after refused invite", err, store.ErrNotFound)

	reg.Invite = "welcome"
	noErr(t, "register with invite", s.CreateAccount(ctx, reg))
	wantErr(t, "invite after registration", s.UseInvite(ctx, "welcome", at(9)), store.ErrInviteUsed)

	dave := newAccountValue("dave")
	reg = store.NewAccount{Account: dave, FirstDevice: firstDevice(dave, "dave"), Invite: "welcome"}
	wantErr(t, "register with used invite", s.CreateAccount(ctx, reg), store.ErrInviteUsed)
	_, err = s.Account(ctx, dave.ID)
	wantErr(t, "account after used invite", err, store.ErrNotFound)

	// A failed registration (account exists) must not consume the invite.
	noErr(t, "CreateInvite", s.CreateInvite(ctx, "second", at(1)))
	reg = store.NewAccount{Account: carol, FirstDevice: firstDevice(carol, "carol"), Invite: "second"}
	wantErr(t, "register existing account", s.CreateAccount(ctx, reg), store.ErrExists)
	noErr(t, "invite still usable", s.UseInvite(ctx, "second", at(10)))
}

func testDevices(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 3)

	d, err := s.Device(ctx, a.ref(1))
	noErr(t, "Device", err)
	if d.ID != a.devices[1].ID || d.Account != a.account.ID ||
		!bytes.Equal(d.Certificate, a.devices[1].Certificate) || !bytes.Equal(d.SigningKey, a.devices[1].SigningKey) {
		t.Fatalf("Device = %+v, want %+v", d, a.devices[1])
	}
	sameTime(t, "Device.CreatedAt", d.CreatedAt, a.devices[1].CreatedAt)
	if d.Revoked() {
		t.Fatal("new device is revoked")
	}

	wantErr(t, "AddDevice twice", s.AddDevice(ctx, a.devices[1]), store.ErrExists)
	stranger := newAccountValue("stranger")
	wantErr(t, "AddDevice to unknown account", s.AddDevice(ctx, firstDevice(stranger, "stranger")), store.ErrNotFound)
	_, err = s.Device(ctx, store.DeviceRef{Account: a.account.ID, Device: deviceID("alice", 9)})
	wantErr(t, "Device(unknown)", err, store.ErrNotFound)

	noErr(t, "RevokeDevice", s.RevokeDevice(ctx, a.ref(2), at(50)))
	noErr(t, "RevokeDevice again", s.RevokeDevice(ctx, a.ref(2), at(60)))
	wantErr(t, "RevokeDevice unknown", s.RevokeDevice(ctx, store.DeviceRef{Account: a.account.ID, Device: deviceID("x", 7)}, at(60)), store.ErrNotFound)

	list, err := s.Devices(ctx, a.account.ID)
	noErr(t, "Devices", err)
	if len(list) != 3 {
		t.Fatalf("Devices: %d devices, want 3", len(list))
	}
	for i, d := range list {
		if d.ID != a.devices[i].ID {
			t.Fatalf("Devices[%d] = %s, want %s (ordered by id)", i, d.ID, a.devices[i].ID)
		}
	}
	if list[0].Revoked() || !list[2].Revoked() {
		t.Fatalf("revocation flags wrong: %v %v", list[0].RevokedAt, list[2].RevokedAt)
	}
	sameTime(t, "RevokedAt (first revocation wins)", list[2].RevokedAt, at(50))

	_, err = s.Devices(ctx, stranger.ID)
	wantErr(t, "Devices(unknown account)", err, store.ErrNotFound)
}

func testUsernames(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 1)
	b := newAccount(t, s, "bob", 1)

	noErr(t, "ClaimUsername", s.ClaimUsername(ctx, store.Username{Name: "alice", Account: a.account.ID, Claim: []byte("sig1"), CreatedAt: at(1)}))
	u, err := s.LookupUsername(ctx, "alice")
	noErr(t, "LookupUsername", err)
	if u.Account != a.account.ID || string(u.Claim) != "sig1" {
		t.Fatalf("LookupUsername = %+v", u)
	}
	sameTime(t, "Username.CreatedAt", u.CreatedAt, at(1))

	err = s.ClaimUsername(ctx, store.Username{Name: "alice", Account: b.account.ID, Claim: []byte("x"), CreatedAt: at(2)})
	wantErr(t, "claim a taken name", err, store.ErrExists)

	noErr(t, "reclaim own name", s.ClaimUsername(ctx, store.Username{Name: "alice", Account: a.account.ID, Claim: []byte("sig2"), CreatedAt: at(3)}))
	u, _ = s.LookupUsername(ctx, "alice")
	if string(u.Claim) != "sig2" {
		t.Fatalf("claim not updated: %q", u.Claim)
	}

	// A new name replaces the old one.
	noErr(t, "claim second name", s.ClaimUsername(ctx, store.Username{Name: "alicia", Account: a.account.ID, Claim: []byte("sig3"), CreatedAt: at(4)}))
	_, err = s.LookupUsername(ctx, "alice")
	wantErr(t, "old name after rename", err, store.ErrNotFound)
	u, err = s.UsernameOf(ctx, a.account.ID)
	noErr(t, "UsernameOf", err)
	if u.Name != "alicia" {
		t.Fatalf("UsernameOf = %q", u.Name)
	}
	noErr(t, "bob takes freed name", s.ClaimUsername(ctx, store.Username{Name: "alice", Account: b.account.ID, Claim: []byte("b"), CreatedAt: at(5)}))

	wantErr(t, "release someone else's name", s.ReleaseUsername(ctx, a.account.ID, "alice"), store.ErrNotFound)
	noErr(t, "release own name", s.ReleaseUsername(ctx, a.account.ID, "alicia"))
	_, err = s.UsernameOf(ctx, a.account.ID)
	wantErr(t, "UsernameOf after release", err, store.ErrNotFound)
	wantErr(t, "release twice", s.ReleaseUsername(ctx, a.account.ID, "alicia"), store.ErrNotFound)

	err = s.ClaimUsername(ctx, store.Username{Name: "", Account: a.account.ID})
	wantErr(t, "empty name", err, store.ErrInvalid)
	ghost := newAccountValue("ghost")
	err = s.ClaimUsername(ctx, store.Username{Name: "ghost", Account: ghost.ID, Claim: []byte("g")})
	wantErr(t, "claim for unknown account", err, store.ErrNotFound)
}

func testDeleteAccount(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 2)
	b := newAccount(t, s, "bob", 1)
	g := store.GroupID("group-ab")
	noErr(t, "CreateGroup", s.CreateGroup(ctx, g, b.ref(0), at(1)))
	_, err := s.AppendCommit(ctx, store.Commit{Group: g, ID: msgID("c", 0), Epoch: 0, Sender: b.ref(0), Data: []byte("c0"), At: at(2),
		Added:    []store.DeviceRef{a.ref(0), a.ref(1)},
		Welcomes: []store.MailboxMessage{{To: a.ref(0), ID: msgID("w", 0), Data: []byte("w")}}})
	noErr(t, "AppendCommit", err)
	noErr(t, "ClaimUsername", s.ClaimUsername(ctx, store.Username{Name: "alice", Account: a.account.ID, Claim: []byte("s"), CreatedAt: at(1)}))
	noErr(t, "UploadKeyPackages", s.UploadKeyPackages(ctx, a.ref(0), []store.KeyPackage{{Data: []byte("kp")}, {Data: []byte("lr"), LastResort: true}}))
	_, err = s.Deliver(ctx, store.MailboxMessage{To: a.ref(1), ID: msgID("m", 1), Kind: store.MailLink, Data: []byte("m"), At: at(3)})
	noErr(t, "Deliver", err)
	noErr(t, "UploadKeyPackages bob", s.UploadKeyPackages(ctx, b.ref(0), []store.KeyPackage{{Data: []byte("bkp")}}))

	noErr(t, "DeleteAccount", s.DeleteAccount(ctx, a.account.ID))

	_, err = s.Account(ctx, a.account.ID)
	wantErr(t, "Account after delete", err, store.ErrNotFound)
	_, err = s.Devices(ctx, a.account.ID)
	wantErr(t, "Devices after delete", err, store.ErrNotFound)
	_, err = s.Device(ctx, a.ref(0))
	wantErr(t, "Device after delete", err, store.ErrNotFound)
	_, err = s.LookupUsername(ctx, "alice")
	wantErr(t, "username after delete", err, store.ErrNotFound)
	n, err := s.CountKeyPackages(ctx, a.ref(0))
	noErr(t, "CountKeyPackages", err)
	if n != 0 {
		t.Fatalf("%d key packages left", n)
	}
	_, err = s.ClaimKeyPackages(ctx, a.account.ID)
	wantErr(t, "ClaimKeyPackages after delete", err, store.ErrNotFound)
	for i := range a.devices {
		box, err := s.ReadMailbox(ctx, a.ref(i), 0, 100)
		noErr(t, "ReadMailbox", err)
		if len(box) != 0 {
			t.Fatalf("device %d: %d mailbox entries left", i, len(box))
		}
		ms, err := s.Memberships(ctx, a.ref(i))
		noErr(t, "Memberships", err)
		if len(ms) != 0 {
			t.Fatalf("device %d: %d memberships left", i, len(ms))
		}
	}
	members, err := s.Members(ctx, g)
	noErr(t, "Members", err)
	if len(members) != 1 || members[0].Device != b.ref(0) {
		t.Fatalf("Members after delete = %+v, want only bob", members)
	}
	// Bob is untouched.
	if n, _ := s.CountKeyPackages(ctx, b.ref(0)); n != 1 {
		t.Fatalf("bob's key packages: %d, want 1", n)
	}
	if _, err := s.Account(ctx, b.account.ID); err != nil {
		t.Fatalf("bob's account: %v", err)
	}
	// The account can register again from scratch.
	a2 := newAccount(t, s, "alice", 1)
	if _, err := s.UsernameOf(ctx, a2.account.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("re-registered account inherited a username: %v", err)
	}
}
