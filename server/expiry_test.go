package server_test

import (
	"testing"
	"time"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/wire"
)

// TestExpirySweep: entries older than the TTL are deleted by the periodic
// sweep; newer ones stay.
func TestExpirySweep(t *testing.T) {
	clk := &clock{}
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) {
		c.Now = clk.now
		c.TTL = time.Hour
		c.SweepInterval = 10 * time.Millisecond
	}))
	ctx := ts.Context(t)
	alice, bob := srv.NewAccount(t), srv.NewAccount(t)
	ca := srv.Connect(t, alice.Devices[0])
	send := func(data string) {
		id := ts.MessageID()
		_, err := ca.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
			To: bob.Devices[0].WireRef(), MessageId: id[:], Data: []byte(data),
		}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	send("old")
	clk.advance(50 * time.Minute)
	send("new")
	clk.advance(20 * time.Minute) // "old" is now 70 minutes old, "new" 20
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := srv.Store.MailboxDepth(ctx, bob.Devices[0].Ref())
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailbox still holds %d entries", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cb := srv.Connect(t, bob.Devices[0])
	f, err := cb.Fetch(ctx, 0)
	if err != nil || len(f.GetDeliveries()) != 1 || string(f.GetDeliveries()[0].GetData()) != "new" {
		t.Fatalf("after sweep: %v, %v", f, err)
	}
}
