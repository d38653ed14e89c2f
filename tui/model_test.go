package tui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/blob"
)

// net is a real server (with the blob service) and real clients kept
// online.
type net struct {
	t   *testing.T
	srv *testserver.Server
	ctx context.Context
	wg  sync.WaitGroup
}

func newNet(t *testing.T) *net {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
		h := blob.NewHandler(blob.Config{MaxSize: blob.DefaultMaxSize}, local, meta, &blob.DeviceAuthorizer{Store: cfg.Store})
		arch, err := blob.NewArchiveHandler(filepath.Join(dir, "archive"), &blob.DeviceAuthorizer{Store: cfg.Store})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Routes = map[string]http.Handler{"/v1/blobs": h, "/v1/blobs/": h, "/v1/archive/": arch}
	}))
	n := &net{t: t, srv: srv, ctx: ctx}
	t.Cleanup(func() { cancel(); n.wg.Wait() })
	return n
}

// account makes an account and keeps it online.
func (n *net) account(name string) *client.Client {
	n.t.Helper()
	c, err := client.Init(n.ctx, n.t.TempDir(), n.srv.URL, client.Options{Username: name, KeyPackageStock: 4, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		n.t.Fatalf("init %s: %v", name, err)
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); _ = c.Run(n.ctx) }()
	n.t.Cleanup(func() { _ = c.Close() })
	return c
}

// driver feeds a Model messages the way tea.Program does, running the
// commands it returns (each bounded in time) and the client's events.
type driver struct {
	t      *testing.T
	m      *Model
	events <-chan client.Event
	quit   bool
	bells  int
	// late are commands that outlasted cmdWait (a transfer, a tick): their
	// messages are delivered by pump when they come, as tea.Program would.
	late []chan tea.Msg
}

func newDriver(t *testing.T, n *net, c *client.Client, opts Options) *driver {
	events, stop := c.Subscribe(256)
	t.Cleanup(stop)
	d := &driver{t: t, m: New(n.ctx, c, nil, opts), events: events}
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	d.run(d.m.Init())
	return d
}

// cmdWait bounds one command; blocking ones (ticks) are dropped after it.
const cmdWait = 1500 * time.Millisecond

func (d *driver) send(msg tea.Msg) {
	_, cmd := d.m.Update(msg)
	d.run(cmd)
}

func (d *driver) run(cmd tea.Cmd) {
	queue := []tea.Cmd{cmd}
	for steps := 0; len(queue) > 0 && steps < 500; steps++ {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		done := make(chan tea.Msg, 1)
		go func() { done <- c() }()
		select {
		case msg := <-done:
			queue = append(queue, d.handle(msg)...)
		case <-time.After(cmdWait):
			d.late = append(d.late, done)
		}
	}
}

// handle gives one command's message to the model and returns what to
// run next.
func (d *driver) handle(msg tea.Msg) []tea.Cmd {
	if t := reflect.TypeOf(msg); t != nil && strings.HasSuffix(t.PkgPath(), "/cursor") {
		return nil // cursor blinks would never end
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		return msg
	case tea.QuitMsg:
		d.quit = true
	case tea.RawMsg:
		if msg.Msg == "\a" {
			d.bells++
		}
	default:
		_, next := d.m.Update(msg)
		return []tea.Cmd{next}
	}
	return nil
}

// pump delivers the client events that are waiting, and the messages of
// late commands that have finished.
func (d *driver) pump() {
	for {
		select {
		case ev := <-d.events:
			d.send(eventMsg(ev))
			continue
		default:
		}
		ran := false
		for i, ch := range d.late {
			select {
			case msg := <-ch:
				d.late = append(d.late[:i], d.late[i+1:]...)
				for _, next := range d.handle(msg) {
					d.run(next)
				}
				ran = true
			default:
			}
			if ran {
				break
			}
		}
		if !ran {
			return
		}
	}
}

func (d *driver) view() string { return ansi.Strip(d.m.View().Content) }

// waitFor pumps events until the view shows every one of want.
func (d *driver) waitFor(want ...string) string {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d.pump()
		v := d.view()
		missing := ""
		for _, w := range want {
			if !strings.Contains(v, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return v
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("the view never showed %q:\n%s", missing, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *driver) typeText(s string) {
	for _, r := range s {
		d.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

func (d *driver) press(codes ...rune) {
	for _, c := range codes {
		d.send(tea.KeyPressMsg{Code: c})
	}
}

func TestModelChat(t *testing.T) {
	n := newNet(t)
	alice, bob := n.account("alice"), n.account("bob")
	a := newDriver(t, n, alice, Options{})
	b := newDriver(t, n, bob, Options{DownloadDir: t.TempDir()})
	a.waitFor("Parley — alice@", "No chats yet")

	// New chat by username; the message is sent and acknowledged.
	a.typeText("n")
	a.typeText("bob")
	a.press(tea.KeyEnter)
	a.waitFor("← bob@")
	a.typeText("hello bob")
	a.press(tea.KeyEnter)
	a.waitFor("me: hello bob ✓")

	// Bob's list shows the chat, its unread count and preview; the
	// window title marks it.
	b.waitFor("alice@", "(1)", "alice@127.0.0.1: hello bob")
	if title := b.m.View().WindowTitle; title != "(1) Parley" {
		t.Errorf("title = %q, want the unread marker", title)
	}
	b.press(tea.KeyEnter)
	b.waitFor("← alice@", "alice@127.0.0.1: hello bob")
	if title := b.m.View().WindowTitle; title != "Parley" {
		t.Errorf("title after reading = %q", title)
	}

	// A two-line reply from bob.
	b.press(tea.KeyUp)
	b.typeText("r")
	b.waitFor("replying to alice@127.0.0.1: hello bob")
	b.typeText("first")
	b.send(tea.KeyPressMsg{Code: 'j', Mod: tea.ModCtrl})
	b.typeText("second")
	b.press(tea.KeyEnter)
	a.waitFor("↳ reply to me: hello bob", "bob@127.0.0.1: first", "      second")

	// Alice reacts to it; bob sees the reaction.
	a.press(tea.KeyUp)
	a.typeText("2")
	b.waitFor("[❤ alice@127.0.0.1]")

	// Alice edits and deletes her own messages.
	a.typeText("teh")
	a.press(tea.KeyEnter)
	a.waitFor("me: teh ✓")
	a.press(tea.KeyUp)
	a.typeText("e")
	a.waitFor("editing your message")
	a.press(tea.KeyBackspace, tea.KeyBackspace)
	a.typeText("he")
	a.press(tea.KeyEnter)
	b.waitFor("alice@127.0.0.1: the (edited)")
	a.press(tea.KeyUp)
	a.typeText("x")
	b.waitFor("message deleted")
	if strings.Contains(b.view(), "the (edited)") {
		t.Errorf("the deleted message is still shown:\n%s", b.view())
	}

	// A group, made with a command; bob gets it live.
	a.typeText("/create crew bob")
	a.press(tea.KeyEnter)
	a.waitFor("← # crew", "2 members")
	a.typeText("hi crew")
	a.press(tea.KeyEnter)
	b.press(tea.KeyEscape)
	b.waitFor("# crew", "alice@127.0.0.1: hi crew", "(1)")

	// A file: alice sends it with a progress bar, bob sees and saves it.
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "notes.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	a.typeText("/file " + path)
	a.press(tea.KeyEnter)
	a.waitFor("sent notes.bin", "100% (3.0 MiB of 3.0 MiB)", "me: 📎 notes.bin (3.0 MiB")
	b.waitFor("alice@127.0.0.1: 📎 notes.bin (3.0 MiB")
	b.typeText("/crew")
	b.press(tea.KeyEnter)
	b.waitFor("← # crew", "📎 notes.bin")
	b.press(tea.KeyUp)
	b.typeText("s")
	b.waitFor("saved notes.bin to")
	if got, err := os.ReadFile(filepath.Join(b.m.opts.DownloadDir, "notes.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("saved file: %d bytes, %v; want the %d bytes sent", len(got), err, len(data))
	}

	// Errors stay in the UI.
	a.typeText("/chat nobody")
	a.press(tea.KeyEnter)
	a.waitFor("error: the server knows no such account")
	a.typeText("/file /nonexistent/file")
	a.press(tea.KeyEnter)
	a.waitFor("error: cannot read /nonexistent/file")
	a.typeText("/file " + t.TempDir())
	a.press(tea.KeyEnter)
	a.waitFor("is a folder")
	a.typeText("/bogus")
	a.press(tea.KeyEnter)
	a.waitFor("unknown command /bogus")
	if a.quit || b.quit {
		t.Fatal("the UI quit")
	}
	a.press(tea.KeyEscape)
	a.typeText("q")
	if !a.quit {
		t.Fatal("q on the chat list did not quit")
	}
}

func TestModelScreens(t *testing.T) {
	n := newNet(t)
	alice, _ := n.account("alice"), n.account("bob")
	a := newDriver(t, n, alice, Options{})
	a.typeText("n")
	a.typeText("bob")
	a.press(tea.KeyEnter)
	a.waitFor("← bob@")
	a.press(tea.KeyEscape)

	a.typeText("s")
	a.waitFor("Privacy settings", "Read receipts          off", "Disappearing messages  off")
	a.press(tea.KeyEnter)
	a.waitFor("Read receipts          on")
	if on, _ := alice.Setting(n.ctx, client.SettingReadReceipts); on != "on" {
		t.Errorf("read receipts = %q after toggling", on)
	}
	a.press(tea.KeyDown, tea.KeyDown, tea.KeyDown, tea.KeyEnter)
	a.waitFor("Disappearing messages  5m")
	a.press(tea.KeyEscape)

	a.typeText("v")
	v := a.waitFor("Safety number with", "█", "Not verified yet")
	digits := 0
	for _, r := range v {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if digits < 60 {
		t.Errorf("the safety number shows %d digits, want 60:\n%s", digits, v)
	}
	a.typeText("m")
	a.waitFor("✓ verified")
	a.press(tea.KeyEscape)

	a.typeText("d")
	a.waitFor("(this device)")
	a.typeText("x")
	a.waitFor("error: this is the device you are using")
	a.press(tea.KeyEscape)

	a.typeText("l")
	a.waitFor("Link a new device", "link code:")
	a.typeText("not-a-code")
	a.press(tea.KeyEnter)
	a.waitFor("error: that is not a link code")
	a.press(tea.KeyEscape)

	a.typeText("?")
	a.waitFor("keys and commands", "more: pgdn")
	a.press(tea.KeyPgDown)
	a.waitFor("/create NAME MEMBER...")
}

// TestModelLayout checks every screen fills the window exactly, at
// several sizes, and that NO_COLOR leaves no colour codes.
func TestModelLayout(t *testing.T) {
	n := newNet(t)
	alice, _ := n.account("alice"), n.account("bob")
	for _, noColor := range []bool{false, true} {
		a := newDriver(t, n, alice, Options{NoColor: noColor})
		if len(a.m.chats) == 0 {
			a.typeText("n")
			a.typeText("bob")
			a.press(tea.KeyEnter)
			a.waitFor("← bob@")
			a.typeText(strings.Repeat("a long line of text that wraps ", 8))
			a.press(tea.KeyEnter)
			a.waitFor("me: a long line")
			a.press(tea.KeyEscape)
		}
		screens := map[string]func(){
			"list": func() {},
			"chat": func() { a.press(tea.KeyEnter); a.waitFor("← bob@") },
			"help": func() { a.typeText("?") },
			"settings": func() {
				a.typeText("s")
				a.waitFor("Read receipts")
			},
			"recovery": func() {
				a.typeText("r")
				a.waitFor("Recovery key")
			},
		}
		for name, open := range screens {
			for _, size := range [][2]int{{80, 24}, {60, 20}, {120, 40}} {
				a.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
				open()
				content := a.m.View().Content
				lines := strings.Split(content, "\n")
				if len(lines) != size[1] {
					t.Errorf("%s at %dx%d: %d lines", name, size[0], size[1], len(lines))
				}
				for i, l := range lines {
					if w := lipgloss.Width(l); w > size[0] {
						t.Errorf("%s at %dx%d: line %d is %d wide: %q", name, size[0], size[1], i, w, ansi.Strip(l))
					}
				}
				hasColor := strings.Contains(content, "[38;") || strings.Contains(content, ";38;")
				if noColor && hasColor {
					t.Errorf("%s with NO_COLOR has colour codes", name)
				}
				if name == "chat" && !noColor && !hasColor {
					t.Errorf("%s without NO_COLOR has no colour", name)
				}
				a.press(tea.KeyEscape)
				a.waitFor("Parley — alice@")
			}
		}
	}
}

func TestParseTimer(t *testing.T) {
	for in, want := range map[string]time.Duration{"off": 0, "0": 0, "30s": 30 * time.Second, "1h": time.Hour, "7d": 7 * 24 * time.Hour, "365d": 365 * 24 * time.Hour} {
		got, err := parseTimer(in)
		if err != nil || got != want {
			t.Errorf("parseTimer(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "366d", "abc", "0d", "9999h"} {
		if _, err := parseTimer(in); err == nil {
			t.Errorf("parseTimer(%q) accepted", in)
		}
	}
}

func TestShortTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.Local)
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{now.Add(-time.Hour), "14:00"},
		{now.Add(-48 * time.Hour), now.Add(-48 * time.Hour).Format("Mon")},
		{now.Add(-30 * 24 * time.Hour), "26 Oct"},
		{time.Date(2025, 1, 2, 0, 0, 0, 0, time.Local), "2025-01-02"},
		{time.Time{}, ""},
	} {
		if got := shortTime(c.t, now); got != c.want {
			t.Errorf("shortTime(%v) = %q, want %q", c.t, got, c.want)
		}
	}
	_ = fmt.Sprint
}

// TestModelLive covers the live parts: scrollback through a history longer
// than a page, typing notices, the bell for other chats and the
// connection state.
func TestModelLive(t *testing.T) {
	n := newNet(t)
	alice, bob := n.account("alice"), n.account("bob")
	for _, c := range []*client.Client{alice, bob} {
		for _, k := range []string{client.SettingTyping, client.SettingReadReceipts} {
			if err := c.SetSetting(n.ctx, k, "on"); err != nil {
				t.Fatal(err)
			}
		}
	}
	chat, _, err := alice.SendTo(n.ctx, "bob", "message 0")
	if err != nil {
		t.Fatal(err)
	}
	const total = 2*pageSize + 30
	for i := 1; i < total; i++ {
		if _, err := alice.Send(n.ctx, chat, fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	b := newDriver(t, n, bob, Options{Bell: true})
	b.waitFor(fmt.Sprintf("(%d)", total))
	b.press(tea.KeyEnter)
	b.waitFor(fmt.Sprintf("message %d", total-1))
	// Page up until the first message shows: older pages load on the way.
	for i := 0; i < 200 && !strings.Contains(b.view(), "message 0\n"); i++ {
		b.press(tea.KeyPgUp)
	}
	if v := b.view(); !strings.Contains(v, "message 0\n") || strings.Contains(v, "older messages") {
		t.Fatalf("scrollback did not reach the first message:\n%s", v)
	}
	got := 0
	for _, v := range b.m.conv.msgs {
		if strings.HasPrefix(string(v.m.Body), "message ") {
			got++
		}
	}
	if got != total {
		t.Errorf("loaded %d messages, want %d", got, total)
	}
	for i := 0; i < 100 && b.m.conv.scroll > 0; i++ {
		b.press(tea.KeyPgDown)
	}

	// Typing notices, both turned on.
	a := newDriver(t, n, alice, Options{})
	a.press(tea.KeyEnter)
	a.waitFor("← bob@")
	// Bob read everything, and both allow read receipts.
	a.waitFor("✓✓ read")
	a.typeText("wri")
	b.waitFor("← alice@127.0.0.1 · typing…")

	// A message in another chat rings the bell and marks the title.
	grp, err := alice.CreateGroup(n.ctx, "other", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(n.ctx, grp, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for b.bells == 0 && time.Now().Before(deadline) {
		b.pump()
		time.Sleep(50 * time.Millisecond)
	}
	if b.bells == 0 {
		t.Error("no bell for a message in another chat")
	}
	b.waitFor("alice@127.0.0.1: message")
	deadline = time.Now().Add(30 * time.Second)
	for b.m.View().WindowTitle != "(1) Parley" && time.Now().Before(deadline) {
		b.pump()
		time.Sleep(50 * time.Millisecond)
	}
	if title := b.m.View().WindowTitle; title != "(1) Parley" {
		t.Errorf("title = %q, want the unread marker for the other chat", title)
	}

	// A peer's escape sequences never reach the terminal.
	if _, err := alice.Send(n.ctx, chat, "evil\x1b]0;pwned\x07\x1b[2J\u202eend"); err != nil {
		t.Fatal(err)
	}
	b.waitFor("alice@127.0.0.1: evil]0;pwned[2Jend")
	if raw := b.m.View().Content; strings.Contains(raw, "\x1b]0;pwned") || strings.Contains(raw, "\x07") || strings.Contains(raw, "\u202e") {
		t.Errorf("a peer's control sequence reached the screen: %q", raw)
	}

	// Connection state, from events made up here: the live client's own
	// (it reports the queue each time it sends) are no longer delivered.
	b.events = nil
	b.send(eventMsg(client.Event{Kind: client.EventConnection, State: client.Reconnecting, Queued: 2}))
	b.waitFor("○ reconnecting (2 queued)")
	b.send(eventMsg(client.Event{Kind: client.EventConnection, State: client.Offline, Queued: 3}))
	b.waitFor("○ offline (3 queued)")
	b.send(eventMsg(client.Event{Kind: client.EventConnection, State: client.Online}))
	b.waitFor("● online")
}

// TestTransferProgress shows a transfer's progress bar while it runs and
// its end in the status line.
func TestTransferProgress(t *testing.T) {
	n := newNet(t)
	for _, noColor := range []bool{false, true} {
		m := New(n.ctx, n.account(fmt.Sprintf("u%v", noColor)), nil, Options{NoColor: noColor})
		m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		m.conv = &convState{id: "x", selected: -1}
		m.screen = screenChat
		release := make(chan struct{})
		cmd := m.startTransfer("sending", "big.iso", func(_ context.Context, p client.FileProgress) (string, error) {
			p(1<<20, 4<<20)
			<-release
			p(4<<20, 4<<20)
			return "sent big.iso", nil
		})
		m.Update(cmd())
		v := ansi.Strip(m.View().Content)
		if !strings.Contains(v, "sending big.iso") || !strings.Contains(v, " 25% (1.0 MiB of 4.0 MiB)") {
			t.Fatalf("no progress bar at 25%%:\n%s", v)
		}
		if noColor && !strings.Contains(v, "#####...............") {
			t.Errorf("NO_COLOR bar not drawn in ASCII:\n%s", v)
		}
		if again := m.startTransfer("sending", "other", nil); again != nil || !strings.Contains(m.status, "already sending") {
			t.Errorf("a second transfer started while one runs (status %q)", m.status)
		}
		close(release)
		for m.transfer != nil {
			m.Update(m.transfer.wait())
		}
		if v := ansi.Strip(m.View().Content); !strings.Contains(v, "sent big.iso") || !strings.Contains(v, "100% (4.0 MiB of 4.0 MiB)") {
			t.Errorf("no completed transfer in the status line:\n%s", v)
		}
	}
}
