package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/blob"
)

// linkEnv runs clients against a real server with the archive storage
// mounted as `parley serve` mounts it.
type linkEnv struct {
	t       *testing.T
	ctx     context.Context
	srv     *testserver.Server
	archDir string
	wg      sync.WaitGroup
	mu      sync.Mutex
	stops   []func()
}

// newLinkEnv starts the server; opts run after the archive storage is
// mounted.
func newLinkEnv(t *testing.T, opts ...testserver.Option) *linkEnv {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	e := &linkEnv{t: t, ctx: ctx, archDir: t.TempDir()}
	e.srv = testserver.Start(t, append([]testserver.Option{testserver.WithConfig(func(cfg *server.Config) {
		h, err := blob.NewArchiveHandler(e.archDir, &blob.DeviceAuthorizer{Store: cfg.Store})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Routes = map[string]http.Handler{"/v1/archive/": h}
	})}, opts...)...)
	t.Cleanup(func() {
		e.mu.Lock()
		for _, s := range e.stops {
			s()
		}
		e.mu.Unlock()
		e.wg.Wait()
		cancel()
	})
	return e
}

func (e *linkEnv) opts() client.Options {
	// LinkData is left to its default, which carries the archive keyring.
	return client.Options{KeyPackageStock: 6, MaxBackoff: 200 * time.Millisecond}
}

func (e *linkEnv) run(c *client.Client) {
	ctx, cancel := context.WithCancel(e.ctx)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		_ = c.Run(ctx)
	}()
	e.mu.Lock()
	e.stops = append(e.stops, func() { cancel(); c.Close() })
	e.mu.Unlock()
}

func (e *linkEnv) account(name string) *client.Client {
	e.t.Helper()
	o := e.opts()
	o.Username = name
	c, err := client.Init(e.ctx, e.t.TempDir(), e.srv.URL, o)
	if err != nil {
		e.t.Fatalf("init %s: %v", name, err)
	}
	e.run(c)
	return c
}

func (e *linkEnv) link(approver *client.Client) *client.Client {
	e.t.Helper()
	pl, err := client.NewLink(e.ctx, e.t.TempDir(), e.srv.URL, e.opts())
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := client.ParseLinkCode(pl.Request().Code())
	if err != nil {
		e.t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- approver.ApproveLink(e.ctx, req) }()
	c, err := pl.Wait(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := <-errc; err != nil {
		e.t.Fatal(err)
	}
	e.run(c)
	return c
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// texts returns the shown texts of chat on c, oldest first.
func texts(ctx context.Context, c *client.Client, chat client.ChatID) ([]string, error) {
	var out []string
	var before store.Position
	for range 1000 {
		page, err := c.History(ctx, chat, store.HistoryQuery{Before: before, Limit: store.MaxPageSize})
		if err != nil {
			return nil, err
		}
		var chunk []string
		for _, m := range page.Messages {
			if m.Deleted || m.Kind != store.KindText {
				continue
			}
			chunk = append(chunk, string(m.Body))
		}
		out = append(chunk, out...)
		if !page.More || len(page.Messages) == 0 {
			break
		}
		before = page.Messages[0].Position
	}
	return out, nil
}

// TestHistoryOnLinkedDevice: alice's first device chats with bob; a device
// linked afterwards gets the keyring in the link bundle and restores the
// whole history from the server's archive (deleted messages absent); the
// recovery words are made once and open the bundle on the server.
func TestHistoryOnLinkedDevice(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice, bob := e.account("alice"), e.account("bob")
	chat, err := alice.CreateGroup(ctx, "history", []string{"bob@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	var want []string
	var doomed client.MessageID
	var doomedText string
	for i := range n {
		text := fmt.Sprintf("history-canary %d", i)
		id, err := alice.Send(ctx, chat, text)
		if err != nil {
			t.Fatal(err)
		}
		if i == 40 {
			doomed, doomedText = id, text
			continue
		}
		want = append(want, text)
	}
	eventually(t, "bob receives everything", func() error {
		got, err := texts(ctx, bob, chat)
		if err != nil {
			return err
		}
		if len(got) != n {
			return fmt.Errorf("bob has %d of %d", len(got), n)
		}
		return nil
	})
	if _, err := alice.Delete(ctx, chat, doomed); err != nil {
		t.Fatal(err)
	}
	// Server order need not be the order of the Send calls; the linked
	// device must show alice's order.
	eventually(t, "alice's messages sent and deletion applied", func() error {
		got, err := texts(ctx, alice, chat)
		if err != nil {
			return err
		}
		if len(got) != len(want) || slices.Contains(got, doomedText) {
			return fmt.Errorf("alice shows %d messages", len(got))
		}
		want = got
		return nil
	})
	// Archive until every message is sent and uploaded.
	eventually(t, "alice archives", func() error {
		_, err := alice.ArchiveHistory(ctx)
		return err
	})

	a2 := e.link(alice)
	eventually(t, "the linked device joins the chat", func() error {
		chats, _, err := a2.Chats(ctx)
		if err != nil {
			return err
		}
		for _, c := range chats {
			if c.ID == chat {
				return nil
			}
		}
		return errors.New("not yet")
	})
	// Run restores the archive on the new device by itself.
	eventually(t, "the linked device shows the history from before it existed", func() error {
		got, err := texts(ctx, a2, chat)
		if err != nil {
			return err
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			return fmt.Errorf("linked device shows %d messages, want %d", len(got), len(want))
		}
		return nil
	})
	var last archive.Progress
	res, err := a2.RestoreHistory(ctx, func(p archive.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if last.SegmentsTotal == 0 || last.SegmentsDone != last.SegmentsTotal {
		t.Fatalf("restore %+v, progress %+v", res, last)
	}

	// Recovery words: once; the bundle on the server opens with them to
	// this account and keyring.
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RecoveryWords(ctx); !errors.Is(err, client.ErrRecoveryShown) {
		t.Fatalf("second RecoveryWords: %v", err)
	}
	anon := client.NewArchiveRemote(e.srv.HTTP, nil, nil)
	bundle, err := client.FetchRecovery(ctx, anon, strings.Join(words, " "))
	if err != nil {
		t.Fatal(err)
	}
	if string(bundle.AccountKey.ID()) != string(alice.Me().AccountID) {
		t.Fatal("bundle holds another account")
	}

	// Revoking the linked device rotates the archive key: the archive stays
	// readable with the new keyring only, and the recovery bundle is
	// re-sealed with it.
	oldRaw, ok, err := a2.AccountData(ctx, client.AccountDataArchiveKeyring)
	if err != nil || !ok {
		t.Fatalf("linked device has no keyring: %v", err)
	}
	oldRing, err := archive.ParseKeyring(oldRaw)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.RevokeDevice(ctx, a2.Me().DeviceID); err != nil {
		t.Fatal(err)
	}
	bundle, err = client.FetchRecovery(ctx, anon, strings.Join(words, " "))
	if err != nil {
		t.Fatal(err)
	}
	if len(bundle.Keyring.Generations()) != 1 {
		t.Fatalf("re-sealed keyring generations %v", bundle.Keyring.Generations())
	}
	token := func(context.Context) (string, error) { return alice.ArchiveToken(ctx) }
	if _, err := archive.Restore(ctx, newHistoryStore(t), client.NewArchiveRemote(e.srv.HTTP, nil, token), bundle.Keyring, archive.RestoreOptions{}); err != nil {
		t.Fatalf("restore with the rotated keyring: %v", err)
	}
	if bundle.Keyring.Current() == oldRing.Current() {
		t.Fatalf("archive key generation %d not rotated", oldRing.Current())
	}
	if _, err := archive.Restore(ctx, newHistoryStore(t), client.NewArchiveRemote(e.srv.HTTP, nil, token), oldRing, archive.RestoreOptions{}); err == nil {
		t.Fatal("the revoked device's keyring still opens the archive")
	}

	checkCanary(t, e.archDir, append(want, doomedText))
	checkCanary(t, e.srv.Dir, append(want, doomedText))
}

// TestRecoverAfterWipe: alice's only device archives its history and makes
// the recovery words, then is wiped; wrong words create nothing; the right
// words on a fresh profile sign in as the same account and bring the whole
// history back.
func TestRecoverAfterWipe(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice, bob := e.account("alice"), e.account("bob")
	chat, err := alice.CreateGroup(ctx, "before the wipe", []string{"bob@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if _, err := alice.Send(ctx, chat, fmt.Sprintf("recover-canary %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	eventually(t, "alice's messages sent", func() error {
		got, err := texts(ctx, bob, chat)
		if err != nil || len(got) != n {
			return fmt.Errorf("bob has %d: %v", len(got), err)
		}
		want, err = texts(ctx, alice, chat)
		return err
	})
	eventually(t, "alice archives", func() error {
		_, err := alice.ArchiveHistory(ctx)
		return err
	})
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	account := alice.Me().AccountID
	alice.Close() // every device of the account is gone

	// Wrong words: a clear error and no profile.
	wrongDir := filepath.Join(t.TempDir(), "profile")
	w := append([]string(nil), words...)
	w[0], w[1] = w[1], w[0]
	if w[0] == w[1] {
		w[2], w[3] = w[3], w[2]
	}
	if _, err := client.Recover(ctx, wrongDir, e.srv.HTTP, strings.Join(w, " "), e.opts(), nil); !errors.Is(err, archive.ErrWrongRecoveryKey) {
		t.Fatalf("wrong words: %v", err)
	}
	if _, err := os.Stat(wrongDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("wrong words left a profile: %v", err)
	}

	var last archive.Progress
	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, "  "), e.opts(), func(p archive.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	e.run(rec)
	if rec.Me().AccountID != account {
		t.Fatalf("recovered account %s, want %s", rec.Me().AccountID, account)
	}
	if last.SegmentsTotal == 0 || last.SegmentsDone != last.SegmentsTotal {
		t.Fatalf("progress %+v", last)
	}
	var got []string
	var after store.Position
	for {
		page, err := rec.Store().Scan(ctx, chat, after, store.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if m.Kind == store.KindText && !m.Deleted {
				got = append(got, string(m.Body))
			}
		}
		if len(page) < store.MaxPageSize {
			break
		}
		after = page[len(page)-1].Position
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recovered %d messages, want %d", len(got), len(want))
	}
	checkCanary(t, e.archDir, want)
	checkCanary(t, e.srv.Dir, want)
}
