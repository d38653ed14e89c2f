package client

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/wire/wireclient"
)

// An operation whose connection is closed while its request is in flight,
// more often in a row than maxOpAttempts, is retried on a new connection
// until it gets through: the server answers every new connection, so the
// operation does not fail with the closed connection's error.
func TestOpRetriedWhenClosedInFlight(t *testing.T) {
	h := newHarness(t)
	a := h.account("alice")
	const breaks = maxOpAttempts + 4
	tries := 0
	var seen []error
	err := a.withConn(h.ctx, func(conn *wireclient.Client) error {
		tries++
		if tries > breaks {
			_, err := conn.Ping(h.ctx)
			return err
		}
		closed := make(chan struct{})
		go func() {
			conn.CloseNow()
			close(closed)
		}()
		_, err := conn.Fetch(h.ctx, 1) // in flight while the connection closes
		<-closed
		if err == nil {
			_, err = conn.Ping(h.ctx) // answered first: this one is not
		}
		seen = append(seen, err)
		return err
	})
	if err != nil {
		t.Fatalf("after %d tries: %v", tries, err)
	}
	if tries != breaks+1 {
		t.Fatalf("%d tries, want %d", tries, breaks+1)
	}
	for _, err := range seen {
		if !errors.Is(err, net.ErrClosed) && !errors.Is(err, wireclient.ErrClosed) {
			t.Fatalf("a try failed with %v, not a closed connection", err)
		}
	}
}

// dropping drops c's connection at random (every 10-40 ms) until the
// returned stop is called.
func dropping(c *Client) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(10+rand.IntN(30)) * time.Millisecond):
				c.dropConnection()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// Creating groups and chats and leaving them succeed while the network
// drops the creator's connection under them: each step that talks to the
// server is retried on a new connection.
func TestCreateAndLeaveUnderDrops(t *testing.T) {
	h := newHarness(t)
	a, b := h.account("alice"), h.account("bob")
	host := a.host
	stop := dropping(a)
	var groups []ChatID
	for i := range 4 {
		g, err := a.CreateGroup(h.ctx, fmt.Sprintf("drops-%d", i), []string{"bob@" + host})
		if err != nil {
			stop()
			t.Fatalf("create group %d: %v", i, err)
		}
		groups = append(groups, g)
	}
	direct, err := a.StartDirect(h.ctx, "bob@"+host)
	if err != nil {
		stop()
		t.Fatalf("start direct: %v", err)
	}
	if err := a.Leave(h.ctx, groups[0]); err != nil {
		stop()
		t.Fatalf("leave: %v", err)
	}
	stop()
	for _, g := range append(groups, direct) {
		h.chatOn(b, g)
	}
	h.eventually("bob sees alice leave", func() error {
		conv, err := b.st.Conversation(h.ctx, groups[0])
		if err != nil {
			return err
		}
		for _, m := range conv.Members {
			if m == a.Me().AccountID {
				return fmt.Errorf("alice is still a member")
			}
		}
		return nil
	})
	h.noUndecryptable(a, b)
}
