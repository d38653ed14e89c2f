package server_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/bus"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// TestTwoServersOverNATS runs two server processes' worth of servers on one
// PostgreSQL database with NATS buses: a message sent to one server is
// pushed at once to a device connected to the other.
func TestTwoServersOverNATS(t *testing.T) {
	a, b := twoServers(t, 0)
	ctx := ts.Context(t)

	alice, bob, group := twoPartyGroup(t, a)
	cb := b.Connect(t, bob.Devices[0])
	// Authentication returns once bob's subscription is known to NATS.
	ca := a.Connect(t, alice.Devices[0])
	id := ts.MessageID()
	if _, err := ca.SendMessage(ctx, group, 1, id, []byte("across")); err != nil {
		t.Fatal(err)
	}
	d := ts.NextDelivery(t, cb)
	if !bytes.Equal(d.GetMessageId(), id[:]) || string(d.GetData()) != "across" {
		t.Fatalf("bob on server b got %v", d)
	}
}

// twoServers starts two servers sharing a fresh PostgreSQL database, each
// with its own NATS connection, as two server processes would; ttl is
// their member cache TTL (0: the default).
func twoServers(t *testing.T, ttl time.Duration) (a, b *ts.Server) {
	t.Helper()
	natsURL := os.Getenv("PARLEY_TEST_NATS")
	if natsURL == "" || ts.Postgres() == "" {
		t.Skip("needs PARLEY_TEST_NATS and PARLEY_TEST_POSTGRES")
	}
	dsn := ts.FreshPostgres(t)
	prefix := "parleysrvtest" + string(ts.NewIdentity(t).ID[:8])
	newBus := func() bus.Bus {
		b, err := bus.NewNATS(natsURL, bus.NATSOptions{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	cfg := func(c *server.Config) { c.Bus, c.MemberCacheTTL = newBus(), ttl }
	return ts.StartDSN(t, dsn, ts.WithConfig(cfg)), ts.StartDSN(t, dsn, ts.WithConfig(cfg))
}

// TestRemovedDeviceNotRoutedAcrossServers: server b has a group's member
// list cached; a commit on server a removes carol; the very next message
// sent through b is not pushed to carol. The member cache TTL is an hour,
// so only the invalidation over the bus can make b forget carol.
func TestRemovedDeviceNotRoutedAcrossServers(t *testing.T) {
	a, b := twoServers(t, time.Hour)
	ctx := ts.Context(t)
	alice, bob, group := twoPartyGroup(t, a)
	carol := a.NewAccount(t)
	ca := a.Connect(t, alice.Devices[0])
	if _, err := ts.Commit(ctx, ca, group, 1, []byte("commit-1"), []byte("welcome-carol"), []*ts.Device{carol.Devices[0]}, nil); err != nil {
		t.Fatal(err)
	}
	cb := b.Connect(t, bob.Devices[0])
	cc := b.Connect(t, carol.Devices[0])
	send := func(data string) [16]byte {
		t.Helper()
		id := ts.MessageID()
		if _, err := cb.SendMessage(ctx, group, 2, id, []byte(data)); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Server b reads and caches [alice, bob, carol]; everyone gets it.
	send("before")
	for _, c := range []*wireclient.Client{ca, cc} {
		if d := nextOfKind(t, c, wire.MessageKind_MESSAGE_KIND_APPLICATION); string(d.GetData()) != "before" {
			t.Fatalf("got %q, want the message sent before the removal", d.GetData())
		}
	}
	// Carol is removed through server a; as a member before the commit
	// she is told (the commit is pushed to her).
	if _, err := ts.Commit(ctx, ca, group, 2, []byte("commit-2"), nil, nil, []*ts.Device{carol.Devices[0]}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wireclient.Client{cb, cc} {
		if d := nextOfKind(t, c, wire.MessageKind_MESSAGE_KIND_COMMIT); string(d.GetData()) != "commit-2" {
			t.Fatalf("got %q, want the commit that removes carol", d.GetData())
		}
	}
	// Bob (on b) sends at once: alice gets it, carol must not.
	id := send("after")
	if d := nextOfKind(t, ca, wire.MessageKind_MESSAGE_KIND_APPLICATION); !bytes.Equal(d.GetMessageId(), id[:]) {
		t.Fatalf("alice got %v", d)
	}
	select {
	case ev := <-cc.Events():
		if d := ev.GetDelivery(); d != nil {
			t.Fatalf("removed device got a message routed by server b's stale member cache: %q", d.GetData())
		}
	case <-time.After(300 * time.Millisecond):
	}
	// Nor does a fetch hand it to her: the store's cursor stops at her
	// removal.
	f, err := cc.Fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.GetDeliveries() {
		if bytes.Equal(d.GetMessageId(), id[:]) {
			t.Fatal("removed device fetched a message sent after its removal")
		}
	}
}

// nextOfKind waits for the next pushed delivery of kind, skipping others
// (a committer is pushed its own commit).
func nextOfKind(t *testing.T, c *wireclient.Client, kind wire.MessageKind) *wire.Delivery {
	t.Helper()
	for {
		if d := ts.NextDelivery(t, c); d.GetKind() == kind {
			return d
		}
	}
}
