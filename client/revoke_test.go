package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	srvstore "github.com/parley-im/parley/server/store"
)

// cutRevoke is the server's store with a hook run after each device
// revocation is stored, before the server answers.
type cutRevoke struct {
	srvstore.Store
	mu    sync.Mutex
	calls int
	after func(call int)
}

func (s *cutRevoke) RevokeDevice(ctx context.Context, ref srvstore.DeviceRef, at time.Time) error {
	err := s.Store.RevokeDevice(ctx, ref, at)
	s.mu.Lock()
	s.calls++
	n, f := s.calls, s.after
	s.mu.Unlock()
	if f != nil {
		f(n)
	}
	return err
}

func (s *cutRevoke) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// A revocation whose connection breaks after the server stored it, before
// its answer arrives, is sent again on a new connection; the server
// accepts the repeated revocation, so RevokeDevice succeeds and goes on to
// remove the device from the account's groups. Revoking the device once
// more succeeds too.
func TestRevokeDeviceRetriedWhenCut(t *testing.T) {
	cut := &cutRevoke{}
	h := newHarness(t, testserver.WithConfig(func(cfg *server.Config) {
		cut.Store = cfg.Store
		cfg.Store = cut
	}))
	alice, bob := h.account("alice"), h.account("bob")
	phone := h.link(alice)
	chat, err := alice.CreateGroup(h.ctx, "revoked", []string{"bob@" + alice.host})
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(bob, chat)
	h.chatOn(phone, chat)
	cut.mu.Lock()
	cut.after = func(call int) {
		if call == 1 {
			alice.dropConnection() // the answer to the first revocation is lost
		}
	}
	cut.mu.Unlock()

	if err := alice.RevokeDevice(h.ctx, phone.id.Device); err != nil {
		t.Fatalf("revoke with its connection cut: %v", err)
	}
	if n := cut.count(); n != 2 {
		t.Fatalf("the server stored %d revocations, want 2 (the cut one and its retry)", n)
	}
	devs, err := alice.Devices(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.ID == phone.id.Device {
			t.Fatal("the revoked device is still listed")
		}
	}
	h.eventually("bob's group loses the revoked device", func() error {
		devs, err := bob.ChatDevices(h.ctx, chat)
		if err != nil {
			return err
		}
		if slices.Contains(devs[alice.Me().AccountID], phone.id.Device) {
			return fmt.Errorf("alice's devices in bob's group: %v", devs[alice.Me().AccountID])
		}
		if len(devs[alice.Me().AccountID]) != 1 {
			return fmt.Errorf("alice's devices in bob's group: %v", devs[alice.Me().AccountID])
		}
		return nil
	})

	// The same revocation again: the server accepts it.
	if err := alice.RevokeDevice(h.ctx, phone.id.Device); err != nil {
		t.Fatalf("repeated revocation: %v", err)
	}
	if n := cut.count(); n != 3 {
		t.Fatalf("the server stored %d revocations, want 3", n)
	}
}
