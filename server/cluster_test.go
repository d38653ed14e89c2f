package server_test

import (
	"bytes"
	"os"
	"testing"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/bus"
)

// TestTwoServersOverNATS runs two server processes' worth of servers on one
// PostgreSQL database with NATS buses: a message sent to one server is
// pushed at once to a device connected to the other.
func TestTwoServersOverNATS(t *testing.T) {
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
	a := ts.StartDSN(t, dsn, ts.WithConfig(func(c *server.Config) { c.Bus = newBus() }))
	b := ts.StartDSN(t, dsn, ts.WithConfig(func(c *server.Config) { c.Bus = newBus() }))
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
