package filetest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type meJSON struct {
	Address   string `json:"address"`
	AccountID string `json:"account_id"`
	DeviceID  string `json:"device_id"`
	Server    string `json:"server"`
	Username  string `json:"username,omitempty"`
}

type fileJSON struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

type messageJSON struct {
	ID           string    `json:"id"`
	Chat         string    `json:"chat"`
	Sender       string    `json:"sender"`
	SenderDevice string    `json:"sender_device,omitempty"`
	Kind         string    `json:"kind"`
	Text         string    `json:"text"`
	SentAt       string    `json:"sent_at"`
	Mine         bool      `json:"mine,omitempty"`
	ReplyTo      string    `json:"reply_to,omitempty"`
	EditedAt     string    `json:"edited_at,omitempty"`
	ExpiresAt    string    `json:"expires_at,omitempty"`
	State        string    `json:"state,omitempty"`
	File         *fileJSON `json:"file,omitempty"`
}

type sentJSON struct {
	ID   string `json:"id"`
	Chat string `json:"chat"`
}

type gotJSON struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

// profile is one `parley init` profile.
type profile struct {
	t   *testing.T
	dir string
	me  meJSON
}

func newProfile(t *testing.T, srv *server, username string) *profile {
	t.Helper()
	p := &profile{t: t, dir: filepath.Join(t.TempDir(), "profile")}
	p.me = one[meJSON](t, p.cmd("init", "--server", srv.URL, "--username", username, "--json"))
	return p
}

func (p *profile) args(args ...string) []string { return append(args, "--profile", p.dir) }

func (p *profile) cmd(args ...string) string {
	p.t.Helper()
	return ok(p.t, p.args(args...)...)
}

// start starts a command of this profile without waiting for it.
func (p *profile) start(args ...string) *exec.Cmd {
	p.t.Helper()
	cmd := exec.Command(binary, p.args(args...)...)
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	return cmd
}

// recvFile runs `recv --json` until a file message arrives.
func (p *profile) recvFile() messageJSON {
	p.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range decode[messageJSON](p.t, p.cmd("recv", "--json", "--timeout", "5s")) {
			if m.Kind == "file" {
				return m
			}
		}
	}
	p.t.Fatal("no file message arrived")
	return messageJSON{}
}

// canaryFile writes size bytes of a canary string repeated.
func canaryFile(t *testing.T, canary string, size int) string {
	path := filepath.Join(t.TempDir(), "video.bin")
	data := []byte(strings.Repeat(canary, size/len(canary)+1)[:size])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// waitSize waits until a file matching glob is at least min bytes, or the
// command exits. It reports whether the size was reached while the command
// still ran.
func waitSize(t *testing.T, cmd *exec.Cmd, glob string, min int64) bool {
	t.Helper()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.After(time.Minute)
	for {
		select {
		case <-exited:
			return false
		case <-deadline:
			t.Fatalf("%s never reached %d bytes", glob, min)
		default:
		}
		ms, _ := filepath.Glob(glob)
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.Size() >= min {
				_ = cmd.Process.Kill()
				<-exited
				return true
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFileTransfer(t *testing.T) {
	srv := startServer(t, "--max-file-size", "100MiB")
	alice := newProfile(t, srv, "alice")
	bob := newProfile(t, srv, "bob")
	cb := make([]byte, 8)
	_, _ = rand.Read(cb)
	canary := "canary-file-" + hex.EncodeToString(cb) + " "
	const size = 64 << 20
	path := canaryFile(t, canary, size)

	// Kill `file send` mid-upload, then run it again: it resumes.
	blobGlob := filepath.Join(srv.Data, "blobs", "data", "*", "*")
	send := alice.start("file", "send", "bob@127.0.0.1", path, "--json")
	if !waitSize(t, send, blobGlob, 8<<20) {
		t.Fatalf("file send finished before it could be interrupted (exit %v)", send.ProcessState)
	}
	parts, _ := filepath.Glob(blobGlob)
	if len(parts) != 1 || !strings.HasSuffix(parts[0], ".part") {
		t.Fatalf("after the kill the server holds %v, want one unfinished blob", parts)
	}
	sent := one[sentJSON](t, alice.cmd("file", "send", "bob@127.0.0.1", path, "--json"))
	if len(sent.ID) != 32 {
		t.Fatalf("file send printed %+v", sent)
	}
	if blobs, _ := filepath.Glob(blobGlob); len(blobs) != 1 || strings.HasSuffix(blobs[0], ".part") {
		t.Fatalf("after the resumed send the server holds %v, want one finished blob", blobs)
	}

	// Bob sees a file message with its description, not its reference.
	m := bob.recvFile()
	if m.ID != sent.ID || m.File == nil || m.File.Name != "video.bin" || m.File.Size != size || m.File.MediaType == "" || m.Text != "" {
		t.Fatalf("recv --json printed %+v (file %+v)", m, m.File)
	}
	// Killing and resuming sent the file once: Bob's history holds one
	// file message (a text sent afterwards shows everything queued before
	// it has arrived).
	alice.cmd("send", m.Chat, "after the file")
	var files []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		files = nil
		text := false
		for _, h := range decode[messageJSON](t, bob.cmd("history", m.Chat, "--json")) {
			switch {
			case h.Kind == "file":
				files = append(files, h.ID)
			case h.Text == "after the file":
				text = true
			}
		}
		if text || time.Now().After(deadline) {
			break
		}
		_ = bob.cmd("recv", "--json", "--timeout", "2s")
	}
	if len(files) != 1 || files[0] != sent.ID {
		t.Fatalf("Bob holds file messages %v after a killed and resumed send, want just %s", files, sent.ID)
	}

	// Kill `file get` mid-download, then run it again: it resumes and the
	// bytes are the ones sent.
	out := filepath.Join(t.TempDir(), "got.bin")
	get := bob.start("file", "get", m.ID, "--out", out, "--json")
	if !waitSize(t, get, out+".part", 8<<20) {
		t.Fatalf("file get finished before it could be interrupted (exit %v)", get.ProcessState)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an interrupted download left %s (%v)", out, err)
	}
	got := one[gotJSON](t, bob.cmd("file", "get", m.ID, "--out", out, "--json"))
	if got.Path != out || fileHash(t, out) != fileHash(t, path) {
		t.Fatalf("file get printed %+v; bytes differ from the sent file", got)
	}

	// The plaintext appears nowhere in the server's data folder or logs.
	_ = filepath.WalkDir(srv.Data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(canary)) {
				t.Errorf("%s contains the plaintext", p)
			}
		}
		return nil
	})
	if strings.Contains(srv.logs(), canary) {
		t.Error("the server logs contain the plaintext")
	}

	// Tampering with the stored ciphertext: get fails clearly and writes
	// nothing.
	blobs, _ := filepath.Glob(blobGlob)
	f, err := os.OpenFile(blobs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, size/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	bad := filepath.Join(t.TempDir(), "bad.bin")
	fails(t, "failed verification", bob.args("file", "get", m.ID, "--out", bad)...)
	for _, p := range []string{bad, bad + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a tampered download (%v)", p, err)
		}
	}

	// A file over the server's limit is refused before anything is sent.
	big := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 100<<20+1); err != nil {
		t.Fatal(err)
	}
	fails(t, "too large", alice.args("file", "send", "bob@127.0.0.1", big)...)
	// Not a file message; not a message.
	fails(t, "not a file message", alice.args("file", "get", sendText(t, alice))...)
	fails(t, "no such message", alice.args("file", "get", strings.Repeat("ab", 16))...)
}

// sendText sends a text message from p to bob and returns its id.
func sendText(t *testing.T, p *profile) string {
	t.Helper()
	return one[sentJSON](t, p.cmd("send", "bob@127.0.0.1", "hello", "--json")).ID
}

// TestFileQuota: a file that would take an account over --blob-quota is
// refused clearly; files within it go through.
func TestFileQuota(t *testing.T) {
	srv := startServer(t, "--blob-quota", "1MiB")
	alice := newProfile(t, srv, "alice")
	newProfile(t, srv, "bob")
	first := canaryFile(t, "first ", 600<<10)
	alice.cmd("file", "send", "bob@127.0.0.1", first)
	second := filepath.Join(t.TempDir(), "second.bin")
	if err := os.WriteFile(second, bytes.Repeat([]byte("second "), 600<<10/7), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "quota", alice.args("file", "send", "bob@127.0.0.1", second)...)
}
