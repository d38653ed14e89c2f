// Package storetest is the conformance suite every store.Store
// implementation must pass. A backend's test calls [Run] with a function
// that opens a fresh, empty store configured with [Options]:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(t.Context(), t.TempDir(), storetest.Options())
//			...
//		})
//	}
//
// [Bench] measures group-log appends per second with many writers.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

// MailboxLimit is the mailbox limit the suite expects the store to enforce.
const MailboxLimit = 20

// Options returns the options a store under test must be opened with.
func Options() store.Options {
	return store.Options{MailboxLimit: MailboxLimit}
}

// t0 is the suite's clock origin.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// at returns t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// Run runs the whole suite; each subtest gets its own store from newStore,
// which Run closes when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"Invites", testInvites},
		{"RegistrationWithInvite", testRegistrationWithInvite},
		{"Devices", testDevices},
		{"Usernames", testUsernames},
		{"KeyPackages", testKeyPackages},
		{"KeyPackageClaimsConcurrent", testKeyPackageClaimsConcurrent},
		{"Groups", testGroups},
		{"AppendMessage", testAppendMessage},
		{"AppendVisible", testAppendVisible},
		{"AppendAsync", testAppendAsync},
		{"AppendCommit", testAppendCommit},
		{"CommitRace", testCommitRace},
		{"MixedWorkload", testMixedWorkload},
		{"Cursors", testCursors},
		{"ReadGroup", testReadGroup},
		{"Mailbox", testMailbox},
		{"MailboxLimit", testMailboxLimit},
		{"Expiry", testExpiry},
		{"ExpiryMany", testExpiryMany},
		{"ExpiryOrder", testExpiryOrder},
		{"RevokedDevice", testRevokedDevice},
		{"DeleteAccount", testDeleteAccount},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"ConcurrentResends", testConcurrentResends},
		{"Blobs", testBlobs},
		{"BlobQuotaConcurrent", testBlobQuotaConcurrent},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// fixture is an account with devices created by newAccount.
type fixture struct {
	account store.Account
	devices []store.Device
}

func (f fixture) ref(i int) store.DeviceRef { return f.devices[i].Ref() }

// pubKey derives a deterministic 32-byte stand-in for an Ed25519 key.
func pubKey(label string) []byte {
	sum := sha256.Sum256([]byte("account key " + label))
	return sum[:]
}

// deviceID derives a deterministic device id; n orders ids within an account.
func deviceID(label string, n int) identity.DeviceID {
	var d identity.DeviceID
	sum := sha256.Sum256([]byte("device " + label))
	copy(d[:], sum[:])
	d[0] = byte(n + 1) // keeps the devices of one account ordered by n
	return d
}

// msgID derives a deterministic message id.
func msgID(label string, n int) store.MessageID {
	var m store.MessageID
	sum := sha256.Sum256([]byte("message " + label))
	copy(m[:], sum[:])
	binary.BigEndian.PutUint64(m[8:], uint64(n))
	return m
}

// newAccount registers an account with nDevices devices.
func newAccount(t testing.TB, s store.Store, label string, nDevices int) fixture {
	t.Helper()
	ctx := context.Background()
	pub := pubKey(label)
	f := fixture{account: store.Account{ID: identity.AccountIDFromKey(pub), PublicKey: pub, CreatedAt: at(0)}}
	for i := 0; i < nDevices; i++ {
		f.devices = append(f.devices, store.Device{
			Account: f.account.ID, ID: deviceID(label, i),
			Certificate: []byte("certificate " + label + fmt.Sprint(i)),
			SigningKey:  pubKey(label + " device " + fmt.Sprint(i)),
			CreatedAt:   at(i),
		})
	}
	if err := s.CreateAccount(ctx, store.NewAccount{Account: f.account, FirstDevice: f.devices[0]}); err != nil {
		t.Fatalf("CreateAccount(%s): %v", label, err)
	}
	for _, d := range f.devices[1:] {
		if err := s.AddDevice(ctx, d); err != nil {
			t.Fatalf("AddDevice(%s): %v", label, err)
		}
	}
	return f
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// noErr fails the test on a non-nil error.
func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// sameTime fails unless two times are the same instant.
func sameTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: time %v, want %v", what, got, want)
	}
}
