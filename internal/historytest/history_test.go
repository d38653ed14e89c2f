// Package historytest drives cloud history and account recovery through
// the real parley binary: messages archived by `parley recovery show`, the
// account restored with `parley init --recover` on a fresh profile.
package historytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/internal/binharness"
)

// binary is the parley binary TestMain built.
var binary string

func TestMain(m *testing.M) {
	os.Exit(binharness.Main(m, "parley-historytest-", false, &binary))
}

// env is the test process's environment without PARLEY_* variables.
func env() []string { return binharness.CleanEnv() }

// startServer runs `parley serve` on a free loopback port.
func startServer(t *testing.T) (url, data string) {
	t.Helper()
	s := binharness.StartServer(t, binary, env())
	return s.URL, s.Dir
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := binharness.Run(t, binary, env(), stdin, args...)
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}

func ok(t *testing.T, args ...string) string {
	t.Helper()
	return binharness.OK(t, binharness.Run(t, binary, env(), "", args...))
}

type message struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
	Chat string `json:"chat"`
}

func decode[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	dec := json.NewDecoder(strings.NewReader(s))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %q: %v", s, err)
		}
		out = append(out, v)
	}
	return out
}

func textsOf(ms []message) []string {
	var out []string
	for _, m := range ms {
		if m.Kind == "text" {
			out = append(out, m.Text)
		}
	}
	return out
}

// TestRecoverThroughBinary: alice chats with bob (each `send` uploads its
// message to the archive; nobody runs `recovery sync`), shows her recovery
// words, loses her only device; wrong words fail and create nothing; the words on
// a fresh profile restore the account (same account id) and download the
// archive. The server's files hold none of the texts.
func TestRecoverThroughBinary(t *testing.T) {
	url, data := startServer(t)
	alice := filepath.Join(t.TempDir(), "alice")
	bob := filepath.Join(t.TempDir(), "bob")
	var created struct {
		AccountID string `json:"account_id"`
	}
	if err := json.Unmarshal([]byte(ok(t, "init", "--server", url, "--username", "alice", "--profile", alice, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	aliceID := created.AccountID
	ok(t, "init", "--server", url, "--username", "bob", "--profile", bob)
	var want []string
	var chat string
	for i := range 20 {
		text := fmt.Sprintf("binary-canary-%d-%d", i, time.Now().UnixNano())
		var sent struct{ Chat string }
		if err := json.Unmarshal([]byte(ok(t, "send", "bob@127.0.0.1", text, "--json", "--profile", alice)), &sent); err != nil {
			t.Fatal(err)
		}
		chat = sent.Chat
		want = append(want, text)
	}
	before := textsOf(decode[message](t, ok(t, "history", chat, "--json", "--limit", "1000", "--profile", alice)))
	if len(before) != len(want) {
		t.Fatalf("alice's history shows %d of %d", len(before), len(want))
	}
	words := strings.TrimSpace(ok(t, "recovery", "show", "--profile", alice))
	if n := len(strings.Fields(words)); n < 20 {
		t.Fatalf("recovery show printed %d words: %q", n, words)
	}
	if r := run(t, "", "recovery", "show", "--profile", alice); r.code == 0 || !strings.Contains(r.stderr, "already shown") {
		t.Fatalf("second recovery show: exit %d, %q", r.code, r.stderr)
	}
	if err := os.RemoveAll(alice); err != nil { // the only device is lost
		t.Fatal(err)
	}

	fresh := filepath.Join(t.TempDir(), "fresh")
	w := strings.Fields(words)
	w[0], w[1] = w[1], w[0]
	if w[0] == w[1] {
		w[2], w[3] = w[3], w[2]
	}
	r := run(t, strings.Join(w, " ")+"\n", "init", "--recover", "--server", url, "--profile", fresh)
	if r.code == 0 || !strings.Contains(r.stderr, "do not open an account") {
		t.Fatalf("wrong words: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("wrong words left a profile: %v", err)
	}
	r = run(t, words+"\n", "init", "--recover", "--server", url, "--profile", fresh)
	if r.code != 0 {
		t.Fatalf("init --recover: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "Recovered account "+aliceID) {
		t.Fatalf("init --recover: %q", r.stderr)
	}
	// No command archived explicitly: every send uploaded its message
	// before it exited.
	var restored, segments int
	if i := strings.Index(r.stderr, "with its history ("); i < 0 {
		t.Fatalf("init --recover: %q", r.stderr)
	} else if _, err := fmt.Sscanf(r.stderr[i:], "with its history (%d messages from %d segments)", &restored, &segments); err != nil || restored < len(want) {
		t.Fatalf("init --recover restored %d messages (%v): %q", restored, err, r.stderr)
	}
	var me struct {
		AccountID string `json:"account_id"`
	}
	if err := json.Unmarshal([]byte(ok(t, "whoami", "--json", "--profile", fresh)), &me); err != nil || me.AccountID != aliceID {
		t.Fatalf("recovered whoami %+v (%v), want account %s", me, err, aliceID)
	}
	// The archive carries the conversation with its messages: `parley
	// history` shows them on the recovered profile; restoring again is
	// harmless.
	if got := textsOf(decode[message](t, ok(t, "history", chat, "--json", "--limit", "1000", "--profile", fresh))); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("recovered history %q, want %q", got, before)
	}
	if r := run(t, "", "recovery", "restore", "--profile", fresh); r.code != 0 || !strings.Contains(r.stderr, "segments") {
		t.Fatalf("recovery restore: exit %d: %s", r.code, r.stderr)
	}

	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("binary-canary-")) {
			t.Errorf("server file %s holds a message text", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLinkedDeviceHistoryThroughBinary: alice chats with bob and archives
// with `recovery sync`; a device linked afterwards gets the keyring in the
// link bundle and restores the archive while it catches up: `parley
// history CHAT` shows the messages from before it existed, in alice's order.
func TestLinkedDeviceHistoryThroughBinary(t *testing.T) {
	url, data := startServer(t)
	alice := filepath.Join(t.TempDir(), "alice")
	bob := filepath.Join(t.TempDir(), "bob")
	ok(t, "init", "--server", url, "--username", "alice", "--profile", alice)
	ok(t, "init", "--server", url, "--username", "bob", "--profile", bob)
	var chat string
	for i := range 30 {
		var sent struct{ Chat string }
		text := fmt.Sprintf("linked-canary-%d-%d", i, time.Now().UnixNano())
		if err := json.Unmarshal([]byte(ok(t, "send", "bob@127.0.0.1", text, "--json", "--profile", alice)), &sent); err != nil {
			t.Fatal(err)
		}
		chat = sent.Chat
	}
	want := textsOf(decode[message](t, ok(t, "history", chat, "--json", "--limit", "1000", "--profile", alice)))
	if len(want) != 30 {
		t.Fatalf("alice shows %d of 30", len(want))
	}
	ok(t, "recovery", "sync", "--profile", alice)

	alice2 := filepath.Join(t.TempDir(), "alice2")
	link := exec.Command(binary, "link", "new", "--server", url, "--json", "--timeout", "50s", "--profile", alice2)
	link.Env = env()
	out, err := link.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var linkErr strings.Builder
	link.Stderr = &linkErr
	if err := link.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = link.Process.Kill() })
	lines := bufio.NewReader(out)
	first, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("link new printed no code: %v (%s)", err, linkErr.String())
	}
	var code struct{ Code string }
	if err := json.Unmarshal([]byte(first), &code); err != nil {
		t.Fatal(err)
	}
	ok(t, "link", "approve", code.Code, "--yes", "--profile", alice)
	_, _ = io.ReadAll(lines)
	if err := link.Wait(); err != nil {
		t.Fatalf("link new: %v\n%s", err, linkErr.String())
	}
	// The new device catches up (joins the chat), then restores.
	deadline := time.Now().Add(40 * time.Second)
	for {
		ok(t, "recv", "--timeout", "2s", "--profile", alice2)
		if strings.Contains(ok(t, "chats", "--json", "--profile", alice2), chat) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the linked device never joined the chat")
		}
	}
	// The linked device restored the archive by itself while catching up;
	// `recovery restore` runs again without harm.
	if r := run(t, "", "recovery", "restore", "--profile", alice2); r.code != 0 || !strings.Contains(r.stderr, "Restored ") {
		t.Fatalf("recovery restore: exit %d: %s", r.code, r.stderr)
	}
	got := textsOf(decode[message](t, ok(t, "history", chat, "--json", "--limit", "1000", "--profile", alice2)))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("linked device shows %q, want %q", got, want)
	}
	err = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("linked-canary-")) {
			t.Errorf("server file %s holds a message text", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
