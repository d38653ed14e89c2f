package client_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	srvstore "github.com/parley-im/parley/server/store"
)

// stepHook is the server's store with a hook run after each account
// lookup's device listing, key-package upload and group registration is
// done, before the server answers.
type stepHook struct {
	srvstore.Store
	mu    sync.Mutex
	calls map[string]int
	after func(method string, call int)
}

func (s *stepHook) called(method string) {
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[method]++
	n, f := s.calls[method], s.after
	s.mu.Unlock()
	if f != nil {
		f(method, n)
	}
}

func (s *stepHook) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *stepHook) Devices(ctx context.Context, account identity.AccountID) ([]srvstore.Device, error) {
	d, err := s.Store.Devices(ctx, account)
	s.called("Devices")
	return d, err
}

func (s *stepHook) UploadKeyPackages(ctx context.Context, dev srvstore.DeviceRef, pkgs []srvstore.KeyPackage) error {
	err := s.Store.UploadKeyPackages(ctx, dev, pkgs)
	s.called("UploadKeyPackages")
	return err
}

func (s *stepHook) CreateGroup(ctx context.Context, id srvstore.GroupID, creator srvstore.DeviceRef, at time.Time) error {
	err := s.Store.CreateGroup(ctx, id, creator, at)
	s.called("CreateGroup")
	return err
}

// TestRecoverStepsRetryWhenCut: a recovery whose connection breaks after
// the server did one of its steps, before its answer arrived (the account
// lookup, the key-package upload, the self group's registration), does
// the step again on a new connection and completes: the profile it made
// is usable, its self group registered and its key packages claimable.
func TestRecoverStepsRetryWhenCut(t *testing.T) {
	for _, method := range []string{"Devices", "UploadKeyPackages", "CreateGroup"} {
		t.Run(method, func(t *testing.T) {
			hook := &stepHook{}
			e := newLinkEnv(t, testserver.WithConfig(func(cfg *server.Config) {
				hook.Store = cfg.Store
				cfg.Store = hook
			}))
			ctx := e.ctx
			bob := e.account("bob")
			o := e.opts()
			o.Username = "alice"
			alice, err := client.Init(ctx, t.TempDir(), e.srv.URL, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { alice.Close() })
			words, err := alice.RecoveryWords(ctx)
			if err != nil {
				t.Fatal(err)
			}
			alice.Close()

			proxy := newCutProxy(t, strings.TrimPrefix(e.srv.HTTP, "http://"))
			before := hook.count(method)
			// The device listing cut is the account lookup's, after the
			// profile is made (after its first key-package upload), not
			// the device registration's before it.
			var cutMu sync.Mutex
			armed := method != "Devices"
			done := false
			hook.mu.Lock()
			hook.after = func(m string, _ int) {
				cutMu.Lock()
				defer cutMu.Unlock()
				if m == "UploadKeyPackages" {
					armed = true
				}
				if m == method && armed && !done {
					done = true
					proxy.cut() // the answer to the recovery's step is lost
				}
			}
			hook.mu.Unlock()
			rec, err := client.Recover(ctx, t.TempDir(), "http://"+proxy.ln.Addr().String(), strings.Join(words, " "), e.opts(), nil)
			if err != nil {
				t.Fatalf("recovery with its connection cut after %s: %v", method, err)
			}
			defer rec.Close()
			if n := hook.count(method) - before; n < 2 {
				t.Fatalf("the server did %s %d times during the recovery, want the cut one and its retry", method, n)
			}
			self, err := rec.SelfChat(ctx)
			if err != nil {
				t.Fatalf("recovered profile has no self chat: %v", err)
			}
			if _, err := rec.Send(ctx, self, "note to self"); err != nil {
				t.Fatalf("sending to the recovered self chat: %v", err)
			}
			// Bob can start a chat with the recovered device: its key
			// packages are on the server.
			if _, err := bob.CreateGroup(ctx, "after", []string{"alice@127.0.0.1"}); err != nil {
				t.Fatalf("bob adds the recovered alice: %v", err)
			}
		})
	}
}
