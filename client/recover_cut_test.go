package client_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	srvstore "github.com/parley-im/parley/server/store"
)

// revokeHook is the server's store with a hook run after each device
// revocation is stored, before the server answers.
type revokeHook struct {
	srvstore.Store
	mu    sync.Mutex
	calls int
	after func(call int)
}

func (s *revokeHook) RevokeDevice(ctx context.Context, ref srvstore.DeviceRef, at time.Time) error {
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

func (s *revokeHook) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// cutProxy forwards TCP connections to a server; cut closes every
// connection open through it (later ones go through).
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// TestRecoverRevokesLostDeviceWhenCut: a recovery whose connection breaks
// after the server stored the revocation of a lost device, before its
// answer arrived, sends the revocation again on a new connection and
// completes; the lost device is revoked.
func TestRecoverRevokesLostDeviceWhenCut(t *testing.T) {
	hook := &revokeHook{}
	e := newLinkEnv(t, testserver.WithConfig(func(cfg *server.Config) {
		hook.Store = cfg.Store
		cfg.Store = hook
	}))
	ctx := e.ctx
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
	lost := alice.Me().DeviceID
	alice.Close()

	proxy := newCutProxy(t, strings.TrimPrefix(e.srv.HTTP, "http://"))
	hook.mu.Lock()
	hook.after = func(call int) {
		if call == 1 {
			proxy.cut() // the answer to the first revocation is lost
		}
	}
	hook.mu.Unlock()
	rec, err := client.Recover(ctx, t.TempDir(), "http://"+proxy.ln.Addr().String(), strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatalf("recovery with its connection cut during a revocation: %v", err)
	}
	defer rec.Close()
	if n := hook.count(); n != 2 {
		t.Fatalf("the server stored %d revocations, want 2 (the cut one and its retry)", n)
	}
	devs, err := rec.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.ID == lost {
			t.Fatal("the lost device is still listed")
		}
	}
}
