package client

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/blob"
)

// newFileHarness is newHarness with the blob service mounted, authorising
// device-signed tokens against the server's store. It returns the blob
// folder.
func newFileHarness(t *testing.T, maxSize int64) (*harness, string) {
	dir := t.TempDir()
	srv := testserver.Start(t, testserver.WithConfig(func(cfg *server.Config) {
		local, err := blob.NewLocal(filepath.Join(dir, "data"))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := blob.OpenFileMeta(filepath.Join(dir, "meta"))
		if err != nil {
			t.Fatal(err)
		}
		h := blob.NewHandler(blob.Config{MaxSize: maxSize}, local, meta, &blob.DeviceAuthorizer{Store: cfg.Store})
		cfg.Routes = map[string]http.Handler{"/v1/blobs": h, "/v1/blobs/": h}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	h := &harness{t: t, srv: srv, ctx: ctx, runs: make(map[*Client]context.CancelFunc)}
	t.Cleanup(func() {
		h.mu.Lock()
		for c, stop := range h.runs {
			stop()
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
		cancel()
	})
	return h, dir
}

// canaryFile writes a file of n bytes made of a canary string repeated.
func canaryFile(t *testing.T, canary string, n int) (string, []byte) {
	data := []byte(strings.Repeat(canary, n/len(canary)+1)[:n])
	path := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// blobFiles lists the stored blobs (not the records) under dir.
func blobFiles(t *testing.T, dir string) []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestFileSendGet(t *testing.T) {
	h, dir := newFileHarness(t, blob.DefaultMaxSize)
	a, b := h.account("alice"), h.account("bob")
	chat, err := a.StartDirect(h.ctx, "bob@"+a.host)
	if err != nil {
		t.Fatal(err)
	}
	const canary = "canary-file-contents-7f3a "
	path, data := canaryFile(t, canary, 3*filecrypt.ChunkSize+1)
	events, stop := b.Subscribe(1024)
	defer stop()
	var last int64
	id, err := a.SendFilePath(h.ctx, chat, path, func(done, total int64) { last = done })
	if err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) {
		t.Errorf("progress ended at %d of %d", last, len(data))
	}
	var m *Message
	h.eventually("file message", func() error {
		m, err = b.st.Message(h.ctx, id)
		return err
	})
	f, err := FileOf(m)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "report.txt" || f.Size != int64(len(data)) || f.MediaType != "text/plain" {
		t.Errorf("file = %+v", f)
	}
	// The event of the arriving message carries the file's description.
	timeout := time.After(30 * time.Second)
	for found := false; !found; {
		select {
		case ev := <-events:
			if ev.Message != nil && ev.Message.ID == id {
				found = true
				if ev.File == nil || *ev.File != f {
					t.Errorf("event file = %+v, want %+v", ev.File, f)
				}
			}
		case <-timeout:
			t.Fatal("no event for the file message")
		}
	}
	out := filepath.Join(t.TempDir(), "got.txt")
	if _, err := b.GetFile(h.ctx, id, out, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	// A text message is not a file.
	tid := h.send(a, chat, "hello")
	if _, err := a.GetFile(h.ctx, tid, filepath.Join(t.TempDir(), "x"), nil); !errors.Is(err, ErrNotFile) {
		t.Errorf("GetFile of a text message: %v", err)
	}

	// Tampering with the stored ciphertext is detected; nothing is written.
	blobs := blobFiles(t, dir)
	if len(blobs) != 1 {
		t.Fatalf("want 1 stored blob, have %v", blobs)
	}
	ct, err := os.ReadFile(blobs[0])
	if err != nil {
		t.Fatal(err)
	}
	ct[len(ct)/2] ^= 1
	if err := os.WriteFile(blobs[0], ct, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if _, err := b.GetFile(h.ctx, id, bad, nil); err == nil {
		t.Fatal("downloaded a tampered blob")
	}
	for _, p := range []string{bad, bad + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a failed download (%v)", p, err)
		}
	}

	// The plaintext appears nowhere on the server.
	h.canary([]string{canary})
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(canary)) {
				t.Errorf("%s contains the plaintext", p)
			}
		}
		return nil
	})
}

func TestFileResumeAndLimit(t *testing.T) {
	h, dir := newFileHarness(t, 1<<20)
	a := h.account("alice")
	h.account("bob")
	chat, err := a.StartDirect(h.ctx, "bob@"+a.host)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := canaryFile(t, "resume ", 900<<10)
	// Interrupt the upload after some progress.
	ctx, cancel := context.WithCancel(h.ctx)
	_, err = a.SendFilePath(ctx, chat, path, func(done, total int64) {
		if done >= 256<<10 {
			cancel()
		}
	})
	cancel()
	if err == nil {
		t.Fatal("interrupted upload succeeded")
	}
	records := func() int {
		es, _ := os.ReadDir(filepath.Join(dir, "meta"))
		return len(es)
	}
	n := records()
	if n != 1 {
		t.Fatalf("%d blob records after the interrupted upload, want 1", n)
	}
	id, err := a.SendFilePath(h.ctx, chat, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if records() != 1 {
		t.Errorf("resuming made a new blob: %d records", records())
	}
	if m, err := a.st.Message(h.ctx, id); err != nil || m.Kind != store.KindFile {
		t.Fatalf("sent message: %v, %v", m, err)
	}
	// An empty file goes through too.
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eid, err := a.SendFilePath(h.ctx, chat, empty, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "empty.out")
	if _, err := a.GetFile(h.ctx, eid, out, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 0 {
		t.Fatalf("empty file download: %v, %v", fi, err)
	}
	// A file over the limit is refused.
	big, _ := canaryFile(t, "big ", 1<<20+1)
	if _, err := a.SendFilePath(h.ctx, chat, big, nil); !errors.Is(err, ErrFileTooLarge) {
		t.Fatalf("over-limit file: %v", err)
	}
}

func TestSafeFileName(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf": "report.pdf", "../../etc/passwd": "passwd", "..": "file", ".": "file", "": "file",
		"a\\b": "a_b", "x\ny": "x_y", "/": "_", strings.Repeat("é", 200): strings.Repeat("é", 127),
	} {
		if got := SafeFileName(in); got != want {
			t.Errorf("SafeFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFileMessageExactlyOnce stops SendFilePath right after it queued the
// file message and before it cleared the upload state (where a crash would
// stop it), then runs it again: the second run finds the queued message and
// sends nothing new, so the recipient gets the file once.
func TestFileMessageExactlyOnce(t *testing.T) {
	h, _ := newFileHarness(t, blob.DefaultMaxSize)
	a, b := h.account("alice"), h.account("bob")
	chat, err := a.StartDirect(h.ctx, "bob@"+a.host)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := canaryFile(t, "once ", 2*filecrypt.ChunkSize+5)
	crash := errors.New("simulated crash after queueing")
	fileQueuedHook = func() error { return crash }
	defer func() { fileQueuedHook = nil }()
	if _, err := a.SendFilePath(h.ctx, chat, path, nil); !errors.Is(err, crash) {
		t.Fatalf("first run: %v, want the simulated crash", err)
	}
	fileQueuedHook = nil
	id, err := a.SendFilePath(h.ctx, chat, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := func(c *Client) []MessageID {
		page, err := c.History(h.ctx, chat, store.HistoryQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ids []MessageID
		for _, m := range page.Messages {
			if m.Kind == store.KindFile {
				ids = append(ids, m.ID)
			}
		}
		return ids
	}
	if got := files(a); len(got) != 1 || got[0] != id {
		t.Fatalf("sender holds file messages %v, want just %s", got, id)
	}
	h.eventually("file message at bob", func() error {
		_, err := b.st.Message(h.ctx, id)
		return err
	})
	// A text sent afterwards arrives after anything the outbox still had.
	tid := h.send(a, chat, "after the file")
	h.eventually("text at bob", func() error {
		_, err := b.st.Message(h.ctx, tid)
		return err
	})
	if got := files(b); len(got) != 1 || got[0] != id {
		t.Fatalf("recipient holds file messages %v, want just %s", got, id)
	}
	// The state is gone: sending the same file again is a new message.
	again, err := a.SendFilePath(h.ctx, chat, path, nil)
	if err != nil || again == id {
		t.Fatalf("sending again: %s, %v; want a new message", again, err)
	}
}
