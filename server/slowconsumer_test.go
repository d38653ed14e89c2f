package server_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/transport"
	"github.com/parley-im/parley/wire/wireclient"
)

// TestSlowConsumerClosedWith1008: a device that stops reading its pushes
// is disconnected once its send queue passes the limit, and when it reads
// again it finds the close frame (status 1008 and the documented reason)
// after what was already on its way; the sender is not affected.
func TestSlowConsumerClosedWith1008(t *testing.T) {
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) { c.Limits.MaxQueueBytes = 64 << 10 }))
	alice, bob, group := twoPartyGroup(t, srv)
	ctx := ts.Context(t)
	ca := srv.Connect(t, alice.Devices[0])
	// Bob's client stops reading its socket once one event waits.
	cb, err := wireclient.Dial(ctx, srv.URL, &wireclient.Options{EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.CloseNow()
	if _, err := cb.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cb.Authenticate(ctx, bob.ID, bob.Devices[0].ID, bob.Devices[0].Key); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("p"), 16<<10)
	sent := 0
	for ; sent < 5000 && slowConsumers(t, srv) == 0; sent++ {
		if _, err := ca.SendMessage(ctx, group, 1, ts.MessageID(), payload); err != nil {
			t.Fatalf("the sender is affected by the slow consumer: %v", err)
		}
	}
	if slowConsumers(t, srv) != 1 {
		t.Fatalf("no slow consumer after %d messages of 16 KiB", sent)
	}
	// Bob reads again: the deliveries already on their way, then the end.
	got := 0
	timeout := time.After(20 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-cb.Events():
			if open {
				got++
			}
		case <-timeout:
			t.Fatal("bob's connection was not closed")
		}
	}
	var ce websocket.CloseError
	if !errors.As(cb.Err(), &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != transport.SlowConsumerReason {
		t.Fatalf("bob's connection ended with %v, want close status 1008 %q", cb.Err(), transport.SlowConsumerReason)
	}
	if got == 0 || got >= sent {
		t.Fatalf("bob got %d of %d pushes before the close, want those in flight only", got, sent)
	}
	t.Logf("%d sent, %d pushed before the close frame", sent, got)
	alive(t, ca)
}

// slowConsumers reads parley_slow_consumers_total from the server's
// /metrics.
func slowConsumers(t *testing.T, srv *ts.Server) float64 {
	t.Helper()
	resp, err := http.Get(srv.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "parley_slow_consumers_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no parley_slow_consumers_total in /metrics")
	return 0
}
