package historytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type chatEntry struct {
	Chat    string   `json:"chat"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Members []string `json:"members"`
	Left    bool     `json:"left"`
}

// TestRecoverRejoinThroughBinary: alice chats 1:1 with bob and in a group
// with bob and carol, shows her recovery words and loses her only device.
// `parley init --recover` on a fresh profile brings the chats back: `chats
// --json` lists them with the group's name, `history` shows the old
// messages in order. Once bob and carol have synced (`recv`), her rejoin
// requests have put the new device back into both groups: `send` from the
// recovered profile reaches bob and carol, and their replies reach it. The
// server's files hold none of the texts.
func TestRecoverRejoinThroughBinary(t *testing.T) {
	url, data := startServer(t)
	dir := t.TempDir()
	alice, bob, carol := filepath.Join(dir, "alice"), filepath.Join(dir, "bob"), filepath.Join(dir, "carol")
	for name, p := range map[string]string{"alice": alice, "bob": bob, "carol": carol} {
		ok(t, "init", "--server", url, "--username", name, "--profile", p)
	}
	stamp := time.Now().UnixNano()
	text := func(s string) string { return fmt.Sprintf("rejoin-canary-%s-%d", s, stamp) }
	send := func(profile, to, s string) string {
		t.Helper()
		var sent struct{ Chat string }
		if err := json.Unmarshal([]byte(ok(t, "send", to, text(s), "--json", "--profile", profile)), &sent); err != nil {
			t.Fatal(err)
		}
		return sent.Chat
	}
	recv := func(profile string) []message {
		t.Helper()
		return decode[message](t, ok(t, "recv", "--json", "--profile", profile))
	}
	history := func(profile, chat string) []string {
		t.Helper()
		return textsOf(decode[message](t, ok(t, "history", chat, "--json", "--limit", "1000", "--profile", profile)))
	}
	direct := send(alice, "bob@127.0.0.1", "a-b-1")
	send(alice, direct, "a-b-2")
	var created struct{ Chat string }
	if err := json.Unmarshal([]byte(ok(t, "group", "create", "rejoin crew", "bob@127.0.0.1", "carol@127.0.0.1", "--json", "--profile", alice)), &created); err != nil {
		t.Fatal(err)
	}
	group := created.Chat
	send(alice, group, "a-g-1")
	recv(bob)
	recv(carol)
	send(bob, direct, "b-a-1")
	send(carol, group, "c-g-1")
	recv(alice)
	wantDirect, wantGroup := history(alice, direct), history(alice, group)
	if len(wantDirect) != 3 || len(wantGroup) != 2 {
		t.Fatalf("alice shows %q and %q before the loss", wantDirect, wantGroup)
	}
	words := strings.TrimSpace(ok(t, "recovery", "show", "--profile", alice))
	if err := os.RemoveAll(alice); err != nil { // the only device is lost
		t.Fatal(err)
	}

	fresh := filepath.Join(dir, "fresh")
	if r := run(t, words+"\n", "init", "--recover", "--server", url, "--profile", fresh); r.code != 0 {
		t.Fatalf("init --recover: exit %d: %s", r.code, r.stderr)
	}
	whoami := func(profile string) (me struct {
		Username, Address string
		DeviceID          string `json:"device_id"`
	}) {
		t.Helper()
		if err := json.Unmarshal([]byte(ok(t, "whoami", "--json", "--profile", profile)), &me); err != nil {
			t.Fatal(err)
		}
		return me
	}
	if me := whoami(fresh); me.Username != "alice" || me.Address != "alice@127.0.0.1" {
		t.Fatalf("whoami after init --recover: %+v, want username alice", me)
	}
	chats := map[string]chatEntry{}
	for _, c := range decode[chatEntry](t, ok(t, "chats", "--json", "--profile", fresh)) {
		chats[c.Chat] = c
	}
	if c, found := chats[group]; !found || c.Name != "rejoin crew" || c.Kind != "group" || len(c.Members) != 3 || c.Left {
		t.Fatalf("recovered chats %+v: want the group %s", chats, group)
	}
	if c, found := chats[direct]; !found || len(c.Members) != 2 || c.Left {
		t.Fatalf("recovered chats %+v: want the 1:1 chat %s", chats, direct)
	}
	if got := history(fresh, direct); !slices.Equal(got, wantDirect) {
		t.Fatalf("recovered 1:1 history %q, want %q", got, wantDirect)
	}
	if got := history(fresh, group); !slices.Equal(got, wantGroup) {
		t.Fatalf("recovered group history %q, want %q", got, wantGroup)
	}
	// Not back in the groups until a member has seen the rejoin request.
	if r := run(t, "", "send", group, text("too-early"), "--profile", fresh); r.code == 0 || !strings.Contains(r.stderr, "not back in the chat yet") {
		t.Fatalf("send before the rejoin: exit %d, %q", r.code, r.stderr)
	}

	// Bob and carol sync: they answer the rejoin requests; the recovered
	// device syncs and joins by their Welcomes.
	deadline := time.Now().Add(60 * time.Second)
	for {
		recv(bob)
		recv(carol)
		recv(fresh)
		r := run(t, "", "send", group, text("a-g-after"), "--profile", fresh)
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recovered device never got back into the group: %s", r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	send(fresh, direct, "a-b-after")
	gotText := func(profile string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var seen []string
		for {
			seen = append(seen, textsOf(recv(profile))...)
			missing := false
			for _, w := range want {
				missing = missing || !slices.Contains(seen, text(w))
			}
			if !missing {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s received %q, want %q", filepath.Base(profile), seen, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	gotText(bob, "a-g-after", "a-b-after")
	gotText(carol, "a-g-after")
	send(bob, direct, "b-a-after")
	send(carol, group, "c-g-after")
	gotText(fresh, "b-a-after", "c-g-after")
	if got, want := history(fresh, direct), append(slices.Clone(wantDirect), text("a-b-after"), text("b-a-after")); !slices.Equal(got, want) {
		t.Fatalf("1:1 history after the rejoin %q, want %q", got, want)
	}

	// The same words once more, on another profile, while the first
	// restored one is still there: the new profile is a device of its own,
	// the first is revoked and says so, and the new one gets back into the
	// 1:1 chat.
	again := filepath.Join(dir, "again")
	if r := run(t, words+"\n", "init", "--recover", "--server", url, "--profile", again); r.code != 0 {
		t.Fatalf("second init --recover: exit %d: %s", r.code, r.stderr)
	}
	if a, f := whoami(again), whoami(fresh); a.DeviceID == f.DeviceID {
		t.Fatalf("both restored profiles are device %s", a.DeviceID)
	}
	if r := run(t, "", "recv", "--profile", fresh); r.code == 0 || !strings.Contains(r.stderr, "this device was revoked") {
		t.Fatalf("recv on the first restored profile after the second recovery: exit %d, %q", r.code, r.stderr)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		recv(bob)
		recv(again)
		r := run(t, "", "send", direct, text("again-b"), "--profile", again)
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second restored device never got back into the 1:1 chat: %s", r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	gotText(bob, "again-b")
	send(bob, direct, "b-again")
	gotText(again, "b-again")

	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("rejoin-canary-")) || bytes.Contains(b, []byte("rejoin crew")) {
			t.Errorf("server file %s holds a message text or chat name", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
