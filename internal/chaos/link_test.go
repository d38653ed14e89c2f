package chaos

import (
	"context"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/internal/testserver"
)

var opts = clientOptions(nil)

// TestLinkSurvivesConnectionDrop: a new device waiting for approval loses
// its connection once (a network flap); the approval must still complete.
func TestLinkSurvivesConnectionDrop(t *testing.T) {
	srv := testserver.Start(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProxy(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetBackend(u.Host)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	proxied := "ws://" + p.Addr() + "/v1/ws"
	approver, err := client.Init(ctx, t.TempDir(), srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer approver.Close()
	go func() { _ = approver.Run(ctx) }()
	pl, err := client.NewLink(ctx, t.TempDir(), proxied, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	waited := make(chan error, 1)
	go func() {
		c, err := pl.Wait(ctx)
		if err == nil {
			c.Close()
		}
		waited <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if p.Cut(1) == 0 {
		t.Fatal("no connection to cut")
	}
	if err := approver.ApproveLink(ctx, pl.Request()); err != nil {
		t.Fatalf("approve: %v", err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("the new device gave up after one dropped connection: %v", err)
	}
}

// TestLinkSurvivesRepeatedCuts: both devices reach the server through the
// proxy, which cuts every connection again and again while the link runs
// (before the bundle arrives, while the new device announces itself, while
// the approver adds it); the link completes, the new device is in the
// account's self group, and it can send to the approver.
func TestLinkSurvivesRepeatedCuts(t *testing.T) {
	srv := testserver.Start(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProxy(time.Millisecond, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetBackend(u.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	proxied := "ws://" + p.Addr() + "/v1/ws"
	approver, err := client.Init(ctx, t.TempDir(), proxied, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer approver.Close()
	go func() { _ = approver.Run(ctx) }()
	pl, err := client.NewLink(ctx, t.TempDir(), proxied, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	stop := make(chan struct{})
	cutDone := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				cutDone <- n
				return
			case <-time.After(time.Duration(15+rand.IntN(45)) * time.Millisecond):
				n += p.Cut(1)
			}
		}
	}()
	approved := make(chan error, 1)
	go func() { approved <- approver.ApproveLink(ctx, pl.Request()) }()
	c, err := pl.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	defer c.Close()
	go func() { _ = c.Run(ctx) }()
	if err := <-approved; err != nil {
		t.Fatalf("approve: %v", err)
	}
	close(stop)
	cuts := <-cutDone
	t.Logf("%d connections cut while linking", cuts)
	if cuts < 3 {
		t.Fatalf("only %d cuts: the test did not exercise reconnection", cuts)
	}
	if c.Me().AccountID != approver.Me().AccountID {
		t.Fatalf("linked into %s, want %s", c.Me().AccountID, approver.Me().AccountID)
	}
	devs, err := approver.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 {
		t.Fatalf("the account has %d devices, want 2", len(devs))
	}
}
