package tui

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

// Our message shows ✓ once the server has it and ✓✓ once the peer's
// device acknowledged it, from state events alone (the model never reads
// the conversation again for it); the header shows the peer's last seen,
// replaced by "typing…" while the peer types.
func TestModelDeliveryAndPresence(t *testing.T) {
	n := newNet(t)
	alice, bob := n.account("alice"), n.account("bob")
	for _, k := range []string{client.SettingLastSeen, client.SettingTyping} {
		if err := bob.SetSetting(n.ctx, k, "on"); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.SetSetting(n.ctx, client.SettingTyping, "on"); err != nil {
		t.Fatal(err)
	}
	chat, err := alice.StartDirect(n.ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	a := newDriver(t, n, alice, Options{})
	a.typeText("n")
	a.typeText("bob")
	a.press(tea.KeyEnter)
	a.waitFor("← bob@")
	a.typeText("are you there")
	a.press(tea.KeyEnter)
	a.waitFor("me: are you there ✓✓")
	var id client.MessageID
	for _, v := range a.m.conv.msgs {
		if string(v.m.Body) == "are you there" {
			id = v.m.ID
		}
	}
	if st := a.m.states[id]; st != store.StateDelivered {
		t.Errorf("the model learnt state %v from events, want delivered", st)
	}
	// The chat list shows it too.
	a.press(tea.KeyEscape)
	a.waitFor("me: are you there ✓✓")
	a.press(tea.KeyEnter)
	a.waitFor("← bob@")

	// A state event for a message not on screen changes nothing shown;
	// one for a shown message changes its mark at once.
	a.send(eventMsg(client.Event{Kind: client.EventState, Chat: chat, Target: id, MessageState: store.StateRead}))
	if v := a.view(); !strings.Contains(v, "me: are you there ✓✓ read") {
		t.Fatalf("a read event did not show:\n%s", v)
	}

	// Bob opens the chat: that tells alice he is active (he allows it).
	b := newDriver(t, n, bob, Options{})
	b.waitFor("alice@")
	b.press(tea.KeyEnter)
	b.waitFor("are you there")
	a.waitFor("· last seen ")
	seen, ok, err := alice.LastSeen(n.ctx, chat)
	if err != nil || !ok || time.Since(seen) > time.Minute {
		t.Fatalf("stored last seen %v %v %v", seen, ok, err)
	}
	b.typeText("yes")
	a.waitFor("← bob@127.0.0.1 · typing…")
	b.press(tea.KeyEnter)
	a.waitFor("bob@127.0.0.1: yes")
	// Alice's own last seen is off: bob's header shows none.
	if v := b.view(); strings.Contains(v, "last seen") {
		t.Errorf("bob sees a last seen alice never shared:\n%s", v)
	}
}

// The recovery key screen explains first, shows the words once with the
// warning, asks one back, and says readably that they cannot be shown
// again.
func TestModelRecovery(t *testing.T) {
	n := newNet(t)
	alice := n.account("alice")
	a := newDriver(t, n, alice, Options{})
	a.waitFor("Parley")
	a.typeText("r")
	a.waitFor("Recovery key", "shown only once", "enter show the words now")
	a.press(tea.KeyEscape)
	if a.m.screen != screenList {
		t.Fatalf("esc on the intro left screen %v", a.m.screen)
	}
	a.typeText("r")
	a.press(tea.KeyEnter)
	v := a.waitFor("open your account and its history", "type word #")
	words := regexp.MustCompile(`(\d+)\. ([a-z]+)`).FindAllStringSubmatch(v, -1)
	byNum := map[int]string{}
	for _, w := range words {
		i, _ := strconv.Atoi(w[1])
		byNum[i] = w[2]
	}
	if len(words) < 12 || len(byNum) != len(words) || byNum[len(words)] == "" {
		t.Fatalf("the words are not shown numbered 1 to N:\n%s", v)
	}
	ask, _ := strconv.Atoi(regexp.MustCompile(`type word #(\d+)`).FindStringSubmatch(v)[1])
	wrong := byNum[ask%len(words)+1]
	if wrong == byNum[ask] {
		wrong += "x"
	}
	a.typeText(wrong)
	a.press(tea.KeyEnter)
	a.waitFor("That is not word #")
	a.press(tea.KeyEscape)
	a.waitFor("Press esc again to leave anyway")
	a.typeText(byNum[ask])
	a.press(tea.KeyEnter)
	v = a.waitFor("✓ Confirmed")
	if strings.Contains(v, " 1. "+byNum[1]) {
		t.Errorf("the words stay on screen after confirming:\n%s", v)
	}
	if len(a.m.recovery.words) != 0 {
		t.Error("the model keeps the words after confirming")
	}
	a.press(tea.KeyEscape)

	// Once shown, never again.
	a.typeText("r")
	a.press(tea.KeyEnter)
	a.waitFor("already shown once", "cannot be shown again")
	a.press(tea.KeyEscape)
	if a.m.screen != screenList {
		t.Fatalf("esc left screen %v", a.m.screen)
	}
}
