package tuitest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestChatTwoTerminals drives two `parley chat` terminals against a real
// server: a 1:1 chat both ways, a reply, a reaction, a group message both
// ways, the /file command and the side screens.
func TestChatTwoTerminals(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil || binary == "" {
		t.Skip("tmux is not installed")
	}
	url := startServer(t)
	dir := t.TempDir()
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	parley(t, "init", "--server", url, "--profile", alice, "--username", "alice")
	parley(t, "init", "--server", url, "--profile", bob, "--username", "bob")

	x := newTmux(t)
	x.chat("alice", alice, 100, 30)
	if err := os.Mkdir(filepath.Join(dir, "bob-downloads"), 0o700); err != nil {
		t.Fatal(err)
	}
	x.chat("bob", bob, 100, 30, "--download-dir", filepath.Join(dir, "bob-downloads"))
	x.waitFor("alice", "No chats yet", "online")
	x.waitFor("bob", "No chats yet", "online")

	// Alice starts a 1:1 chat with bob by username and writes.
	x.key("alice", "n")
	x.text("alice", "bob")
	x.key("alice", "Enter")
	x.waitFor("alice", "← bob@")
	x.text("alice", "hello from alice")
	x.key("alice", "Enter")
	x.waitFor("alice", "me: hello from alice")

	// Bob sees it in his chat list, with an unread count, opens it and
	// answers on two lines.
	x.waitFor("bob", "alice@", "(1)", "hello from alice")
	// Bob's device acknowledged it: alice's pane shows it delivered.
	x.waitFor("alice", "me: hello from alice ✓✓")
	x.key("bob", "Enter")
	x.waitFor("bob", "← alice@", "alice@127.0.0.1: hello from alice")
	x.text("bob", "hi alice")
	x.key("bob", "C-j")
	x.text("bob", "second line")
	x.key("bob", "Enter")
	x.waitFor("bob", "me: hi alice")
	x.waitFor("alice", "bob@127.0.0.1: hi alice", "second line")

	// Alice replies to bob's message and reacts to it.
	x.key("alice", "Up")
	x.key("alice", "r")
	x.waitFor("alice", "replying to bob@127.0.0.1")
	x.text("alice", "a reply")
	x.key("alice", "Enter")
	x.waitFor("bob", "↳ reply to me: hi alice", "alice@127.0.0.1: a reply")
	x.key("alice", "Up", "Up")
	x.key("alice", "1")
	x.waitFor("bob", "[👍 alice@127.0.0.1]")

	// Bob edits his message; alice sees the edit.
	x.key("bob", "Up", "Up")
	x.key("bob", "e")
	x.key("bob", "C-e")
	x.text("bob", " (fixed)")
	x.key("bob", "Enter")
	x.waitFor("alice", "second line (fixed) (edited)")
	capture(t, "conversation", x.waitFor("alice", "(edited)", "✓"))

	// A group: alice creates it with bob and writes; bob finds it by
	// search and answers.
	x.text("alice", "/create team bob")
	x.key("alice", "Enter")
	x.waitFor("alice", "← # team", "2 members")
	x.text("alice", "hello team")
	x.key("alice", "Enter")
	x.key("bob", "Escape")
	listScreen := x.waitFor("bob", "# team", "alice@127.0.0.1: hello team")
	capture(t, "chat-list", listScreen)
	x.key("bob", "/")
	x.text("bob", "tea")
	x.key("bob", "Enter")
	x.waitFor("bob", "← # team")
	x.text("bob", "bob in the team")
	x.key("bob", "Enter")
	x.waitFor("alice", "bob@127.0.0.1: bob in the team")

	// A file with its progress bar: alice sends 24 MiB to the group; bob
	// sees the file message and saves it.
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	path := filepath.Join(dir, "notes.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	x.text("alice", "/file "+path)
	x.key("alice", "Enter")
	x.waitFor("alice", "sent notes.bin", "100% (24.0 MiB of 24.0 MiB)")
	x.waitFor("bob", "alice@127.0.0.1: 📎 notes.bin (24.0 MiB")
	x.key("bob", "Up")
	x.key("bob", "s")
	x.waitFor("bob", "saved notes.bin to")
	if got, err := os.ReadFile(filepath.Join(dir, "bob-downloads", "notes.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("bob saved %d bytes (%v), want the %d sent", len(got), err, len(data))
	}

	// Network errors show in the UI and do not end it.
	x.text("alice", "/chat nobody")
	x.key("alice", "Enter")
	x.waitFor("alice", "error:", "no such account")

	// A new device of alice's links from its own parley chat: it shows the
	// link code, alice pastes it into hers, both show the same comparison
	// code, and the new device then receives what follows.
	x.chat("alice2", filepath.Join(dir, "alice2"), 100, 70, "--link-server", url)
	linkScreen := x.waitFor("alice2", "Link code:", "Comparison code:", "▀")
	capture(t, "link-new", linkScreen)
	code, cmp := linkCode(t, linkScreen)
	x.key("alice", "Escape")
	x.waitFor("alice", "Parley — alice@")
	x.key("alice", "l")
	x.waitFor("alice", "link code:")
	x.text("alice", code)
	x.key("alice", "Enter")
	x.waitFor("alice", "Comparison code:  "+cmp)
	x.key("alice", "y")
	x.waitFor("alice", "Linked.")
	x.waitFor("alice2", "Parley — alice@", "# ")
	x.text("bob", "after linking")
	x.key("bob", "Enter")
	x.waitFor("alice2", "bob@127.0.0.1: after linking")

	// The side screens, at 80x24.
	x.must("resize-window", "-t", "bob", "-x", "80", "-y", "24")
	x.key("bob", "Escape")
	x.waitFor("bob", "Parley — bob@")
	x.key("bob", "?")
	capture(t, "help", x.waitFor("bob", "keys and commands", "more: pgdn"))
	x.key("bob", "NPage")
	x.waitFor("bob", "/create NAME MEMBER...")
	x.key("bob", "Escape")
	x.waitFor("bob", "Parley — bob@")
	x.key("bob", "s")
	capture(t, "settings", x.waitFor("bob", "Privacy settings", "Read receipts", "off"))
	x.key("bob", "Down", "Enter")
	x.waitFor("bob", "Typing notices", "on ")
	x.key("bob", "Escape")
	x.waitFor("bob", "Parley — bob@")
	x.key("bob", "l")
	capture(t, "link", x.waitFor("bob", "Link a new device", "link code:"))
	x.key("bob", "Escape")
	x.waitFor("bob", "Parley — bob@")
	x.key("bob", "d")
	capture(t, "devices", x.waitFor("bob", "Devices of bob@", "(this device)"))
	x.key("bob", "Escape")
	x.waitFor("bob", "Parley — bob@")
	// The recovery key: an explanation first, then the words once, with
	// one of them typed back.
	x.key("bob", "r")
	capture(t, "recovery", x.waitFor("bob", "Recovery key", "shown only once"))
	x.key("bob", "Enter")
	words := x.waitFor("bob", "open your account and its history", "type word #")
	capture(t, "recovery-words", words)
	x.text("bob", askedWord(t, words))
	x.key("bob", "Enter")
	x.waitFor("bob", "✓ Confirmed")
	x.key("bob", "Escape")
	x.waitFor("bob", "Parley — bob@")
	x.key("bob", "/")
	x.text("bob", "alice")
	x.key("bob", "Enter")
	x.waitFor("bob", "← alice@")
	x.text("bob", "/verify")
	x.key("bob", "Enter")
	capture(t, "verify", x.waitFor("bob", "Safety number with", "▀"))
	x.key("bob", "Escape")
	x.waitFor("bob", "← alice@")
	x.key("bob", "C-c")
	x.waitFor("bob", "PARLEY-EXITED 0")
}

// capture writes a screen to docs/screens/NAME.txt when
// PARLEY_UPDATE_SCREENS=1.
func capture(t *testing.T, name, screen string) {
	t.Helper()
	if os.Getenv("PARLEY_UPDATE_SCREENS") != "1" {
		return
	}
	var lines []string
	for _, l := range strings.Split(screen, "\n") {
		lines = append(lines, strings.TrimRight(l, " "))
	}
	out := strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screens", name+".txt"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// askedWord reads off the recovery screen the word it asks to type back.
func askedWord(t *testing.T, screen string) string {
	t.Helper()
	m := regexp.MustCompile(`type word #(\d+)`).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("the recovery screen asks for no word:\n%s", screen)
	}
	w := regexp.MustCompile(`(?:^|\s)` + m[1] + `\. ([a-z]+)`).FindStringSubmatch(screen)
	if w == nil {
		t.Fatalf("word #%s is not on the screen:\n%s", m[1], screen)
	}
	return w[1]
}

// linkCode reads the link code and the comparison code off the new
// device's screen.
func linkCode(t *testing.T, screen string) (code, cmp string) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	for i, l := range lines {
		if c, ok := strings.CutPrefix(strings.TrimSpace(l), "Comparison code:"); ok {
			cmp = strings.TrimSpace(c)
		}
		if strings.TrimSpace(l) == "Link code:" {
			for _, cl := range lines[i+1:] {
				if strings.TrimSpace(cl) == "" {
					break
				}
				code += strings.TrimSpace(cl)
			}
		}
	}
	if code == "" || cmp == "" {
		t.Fatalf("no link code or comparison code on the screen:\n%s", screen)
	}
	return code, cmp
}
