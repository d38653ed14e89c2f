package clitest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/internal/binharness"
)

// The --json schema of docs/cli.md, decoded strictly (unknown fields fail).

type meJSON struct {
	Address   string `json:"address"`
	AccountID string `json:"account_id"`
	DeviceID  string `json:"device_id"`
	Server    string `json:"server"`
	Username  string `json:"username"`
}

type messageJSON struct {
	ID           string `json:"id"`
	Chat         string `json:"chat"`
	Sender       string `json:"sender"`
	SenderDevice string `json:"sender_device"`
	Kind         string `json:"kind"`
	Text         string `json:"text"`
	SentAt       string `json:"sent_at"`
	Mine         bool   `json:"mine"`
	ReplyTo      string `json:"reply_to"`
	EditedAt     string `json:"edited_at"`
	ExpiresAt    string `json:"expires_at"`
	State        string `json:"state"`
	Reactions    []struct {
		Sender   string `json:"sender"`
		Reaction string `json:"reaction"`
	} `json:"reactions"`
}

type chatJSON struct {
	Chat    string   `json:"chat"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Unread  int      `json:"unread"`
	Members []string `json:"members"`
	Left    bool     `json:"left"`
}

type sentJSON struct {
	ID   string `json:"id"`
	Chat string `json:"chat"`
}

type deviceJSON struct {
	ID      string `json:"id"`
	Created string `json:"created"`
	Current bool   `json:"current"`
}

type settingJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Chat  string `json:"chat"`
}

// user is one profile folder driven through the binary.
type user struct {
	t     *testing.T
	dir   string
	extra []string // added to every command (--passphrase-file)
	me    meJSON
}

// cmd runs a command with this profile and expects success.
func (u *user) cmd(args ...string) string {
	u.t.Helper()
	return ok(u.t, u.args(args...)...)
}

// args adds this profile's flags to args.
func (u *user) args(args ...string) []string {
	return append(append(args, "--profile", u.dir), u.extra...)
}

// send sends text to a chat id or address and returns the chat.
func (u *user) send(to, text string) string {
	u.t.Helper()
	s := one[sentJSON](u.t, u.cmd("send", to, text, "--json"))
	if len(s.ID) != 32 || s.Chat == "" {
		u.t.Fatalf("send printed %+v", s)
	}
	return s.Chat
}

// recvUntil runs `recv --json` until the texts it has printed include all
// of want (or a deadline passes), and returns every message printed.
func (u *user) recvUntil(want ...string) []messageJSON {
	u.t.Helper()
	var got []messageJSON
	deadline := time.Now().Add(40 * time.Second)
	for {
		got = append(got, u.checked(decode[messageJSON](u.t, u.cmd("recv", "--json", "--timeout", "5s")))...)
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool {
			return slices.ContainsFunc(got, func(m messageJSON) bool { return m.Text == w })
		})
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s never received %q; got %+v", u.me.Address, missing, got)
		}
	}
}

// checked fails the test if any message could not be decrypted: that is a
// bug, never an expected outcome.
func (u *user) checked(msgs []messageJSON) []messageJSON {
	u.t.Helper()
	for _, m := range msgs {
		if m.Kind == "undecryptable" {
			u.t.Errorf("%s could not decrypt message %s in chat %s", u.me.Address, m.ID, m.Chat)
		}
	}
	return msgs
}

// texts returns the texts of the text messages among msgs.
func texts(msgs []messageJSON) []string {
	var out []string
	for _, m := range msgs {
		if m.Kind == "text" || m.Kind == "reply" {
			out = append(out, m.Text)
		}
	}
	return out
}

// history returns a chat's text messages as `history --json` prints them.
func (u *user) history(chat string) []messageJSON {
	u.t.Helper()
	var out []messageJSON
	for _, m := range decode[messageJSON](u.t, u.cmd("history", chat, "--json", "--limit", "1000")) {
		if m.Kind == "text" || m.Kind == "reply" {
			out = append(out, m)
		}
	}
	return out
}

// chats returns the chats as `chats --json` prints them.
func (u *user) chats() []chatJSON {
	u.t.Helper()
	return decode[chatJSON](u.t, u.cmd("chats", "--json"))
}

// newUser makes an account with `parley init` and checks `whoami --json`.
func newUser(t *testing.T, srv *server, username string, extra ...string) *user {
	t.Helper()
	u := &user{t: t, dir: filepath.Join(t.TempDir(), "profile"), extra: extra}
	args := []string{"init", "--server", srv.URL, "--json"}
	if username != "" {
		args = append(args, "--username", username)
	}
	created := one[meJSON](t, u.cmd(args...))
	u.me = one[meJSON](t, u.cmd("whoami", "--json"))
	if u.me != created {
		t.Fatalf("whoami %+v differs from init %+v", u.me, created)
	}
	if !regexp.MustCompile(`^[a-z2-7]{32}$`).MatchString(u.me.AccountID) || u.me.DeviceID == "" {
		t.Fatalf("whoami: %+v", u.me)
	}
	wantAddr := u.me.AccountID + "@127.0.0.1"
	if username != "" {
		wantAddr = username + "@127.0.0.1"
	}
	if u.me.Address != wantAddr {
		t.Fatalf("whoami address %q, want %q", u.me.Address, wantAddr)
	}
	return u
}

// canary makes a message text that appears nowhere by chance.
func canary(t *testing.T, what string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "canary-" + what + "-" + hex.EncodeToString(b)
}

// textOf finds the message with text in msgs.
func textOf(t *testing.T, msgs []messageJSON, text string) messageJSON {
	t.Helper()
	i := slices.IndexFunc(msgs, func(m messageJSON) bool { return m.Text == text })
	if i < 0 {
		t.Fatalf("no message %q in %+v", text, msgs)
	}
	return msgs[i]
}

// recvFor runs `recv --json --timeout` once and returns the texts printed.
func (u *user) recvFor(d time.Duration) []string {
	u.t.Helper()
	return texts(u.checked(decode[messageJSON](u.t, u.cmd("recv", "--json", "--timeout", d.String()))))
}

func TestCLI(t *testing.T) {
	srv := startServer(t)
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := newUser(t, srv, "alice")
	bob := newUser(t, srv, "bob")
	carol := newUser(t, srv, "", "--passphrase-file", pass)
	users := []*user{alice, bob, carol}
	var sent []string // every message text, for the plaintext canary
	say := func(u *user, to, what string) (string, string) {
		t.Helper()
		text := canary(t, what)
		sent = append(sent, text)
		return u.send(to, text), text
	}

	// Carol's profile is locked with her passphrase.
	fails(t, "passphrase", "whoami", "--profile", carol.dir)

	// 1:1 in both directions, first by username address, then by chat id.
	direct, hello := say(alice, bob.me.Address, "hello-bob")
	m := textOf(t, bob.recvUntil(hello), hello)
	if m.Chat != direct || m.Sender != alice.me.AccountID || m.SenderDevice != alice.me.DeviceID || m.Kind != "text" || m.Mine {
		t.Fatalf("bob received %+v", m)
	}
	// docs/cli.md: RFC 3339 in UTC with milliseconds, on every time.
	if ts, err := time.Parse(time.RFC3339Nano, m.SentAt); err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute ||
		!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(m.SentAt) {
		t.Fatalf("sent_at %q: %v", m.SentAt, err)
	}
	if again := bob.recvFor(0); len(again) != 0 {
		t.Fatalf("recv printed messages again: %q", again)
	}
	// Bob answers with a reply; a reply to a message the chat does not have
	// is refused and sends nothing.
	fails(t, "has no message", bob.args("send", direct, "to nothing", "--reply-to", strings.Repeat("1", 32))...)
	reply := canary(t, "hello-alice")
	sent = append(sent, reply)
	if s := one[sentJSON](t, bob.cmd("send", direct, reply, "--reply-to", m.ID, "--json")); s.Chat != direct {
		t.Fatalf("reply sent as %+v", s)
	}
	got := alice.recvUntil(reply)
	if slices.Contains(texts(got), hello) {
		t.Fatal("recv printed this device's own message")
	}
	if r := textOf(t, got, reply); r.Chat != direct || r.Sender != bob.me.AccountID || r.Kind != "reply" || r.ReplyTo != m.ID {
		t.Fatalf("alice received %+v, want a reply to %s", r, m.ID)
	}
	if slices.Contains(texts(got), "to nothing") {
		t.Fatal("a refused reply was sent")
	}
	// An ACCOUNTID@server address reaches the same chat.
	if chat, text := say(bob, alice.me.AccountID+"@127.0.0.1", "by-account-id"); chat != direct {
		t.Fatalf("sending by account id used chat %s, not %s", chat, direct)
	} else {
		alice.recvUntil(text)
	}

	// recv --follow prints messages as they arrive, one JSON line each.
	follow := exec.Command(binary, "recv", "--follow", "--json", "--timeout", "40s", "--profile", bob.dir)
	follow.Env = cleanEnv()
	followOut, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var followErr strings.Builder
	follow.Stderr = &followErr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill() })
	followLines := bufio.NewScanner(followOut)
	for _, what := range []string{"follow-1", "follow-2"} {
		_, text := say(alice, direct, what)
		if !followLines.Scan() {
			t.Fatalf("recv --follow ended: %v %s", followLines.Err(), followErr.String())
		}
		if m := one[messageJSON](t, followLines.Text()); m.Text != text || m.Chat != direct {
			t.Fatalf("recv --follow printed %+v, want %q", m, text)
		}
	}
	if err := follow.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := follow.Wait(); err != nil {
		t.Fatalf("recv --follow after an interrupt: %v %s", err, followErr.String())
	}

	// chats and history agree on both sides, in the same order.
	for _, u := range []*user{alice, bob} {
		cs := u.chats()
		if len(cs) != 1 || cs[0].Chat != direct || cs[0].Kind != "direct" || len(cs[0].Members) != 2 {
			t.Fatalf("%s chats: %+v", u.me.Address, cs)
		}
		if h := texts(u.history(direct)); !slices.Equal(h, sent) {
			t.Fatalf("%s history %q, want %q", u.me.Address, h, sent)
		}
	}

	// Groups: messages reach the members of the moment, and nobody else.
	group := one[struct {
		Chat string `json:"chat"`
	}](t, alice.cmd("group", "create", "Team", bob.me.Address, "--json")).Chat
	_, g1 := say(alice, group, "group-first")
	if m := textOf(t, bob.recvUntil(g1), g1); m.Chat != group || m.Sender != alice.me.AccountID {
		t.Fatalf("bob received %+v", m)
	}
	alice.cmd("group", "add", group, carol.me.Address)
	_, g2 := say(alice, group, "group-carol-added")
	if got := carol.recvUntil(g2); slices.Contains(texts(got), g1) || textOf(t, got, g2).Chat != group {
		t.Fatalf("carol, added later, received %q", texts(got))
	}
	_, g3 := say(carol, group, "group-from-carol")
	alice.recvUntil(g3)
	bob.recvUntil(g2, g3)
	fails(t, "admin", carol.args("group", "remove", group, bob.me.Address)...)

	alice.cmd("group", "rename", group, "Team Two")
	// Everyone shows the rename as a system message, with one sent_at.
	renamed := `renamed the group to "Team Two"`
	rb := textOf(t, bob.recvUntil(renamed), renamed)
	rc := textOf(t, carol.recvUntil(renamed), renamed)
	if rb.Kind != "system" || rb.Sender != alice.me.AccountID || rb.ID != rc.ID || rb.SentAt != rc.SentAt {
		t.Fatalf("the rename shows differently: bob %+v, carol %+v", rb, rc)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		bob.recvFor(time.Second)
		cs := bob.chats()
		if i := slices.IndexFunc(cs, func(c chatJSON) bool { return c.Chat == group }); i >= 0 && cs[i].Name == "Team Two" && cs[i].Kind == "group" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob never saw the rename: %+v", cs)
		}
	}

	alice.cmd("group", "remove", group, carol.me.Address)
	_, g4 := say(alice, group, "group-after-carol-removed")
	bob.recvUntil(g4)
	if got := carol.recvFor(2 * time.Second); slices.Contains(got, g4) {
		t.Fatal("a removed member received a later message")
	}
	for _, m := range decode[messageJSON](t, carol.cmd("history", group, "--json")) {
		if m.Text == g4 {
			t.Fatal("a removed member stored a later message")
		}
	}

	bob.cmd("group", "leave", group)
	if slices.ContainsFunc(bob.chats(), func(c chatJSON) bool { return c.Chat == group }) {
		t.Fatal("a chat bob left is still listed")
	}
	// Alice's device removes bob's and shows it, as every member's does.
	textOf(t, alice.recvUntil("members: -"+bob.me.AccountID), "members: -"+bob.me.AccountID)
	left := decode[chatJSON](t, bob.cmd("chats", "--all", "--json"))
	if i := slices.IndexFunc(left, func(c chatJSON) bool { return c.Chat == group }); i < 0 || !left[i].Left ||
		slices.Contains(left[i].Members, bob.me.AccountID) || !slices.Contains(left[i].Members, alice.me.AccountID) {
		t.Fatalf("bob's chats --all after leaving: %+v", left)
	}
	_, g5 := say(alice, group, "group-after-bob-left")
	if got := bob.recvFor(2 * time.Second); slices.Contains(got, g5) {
		t.Fatal("a member who left received a later message")
	}

	// A link answered "no" on the approving device: `link new` is told and
	// stops at once, long before its timeout, and nothing is linked.
	refusedDir := filepath.Join(t.TempDir(), "refused")
	refused := exec.Command(binary, "link", "new", "--server", srv.URL, "--json", "--timeout", "50s", "--profile", refusedDir)
	refused.Env = cleanEnv()
	refusedOut, err := refused.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var refusedErr strings.Builder
	refused.Stderr = &refusedErr
	if err := refused.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = refused.Process.Kill() })
	refusedLine, err := bufio.NewReader(refusedOut).ReadString('\n')
	if err != nil {
		t.Fatalf("link new printed no code: %v (%s)", err, refusedErr.String())
	}
	refusedCode := one[struct {
		Code       string `json:"code"`
		Comparison string `json:"comparison"`
	}](t, refusedLine)
	binharness.Fails(t, binharness.Run(t, binary, cleanEnv(), "no\n", alice.args("link", "approve", refusedCode.Code)...), "the new device was told")
	refusedAt := time.Now()
	if err := refused.Wait(); err == nil || !strings.Contains(refusedErr.String(), "refused") {
		t.Fatalf("link new after a refusal: %v\n%s", err, refusedErr.String())
	}
	if d := time.Since(refusedAt); d > 20*time.Second {
		t.Fatalf("link new took %v to stop after the refusal", d)
	}

	// Link a second device to alice's account: `link new` prints its code
	// at once and finishes when `link approve` on the first device is done.
	alice2 := &user{t: t, dir: filepath.Join(t.TempDir(), "alice2")}
	link := exec.Command(binary, "link", "new", "--server", srv.URL, "--json", "--timeout", "50s", "--profile", alice2.dir)
	link.Env = cleanEnv()
	linkOut, err := link.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var linkErr strings.Builder
	link.Stderr = &linkErr
	if err := link.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = link.Process.Kill() })
	lines := bufio.NewReader(linkOut)
	first, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("link new printed no code: %v (%s)", err, linkErr.String())
	}
	code := one[struct {
		Code       string `json:"code"`
		Comparison string `json:"comparison"`
	}](t, first)
	// No answer (standard input at its end) neither approves nor refuses.
	if r := run(t, alice.args("link", "approve", code.Code)...); r.code != 1 || !strings.Contains(r.stderr, "\nparley: no answer on standard input, so nothing was approved or refused") {
		t.Fatalf("link approve without an answer: exit %d, stderr %q", r.code, r.stderr)
	}
	approved := one[struct {
		Comparison string `json:"comparison"`
	}](t, alice.cmd("link", "approve", code.Code, "--yes", "--json"))
	if approved.Comparison != code.Comparison || code.Comparison == "" {
		t.Fatalf("comparison codes differ: new device %q, approver %q", code.Comparison, approved.Comparison)
	}
	rest, _ := io.ReadAll(lines)
	if err := link.Wait(); err != nil {
		t.Fatalf("link new: %v\n%s", err, linkErr.String())
	}
	alice2.me = one[meJSON](t, string(rest))
	if alice2.me.AccountID != alice.me.AccountID || alice2.me.DeviceID == alice.me.DeviceID {
		t.Fatalf("linked device %+v, first device %+v", alice2.me, alice.me)
	}
	users = append(users, alice2)
	devs := decode[deviceJSON](t, alice2.cmd("devices", "--json"))
	if len(devs) != 2 || slices.IndexFunc(devs, func(d deviceJSON) bool { return d.Current && d.ID == alice2.me.DeviceID }) < 0 {
		t.Fatalf("devices after linking: %+v", devs)
	}
	_, toNew := say(bob, direct, "for-the-new-device")
	_, ownAccount := say(alice, group, "own-account-to-new-device")
	// One `recv --timeout` (the README's step) prints what waits on the
	// server, although the device already holds unshown history from the
	// archive it downloaded while linking.
	got = alice2.checked(decode[messageJSON](t, alice2.cmd("recv", "--json", "--timeout", "10s")))
	for _, want := range []string{toNew, ownAccount} {
		if !slices.ContainsFunc(got, func(m messageJSON) bool { return m.Text == want }) {
			t.Fatalf("one recv --timeout on the new device missed %q, which waited on the server; got %+v", want, got)
		}
	}
	if m := textOf(t, got, ownAccount); !m.Mine || m.SenderDevice != alice.me.DeviceID || m.Chat != group {
		t.Fatalf("the new device shows its account's message as %+v", m)
	}

	// Revoke the new device: it receives nothing sent afterwards.
	alice.cmd("devices", "revoke", alice2.me.DeviceID)
	if devs := decode[deviceJSON](t, alice.cmd("devices", "--json")); len(devs) != 1 || devs[0].ID != alice.me.DeviceID || !devs[0].Current {
		t.Fatalf("devices after revoking: %+v", devs)
	}
	_, afterRevoke := say(bob, direct, "after-revoke")
	alice.recvUntil(afterRevoke)
	if r := run(t, alice2.args("recv", "--json", "--timeout", "2s")...); strings.Contains(r.stdout, afterRevoke) {
		t.Fatal("a revoked device received a later message")
	}
	fails(t, "this device was revoked", alice2.args("recv", "--json")...)

	// Safety numbers: both sides show the same 60 digits.
	type verifyJSON struct {
		Address      string `json:"address"`
		AccountID    string `json:"account_id"`
		SafetyNumber string `json:"safety_number"`
	}
	va := one[verifyJSON](t, alice.cmd("verify", bob.me.Address, "--json"))
	vb := one[verifyJSON](t, bob.cmd("verify", alice.me.Address, "--json"))
	if va.SafetyNumber != vb.SafetyNumber || va.AccountID != bob.me.AccountID || vb.AccountID != alice.me.AccountID ||
		!regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`).MatchString(va.SafetyNumber) {
		t.Fatalf("verify: alice sees %+v, bob sees %+v", va, vb)
	}
	if vc := one[verifyJSON](t, alice.cmd("verify", carol.me.Address, "--json")); vc.SafetyNumber == va.SafetyNumber {
		t.Fatal("two different pairs of accounts have the same safety number")
	}
	if out := alice.cmd("verify", bob.me.Address); !strings.Contains(out, "█") || !strings.Contains(out, va.SafetyNumber[:11]) {
		t.Fatalf("verify shows no QR code or digits:\n%s", out)
	}

	// Settings: private by default, changed on request, timers per chat.
	ss := decode[settingJSON](t, alice.cmd("settings", "get", "--json"))
	if len(ss) != 3 || slices.ContainsFunc(ss, func(s settingJSON) bool { return s.Value != "off" }) {
		t.Fatalf("default settings: %+v", ss)
	}
	alice.cmd("settings", "set", "read-receipts", "on")
	if s := one[settingJSON](t, alice.cmd("settings", "get", "read-receipts", "--json")); s.Value != "on" {
		t.Fatalf("read-receipts after set on: %+v", s)
	}
	alice.cmd("settings", "set", "disappearing", "1h", "--chat", direct)
	deadline = time.Now().Add(30 * time.Second)
	for {
		bob.recvFor(time.Second)
		s := one[settingJSON](t, bob.cmd("settings", "get", "disappearing", "--chat", direct, "--json"))
		if s.Value == "1h0m0s" && s.Chat == direct {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's disappearing timer: %+v", s)
		}
	}
	fails(t, "unknown setting", alice.args("settings", "set", "colour", "on")...)
	fails(t, "on or off", alice.args("settings", "set", "typing", "maybe")...)

	// Edit, delete and react, seen on the other side.
	sendID := func(u *user, to, what string) (string, string) {
		t.Helper()
		text := canary(t, what)
		sent = append(sent, text)
		s := one[sentJSON](t, u.cmd("send", to, text, "--json"))
		return s.ID, text
	}
	editID, _ := sendID(alice, direct, "to-edit")
	deleteID, deleted := sendID(alice, direct, "to-delete")
	bob.recvUntil(deleted)
	edited := canary(t, "edited")
	sent = append(sent, edited)
	alice.cmd("message", "edit", direct, editID, edited)
	alice.cmd("message", "delete", direct, deleteID)
	bob.cmd("message", "react", direct, editID, "+1")
	fails(t, "at most 64 bytes", bob.args("message", "react", direct, editID, strings.Repeat("x", 5000))...)
	fails(t, "not yours", bob.args("message", "edit", direct, editID, "hijack")...)
	fails(t, "has no message", bob.args("message", "delete", direct, strings.Repeat("0", 32))...)
	deadline = time.Now().Add(30 * time.Second)
	for {
		bob.recvFor(time.Second)
		alice.recvFor(0)
		hb, ha := bob.history(direct), alice.history(direct)
		bi, ai := slices.IndexFunc(hb, func(m messageJSON) bool { return m.ID == editID }), slices.IndexFunc(ha, func(m messageJSON) bool { return m.ID == editID })
		gone := !slices.ContainsFunc(hb, func(m messageJSON) bool { return m.ID == deleteID || m.Text == deleted })
		if bi >= 0 && ai >= 0 && hb[bi].Text == edited && hb[bi].EditedAt != "" && gone &&
			len(ha[ai].Reactions) == 1 && ha[ai].Reactions[0].Sender == bob.me.AccountID && ha[ai].Reactions[0].Reaction == "+1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edit/delete/react not seen: bob %+v, alice %+v", hb, ha)
		}
	}

	// Errors say what is wrong, in one sentence.
	fails(t, "not a valid address", alice.args("send", "not an address!", "x")...)
	fails(t, "knows no account", alice.args("send", "nobody@127.0.0.1", "x")...)
	unknown := "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	fails(t, "unknown chat", alice.args("history", unknown)...)
	fails(t, "unknown chat", alice.args("send", unknown, "x")...)
	fails(t, "not a chat id", alice.args("history", "nope")...)
	fails(t, "not a valid link code", alice.args("link", "approve", "garbage", "--yes")...)
	fails(t, "not a device id", alice.args("devices", "revoke", "garbage")...)
	fails(t, "no profile", "whoami", "--profile", filepath.Join(t.TempDir(), "empty"))
	if r := run(t, alice.args("send", "only-one-argument")...); r.code != 2 {
		t.Fatalf("a wrong number of arguments: exit %d, want 2", r.code)
	}
	if r := runEnv(t, []string{"PARLEY_PROFILE=" + bob.dir}, "whoami", "--json"); r.code != 0 || one[meJSON](t, r.stdout) != bob.me {
		t.Fatalf("whoami with PARLEY_PROFILE: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	fails(t, "already exists", alice.args("init", "--server", srv.URL)...)
	fails(t, "username is taken", "init", "--server", srv.URL, "--username", "alice", "--profile", filepath.Join(t.TempDir(), "p"))

	// Plaintext canary: the server's data folder and logs hold none of the
	// message texts; neither do the profile folders (encrypted at rest).
	srv.stop(t)
	logs := srv.logs()
	if !strings.Contains(logs, `"msg":"serving"`) {
		t.Fatal("the server's logs were not captured")
	}
	dirs := []string{srv.Data}
	for _, u := range users {
		dirs = append(dirs, u.dir)
	}
	for _, dir := range dirs {
		files := 0
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, text := range sent {
				if strings.Contains(string(b), text) {
					t.Errorf("%s holds the plaintext %q", path, text)
				}
			}
			return nil
		})
		if err != nil || files == 0 {
			t.Fatalf("walking %s: %v (%d files)", dir, err, files)
		}
	}
	for _, text := range sent {
		if strings.Contains(logs, text) {
			t.Errorf("the server's logs hold the plaintext %q", text)
		}
	}
}

// TestUnreachable checks that an unreachable server is named as such, and
// (first) that an init the server refuses leaves no profile behind.
func TestUnreachable(t *testing.T) {
	srv := startServer(t)
	dave := newUser(t, srv, "dave")
	url := srv.URL
	taken := filepath.Join(t.TempDir(), "taken")
	fails(t, "username is taken", "init", "--server", url, "--username", "dave", "--profile", taken)
	if _, err := os.Stat(taken); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused init left %s behind (%v)", taken, err)
	}
	empty := t.TempDir()
	fails(t, "username is taken", "init", "--server", url, "--username", "dave", "--profile", empty)
	if left, err := os.ReadDir(empty); err != nil || len(left) != 0 {
		t.Fatalf("a refused init left %v in the empty folder %s (%v)", left, empty, err)
	}
	notes := filepath.Join(empty, "notes.txt")
	if err := os.WriteFile(notes, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "username is taken", "init", "--server", url, "--username", "dave", "--profile", empty)
	if left, err := os.ReadDir(empty); err != nil || len(left) != 1 || left[0].Name() != "notes.txt" {
		t.Fatalf("a refused init in a folder with notes.txt left %v (%v)", left, err)
	}
	ok(t, "init", "--server", url, "--username", "dave2", "--profile", empty) // the retry works
	scriptedRecovery(t, srv)
	solo := one[struct {
		Chat string `json:"chat"`
	}](t, dave.cmd("group", "create", "notes", "--json")).Chat
	srv.stop(t)
	// Sending to a chat while the server is down fails but queues the
	// message (docs/cli.md, send).
	fails(t, "the message is queued", dave.args("send", solo, "queued-offline")...)
	if h := decode[messageJSON](t, run(t, dave.args("history", solo, "--json")...).stdout); len(h) == 0 ||
		h[len(h)-1].Text != "queued-offline" || h[len(h)-1].State != "pending" {
		t.Fatalf("history after sending offline: %+v", h)
	}
	fails(t, "cannot reach the Parley server", dave.args("send", "erin@127.0.0.1", "x")...)
	fails(t, "cannot reach the Parley server", dave.args("recv")...)
	fails(t, "cannot reach the Parley server", "init", "--server", url, "--profile", filepath.Join(t.TempDir(), "p"))
	// Reading what is stored works offline, with a warning.
	r := run(t, dave.args("chats", "--json")...)
	if r.code != 0 || !strings.Contains(r.stderr, "cannot reach the server") {
		t.Fatalf("chats offline: exit %d, stderr %q", r.code, r.stderr)
	}
}

// scriptedRecovery drives the recovery commands with --json, as a script
// would: every client command takes --json (those with no result print
// nothing), and the words recovery show prints restore the account.
func scriptedRecovery(t *testing.T, srv *server) {
	erin := newUser(t, srv, "")
	for _, args := range [][]string{{"settings", "set", "typing", "on", "--json"}, {"group", "leave", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "--json"}} {
		r := run(t, erin.args(args...)...)
		if r.stdout != "" || strings.Contains(r.stderr, "unknown flag") {
			t.Fatalf("parley %q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	// The commands above already uploaded erin's self chat record in the
	// background, so the first explicit sync may find nothing left; a
	// second one must find nothing (records are not uploaded twice). The
	// restore below proves the archive holds her history.
	type syncJSON struct {
		Records  int `json:"records"`
		Segments int `json:"segments"`
	}
	if synced := one[syncJSON](t, erin.cmd("recovery", "sync", "--json")); synced.Records < 0 || synced.Segments < 0 {
		t.Fatalf("recovery sync --json: %+v", synced)
	}
	if again := one[syncJSON](t, erin.cmd("recovery", "sync", "--json")); again != (syncJSON{}) {
		t.Fatalf("a second recovery sync --json uploaded again: %+v", again)
	}
	shown := one[struct {
		Words string `json:"words"`
	}](t, erin.cmd("recovery", "show", "--json"))
	if n := len(strings.Fields(shown.Words)); n != 33 {
		t.Fatalf("recovery show --json printed %d words", n)
	}
	dir := filepath.Join(t.TempDir(), "erin-restored")
	wrong := binharness.Run(t, binary, cleanEnv(), "hello world\n", "init", "--recover", "--server", srv.URL, "--profile", dir)
	if wrong.Code != 1 || !strings.Contains(wrong.Stderr, `do not open an account on `+srv.URL+`: recovery word 1 "hello" is not in the word list`) ||
		strings.Contains(wrong.Stderr, "archive:") || strings.Contains(wrong.Stderr, "identity:") {
		t.Fatalf("init --recover with wrong words: exit %d, stderr %q", wrong.Code, wrong.Stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("init --recover with wrong words left %s (%v)", dir, err)
	}
	restored := one[meJSON](t, binharness.OK(t, binharness.Run(t, binary, cleanEnv(), shown.Words+"\n",
		"init", "--recover", "--server", srv.URL, "--json", "--profile", dir)))
	if restored.AccountID != erin.me.AccountID || restored.DeviceID == erin.me.DeviceID {
		t.Fatalf("restored %+v from the words of %+v", restored, erin.me)
	}
	got := one[struct {
		Messages int `json:"messages"`
		Segments int `json:"segments"`
	}](t, ok(t, "recovery", "restore", "--json", "--profile", dir))
	if got.Segments < 1 {
		t.Fatalf("recovery restore --json: %+v", got)
	}
}
