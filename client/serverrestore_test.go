package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	srvstore "github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
)

// restartable is a real server on a fixed 127.0.0.1 port whose SQLite
// directory can be swapped while it is down (a restore from a backup).
type restartable struct {
	t    *testing.T
	addr string
	srv  *server.Server
	st   srvstore.Store
	done chan error
}

func (r *restartable) start(dir string) {
	r.t.Helper()
	st, err := open.Open(context.Background(), dir, srvstore.Options{})
	if err != nil {
		r.t.Fatalf("open store: %v", err)
	}
	srv, err := server.New(server.Config{
		Store: st, ServerName: "127.0.0.1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: server.Limits{DeviceRate: -1, AddrRate: -1, RegisterRate: -1, LookupRate: -1, MaxConnectionsPerAddr: 1 << 20},
	})
	if err != nil {
		r.t.Fatalf("new server: %v", err)
	}
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		if l, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen: %v", err)
	}
	r.addr, r.srv, r.st, r.done = l.Addr().String(), srv, st, make(chan error, 1)
	go func() { r.done <- srv.Serve(l) }()
}

func (r *restartable) stop() {
	r.t.Helper()
	if r.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		r.t.Errorf("shutdown: %v", err)
	}
	if err := <-r.done; err != nil {
		r.t.Errorf("serve: %v", err)
	}
	if err := r.st.Close(); err != nil {
		r.t.Errorf("close store: %v", err)
	}
	r.srv = nil
}

// copyDir copies the server's (closed) data directory: the backup.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), raw, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}

// logBuffer collects a client's log.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServerRestoredFromOlderBackup: the server's database goes back to an
// older copy, so it hands out sequence numbers again that the clients
// already hold for other messages. The clients must not wedge: sends are
// recorded, new messages are stored, history still reads, and what they
// had before stays.
func TestServerRestoredFromOlderBackup(t *testing.T) {
	live, backup := t.TempDir(), t.TempDir()
	r := &restartable{t: t}
	r.start(live)
	t.Cleanup(r.stop)
	h := newHarness(t)
	h.srv = &testserver.Server{URL: "ws://" + r.addr + "/v1/ws"}
	var alog logBuffer
	o := h.opts()
	o.Username = "alice"
	o.Logger = slog.New(slog.NewTextHandler(&alog, &slog.HandlerOptions{Level: slog.LevelInfo}))
	alice, err := Init(h.ctx, t.TempDir(), h.srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	h.run(alice)
	var blog logBuffer
	o = h.opts()
	o.Username = "bob"
	o.Logger = slog.New(slog.NewTextHandler(&blog, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bob, err := Init(h.ctx, t.TempDir(), h.srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	h.run(bob)
	chat, err := alice.StartDirect(h.ctx, "bob@"+alice.host)
	if err != nil {
		t.Fatal(err)
	}
	h.chatOn(bob, chat)
	texts := []string{"before backup 1", "before backup 2"}
	h.send(alice, chat, texts[0])
	h.send(bob, chat, texts[1])
	h.converged(chat, texts, alice, bob)

	// The backup, then messages the backup does not have.
	r.stop()
	copyDir(t, live, backup)
	r.start(live)
	lost := []string{"lost by the restore 1", "lost by the restore 2", "lost by the restore 3"}
	h.send(alice, chat, lost[0])
	h.send(bob, chat, lost[1])
	h.send(alice, chat, lost[2])
	h.converged(chat, append(texts, lost...), alice, bob)

	// Restore the backup: the server forgets the last three sequence
	// numbers and gives them out again.
	r.stop()
	r.start(backup)
	after := []string{"after restore 1", "after restore 2", "after restore 3", "after restore 4"}
	h.send(alice, chat, after[0])
	h.send(bob, chat, after[1])
	h.send(alice, chat, after[2])
	h.send(bob, chat, after[3])
	want := append(append(append([]string{}, texts...), lost...), after...)
	defer func() {
		if t.Failed() {
			for _, c := range []*Client{alice, bob} {
				ms, _ := chatMessages(h.ctx, c, chat)
				for _, m := range ms {
					t.Logf("%s: %d %d %q %v", c.Me().Address, m.Position, m.Seq, m.Body, m.State)
				}
			}
			t.Logf("alice log:\n%s\nbob log:\n%s", alog.String(), blog.String())
		}
	}()
	holdAll := func() error {
		for _, c := range []*Client{alice, bob} {
			ms, err := chatMessages(h.ctx, c, chat)
			if err != nil {
				return err
			}
			got := map[string]bool{}
			for _, m := range ms {
				got[string(m.Body)] = true
			}
			for _, w := range want {
				if !got[w] {
					return fmt.Errorf("%s lacks %q", c.Me().Address, w)
				}
			}
		}
		return nil
	}
	for deadline := time.Now().Add(30 * time.Second); holdAll() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("both clients hold every message: %v", holdAll())
		}
	}
	// Nothing is stuck in the outbox and the reused numbers belong to the
	// new messages.
	for _, c := range []*Client{alice, bob} {
		ms, err := chatMessages(h.ctx, c, chat)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Mine && m.State != store.StateSent && m.State != store.StateDelivered && m.State != store.StateRead {
				t.Errorf("%s: own message %q is %v", c.Me().Address, m.Body, m.State)
			}
			isAfter := strings.HasPrefix(string(m.Body), "after restore")
			if isAfter && m.Seq == 0 {
				t.Errorf("%s: new message %q has no sequence number", c.Me().Address, m.Body)
			}
		}
	}
	if !strings.Contains(alog.String(), "reused") {
		t.Errorf("alice did not log the reused sequence numbers; log:\n%s", alog.String())
	}
	h.noUndecryptable(alice, bob)
	if err := errors.Join(h.ctx.Err()); err != nil {
		t.Fatal(err)
	}
}
