package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
)

// rejoinFixture returns an account key, a device certificate it issued
// and a signed request of that device.
func rejoinFixture(t testing.TB, now time.Time) (*identity.AccountKey, *identity.DeviceCertificate, []byte) {
	t.Helper()
	key, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := identity.NewDeviceID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.IssueDeviceCertificate(key, dev, pub, uint16(mls.X25519AES128GCM), now)
	if err != nil {
		t.Fatal(err)
	}
	gone := identity.DeviceID{1, 2, 3}
	data, err := marshalRejoin(key, cert, now, []store.GroupID{"group-one", "group-two"}, []identity.DeviceID{gone})
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, data
}

func TestRejoinRequestCodec(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	key, cert, data := rejoinFixture(t, now)
	r, err := parseRejoin(data, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.account() != key.ID() || r.cert.DeviceID() != cert.DeviceID() || !slices.Equal(r.groups, []store.GroupID{"group-one", "group-two"}) ||
		len(r.gone) != 1 || r.gone[0] != (identity.DeviceID{1, 2, 3}) || !r.at.Equal(now) {
		t.Fatalf("parsed %+v", r)
	}

	// Every flipped byte is refused: the magic, the certificate, the
	// groups and gone devices are signed, and the signature is checked.
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, err := parseRejoin(bad, now); err == nil {
			t.Fatalf("a request with byte %d flipped was accepted", i)
		}
	}
	if _, err := parseRejoin(data[:len(data)-1], now); err == nil {
		t.Fatal("a truncated request was accepted")
	}
	if _, err := parseRejoin(append(bytes.Clone(data), 0), now); err == nil {
		t.Fatal("a request with trailing bytes was accepted")
	}
	// Too old, or from too far ahead: a replay cannot bring back a
	// device the account revoked since.
	for _, at := range []time.Time{now.Add(rejoinMaxAge + time.Minute), now.Add(-rejoinMaxAge - time.Minute)} {
		if _, err := parseRejoin(data, at); err == nil {
			t.Fatalf("a request from %s accepted at %s", now, at)
		}
	}
	// Another account's key cannot speak for this certificate's account:
	// a server that swaps in its own signature is refused.
	other, _ := identity.GenerateAccountKey(rand.Reader)
	forged, err := marshalRejoin(other, cert, now, []store.GroupID{"group-one"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseRejoin(forged, now); !errors.Is(err, errBadMember) {
		t.Fatalf("a request signed by another account key: %v", err)
	}
	// A request may not name its own device as gone.
	self, err := marshalRejoin(key, cert, now, []store.GroupID{"g"}, []identity.DeviceID{cert.DeviceID()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseRejoin(self, now); err == nil {
		t.Fatal("a request naming its own device as gone was accepted")
	}
	if _, err := marshalRejoin(key, cert, now, nil, nil); err == nil {
		t.Fatal("a request without groups was built")
	}
}

// FuzzParseRejoin: a rejoin request comes from anyone through the mailbox;
// the parser never panics, and what it accepts re-encodes to the same
// fields under a valid signature.
func FuzzParseRejoin(f *testing.F) {
	now := time.Unix(1_900_000_000, 0)
	_, _, data := rejoinFixture(f, now)
	f.Add(data)
	f.Add([]byte(rejoinMagic))
	f.Add(data[:len(rejoinMagic)+10])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRejoin(b, now)
		if err != nil {
			return
		}
		if err := r.cert.Verify(); err != nil || len(r.groups) == 0 || len(r.groups) > rejoinMaxGroups || len(r.gone) > rejoinMaxGone ||
			slices.Contains(r.gone, r.cert.DeviceID()) {
			t.Fatalf("accepted an invalid request: %+v", r)
		}
	})
}

// TestRejoinRules: a member answers a rejoin request only for an account
// that is already in the group. The positive control: alice's request
// naming her first device as gone makes bob remove it while her second
// stays. The outsider dave's request, validly signed by his own account
// key, adds nobody.
func TestRejoinRules(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	a1, bob, dave := h.account("alice"), h.account("bob"), h.account("dave")
	a2 := h.link(a1)
	chat, err := a1.CreateGroup(ctx, "members only", []string{"bob@" + a1.host})
	if err != nil {
		t.Fatal(err)
	}
	h.eventually("bob sees both of alice's devices", func() error {
		got, err := bob.ChatDevices(ctx, chat)
		if err != nil || len(got[a1.account()]) != 2 {
			return fmt.Errorf("%v %v", got, err)
		}
		return nil
	})
	conv, err := bob.st.Conversation(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(from *Client, gone []identity.DeviceID) {
		t.Helper()
		data, err := marshalRejoin(from.id.AccountKey, from.id.Certificate, from.now(), []store.GroupID{conv.Group}, gone)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseRejoin(data, bob.now())
		if err != nil {
			t.Fatal(err)
		}
		conn, err := bob.connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bob.mu.Lock()
		defer bob.mu.Unlock()
		if err := bob.answerRejoin(ctx, conn, r); err != nil {
			t.Fatal(err)
		}
	}
	answer(dave, nil)
	got, err := bob.ChatDevices(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[dave.account()]) != 0 || len(got) != 2 {
		t.Fatalf("an outsider's rejoin request changed the group: %v", got)
	}
	answer(a2, []identity.DeviceID{a1.id.Device})
	got, err = bob.ChatDevices(ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	if d := got[a1.account()]; len(d) != 1 || d[0] != a2.id.Device {
		t.Fatalf("after alice's request naming her first device gone, her devices are %v", d)
	}
}
