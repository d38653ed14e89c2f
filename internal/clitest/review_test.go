package clitest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOutsideReview checks what an outside walk through the CLI found:
// one's own address is refused by name where another account is needed;
// unknown accounts and overlong reactions are one plain sentence; text
// output names accounts in system messages; group admins and removals must
// name members (removing oneself points to group leave); link new refuses a
// folder holding a profile; a 1:1 chat the other account left is marked so
// in chats; file get --out takes a folder and refuses a missing one before
// downloading; an unreachable server is named as such by file get and by
// recv --timeout; and a second server on a data folder in use, or one on a
// public address without TLS, refuses to start.
func TestOutsideReview(t *testing.T) {
	srv := startServer(t)
	alice := newUser(t, srv, "alice")
	bob := newUser(t, srv, "bob")

	// One server per SQLite folder: a second refuses to start.
	fails(t, "in use by another parley serve", "serve", "--listen", "127.0.0.1:0", "--data", srv.Data, "--pow-bits", "0")

	// Plain HTTP off loopback is refused before the server says it serves.
	r := run(t, "serve", "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--pow-bits", "0")
	if r.code != 2 || !strings.Contains(r.stderr, "is not a loopback address") || strings.Contains(r.stderr, "serving") {
		t.Fatalf("serve on 0.0.0.0 without TLS: exit %d, stderr %q", r.code, r.stderr)
	}

	// link new into a folder that holds a profile is refused before a
	// code is shown (it was found only after another device approved).
	r = run(t, "link", "new", "--server", srv.URL, "--profile", alice.dir, "--timeout", "5s")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "a profile already exists in "+alice.dir) {
		t.Fatalf("link new into alice's profile: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// Help that matches the words recovery show prints.
	if help := ok(t, "recovery", "--help"); !strings.Contains(help, "(32 words and a checksum word)") {
		t.Fatalf("recovery --help does not describe the 33 words:\n%s", help)
	}

	// This account's own address, where another is needed.
	fails(t, "alice@127.0.0.1 is this account's own address", alice.args("verify", "alice@127.0.0.1")...)
	fails(t, "alice@127.0.0.1 is this account's own address", alice.args("send", "alice@127.0.0.1", "x")...)
	if chats := alice.chats(); len(chats) != 0 {
		t.Fatalf("a refused send to oneself made chats: %+v", chats)
	}
	msg := fails(t, "the server knows no account nobody@127.0.0.1", alice.args("verify", "nobody@127.0.0.1")...)
	if strings.Contains(msg, "no such account") {
		t.Fatalf("verify of an unknown account: %q", msg)
	}
	msg = fails(t, `"bob@elsewhere.example" is on another server`, alice.args("send", "bob@elsewhere.example", "x")...)
	if strings.Contains(msg, "malformed") || strings.Contains(msg, "an address is") {
		t.Fatalf("send to another server: %q", msg)
	}

	// Text output names the accounts of a membership change.
	chat := alice.send(bob.me.Address, canary(t, "hello"))
	text := bob.cmd("recv")
	got := alice.cmd("recv")
	if !strings.Contains(got, "*: members: +bob@127.0.0.1") || strings.Contains(got, bob.me.AccountID) {
		t.Fatalf("alice's recv does not name bob in the membership change:\n%s", got)
	}
	if text == "" {
		t.Fatal("bob's recv printed nothing")
	}

	// Group changes that would do nothing, or lock the group, are refused.
	carol := newUser(t, srv, "carol")
	group := one[struct {
		Chat string `json:"chat"`
	}](t, alice.cmd("group", "create", "trip", bob.me.Address, "--json")).Chat
	fails(t, "carol@127.0.0.1 is not a member of this group, so it cannot be an admin", alice.args("group", "admins", group, carol.me.Address)...)
	fails(t, "carol@127.0.0.1 is not a member of chat "+group+": nothing was removed", alice.args("group", "remove", group, carol.me.Address)...)
	fails(t, "parley group leave "+group, alice.args("group", "remove", group, alice.me.Address)...)
	alice.cmd("group", "rename", group, "trip (still admin)")
	if chats := alice.chats(); !slices.ContainsFunc(chats, func(c chatJSON) bool {
		return c.Chat == group && c.Name == "trip (still admin)" && len(c.Members) == 2
	}) {
		t.Fatalf("after the refused changes: %+v", chats)
	}

	// A reaction over the limit is one sentence without the error's class.
	sent := one[sentJSON](t, bob.cmd("send", chat, canary(t, "react-to-me"), "--json"))
	msg = fails(t, "a reaction is at most 64 bytes", alice.args("message", "react", chat, sent.ID, strings.Repeat("x", 65))...)
	if strings.Contains(msg, "invalid argument") {
		t.Fatalf("react: %q", msg)
	}

	// file get --out: a folder takes the file under its own name; a
	// missing folder is refused before anything is downloaded.
	src := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(src, []byte("the tent is in the garage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "the file path is empty", alice.args("file", "send", chat, "")...)
	file := one[sentJSON](t, alice.cmd("file", "send", chat, src, "--json"))
	bob.cmd("recv", "--timeout", "5s") // fetch the file message
	dir := t.TempDir()
	saved := one[struct {
		ID   string `json:"id"`
		Path string `json:"path"`
	}](t, bob.cmd("file", "get", file.ID, "--out", dir, "--json"))
	if want := filepath.Join(dir, "notes.txt"); saved.Path != want {
		t.Fatalf("file get --out FOLDER saved to %q, want %q", saved.Path, want)
	}
	if b, err := os.ReadFile(saved.Path); err != nil || string(b) != "the tent is in the garage\n" {
		t.Fatalf("saved file: %q, %v", b, err)
	}
	fails(t, "already exists", bob.args("file", "get", file.ID, "--out", dir)...)
	missing := filepath.Join(dir, "missing", "notes.txt")
	fails(t, "the folder "+filepath.Dir(missing)+" does not exist", bob.args("file", "get", file.ID, "--out", missing)...)
	if left, err := os.ReadDir(dir); err != nil || len(left) != 1 {
		t.Fatalf("after the refused downloads %s holds %v (%v)", dir, left, err)
	}

	// A 1:1 chat the other account left says so in text.
	dave := newUser(t, srv, "dave")
	lonely := dave.send(carol.me.Address, canary(t, "hello-carol"))
	carol.cmd("recv", "--timeout", "5s")
	carol.cmd("group", "leave", lonely)
	dave.recvUntil("members: -" + carol.me.AccountID)
	if list := dave.cmd("chats"); !strings.Contains(list, lonely+"  direct    0 unread  carol@127.0.0.1  (the other account left)") {
		t.Fatalf("dave's chats after carol left their chat:\n%s", list)
	}

	// An unreachable server, named as such.
	srv.stop(t)
	msg = fails(t, "cannot reach the Parley server", bob.args("file", "get", file.ID, "--out", filepath.Join(t.TempDir(), "again.txt"))...)
	if strings.Contains(msg, "dial tcp") || strings.Contains(msg, "GET") {
		t.Fatalf("file get offline: %q", msg)
	}
	r = run(t, bob.args("recv", "--timeout", "1s", "--json")...)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "cannot reach the server") {
		t.Fatalf("recv --timeout offline: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
