package tui

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/parley-im/parley/client"
)

// recoveryPhase is where the recovery-key screen is.
type recoveryPhase int

const (
	recoveryIntro     recoveryPhase = iota // explains, waits for enter
	recoveryLoading                        // asking the SDK for the words
	recoveryShowing                        // words on screen, asking one back
	recoveryConfirmed                      // the user typed it back
	recoveryFailed                         // the SDK refused (already shown…)
)

// recoveryState is the recovery-key screen. The words live only here,
// while the screen shows them; they are cleared when it closes.
type recoveryState struct {
	phase recoveryPhase
	words []string
	// ask is the index of the word the user must type back.
	ask   int
	input textinput.Model
	// leaving is set by a first Esc before confirming.
	leaving bool
	wrong   bool
	err     error
}

type recoveryMsg struct {
	words []string
	err   error
}

func newRecoveryInput(noColor bool) textinput.Model {
	in := textinput.New()
	in.Prompt = "word: "
	in.CharLimit = 32
	is := in.Styles()
	if noColor {
		is = textinput.Styles{}
	}
	is.Cursor.Blink = false
	in.SetStyles(is)
	return in
}

func (m *Model) openRecovery() tea.Cmd {
	m.show(screenRecovery)
	m.recovery = recoveryState{phase: recoveryIntro, input: newRecoveryInput(m.opts.NoColor)}
	return nil
}

// fetchRecovery asks the SDK for the words: it makes them (and stores the
// sealed recovery bundle on the server) the first time, and refuses after.
func (m *Model) fetchRecovery() tea.Cmd {
	m.recovery.phase = recoveryLoading
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		words, err := c.RecoveryWords(ctx)
		return recoveryMsg{words: words, err: err}
	}
}

func (m *Model) gotRecovery(msg recoveryMsg) tea.Cmd {
	r := &m.recovery
	if m.screen != screenRecovery || r.phase != recoveryLoading {
		clear(msg.words) // the screen was left meanwhile: drop them
		return nil
	}
	if msg.err != nil {
		r.phase, r.err = recoveryFailed, msg.err
		return nil
	}
	r.phase, r.words = recoveryShowing, msg.words
	r.ask = rand.IntN(len(msg.words))
	return r.input.Focus()
}

// closeRecovery leaves the screen and forgets the words.
func (m *Model) closeRecovery() tea.Cmd {
	clear(m.recovery.words)
	m.recovery = recoveryState{}
	m.screen = m.back
	if m.screen == screenChat {
		return m.composer.Focus()
	}
	return nil
}

func (m *Model) recoveryKey(k tea.KeyPressMsg) tea.Cmd {
	r := &m.recovery
	s := k.String()
	switch r.phase {
	case recoveryIntro:
		switch s {
		case "enter":
			return m.fetchRecovery()
		case "esc", "q":
			return m.closeRecovery()
		}
		return nil
	case recoveryShowing:
		switch s {
		case "esc":
			if r.leaving {
				return m.closeRecovery()
			}
			r.leaving, r.wrong = true, false
			return nil
		case "enter":
			got := strings.ToLower(strings.TrimSpace(r.input.Value()))
			r.input.Reset()
			if got == r.words[r.ask] {
				clear(r.words)
				r.words, r.phase, r.leaving, r.wrong = nil, recoveryConfirmed, false, false
				r.input.Blur()
				m.setInfo("recovery key confirmed")
				return nil
			}
			r.wrong = true
			return nil
		}
		r.leaving, r.wrong = false, false
		var cmd tea.Cmd
		r.input, cmd = r.input.Update(k)
		return cmd
	}
	if s == "esc" || s == "q" || s == "enter" {
		return m.closeRecovery()
	}
	return nil
}

// recoveryErrorText explains why the words cannot be shown.
func recoveryErrorText(err error) string {
	switch {
	case errors.Is(err, client.ErrRecoveryShown):
		return "The recovery key of this account was already shown once. It is not kept in readable form, so it cannot be shown again. Your devices still open your history; if you lost the words (or think someone saw them), `parley recovery rotate` makes new ones and retires these."
	case errors.Is(err, client.ErrRecoveryDevice):
		return "This device was restored with the recovery words by an earlier Parley and its key derives from them. To retire them, link a new device, revoke this one from it, and rotate the words there."
	}
	return "The recovery key cannot be shown now: " + errorText(err)
}

func (m *Model) recoveryView(b *strings.Builder) {
	r := &m.recovery
	b.WriteString(m.st.title.Render("Recovery key") + m.st.faint.Render("  (esc back)") + "\n\n")
	switch r.phase {
	case recoveryIntro:
		b.WriteString(wrapText("The recovery key is a list of words that opens your account and its whole history on a new device, even if every device you have is lost. Anyone who has them can take over your account and read your history.", m.width) + "\n\n")
		b.WriteString(wrapText("They are shown only once. Have paper ready, and make sure nobody can see your screen.", m.width) + "\n\n")
		b.WriteString(m.st.bold.Render("enter") + " show the words now   " + m.st.bold.Render("esc") + " not now\n")
	case recoveryLoading:
		b.WriteString("making the recovery key…\n")
	case recoveryShowing:
		b.WriteString(m.st.errText.Render(wrapText("These words open your account and its history. Write them on paper, keep them offline, never type them into a website. They are not shown again.", m.width)) + "\n\n")
		b.WriteString(wordGrid(r.words, m.width) + "\n")
		b.WriteString(fmt.Sprintf("To confirm you wrote them down, type word #%d and press enter.\n", r.ask+1))
		b.WriteString(r.input.View() + "\n")
		switch {
		case r.wrong:
			b.WriteString(m.st.errText.Render(fmt.Sprintf("That is not word #%d: check what you wrote down.", r.ask+1)) + "\n")
		case r.leaving:
			b.WriteString(m.st.errText.Render("Not confirmed: the words are not shown again. Press esc again to leave anyway.") + "\n")
		}
	case recoveryConfirmed:
		b.WriteString(m.st.infoText.Render("✓ Confirmed. Keep the words somewhere safe: with them, `parley init --recover` restores your account and history.") + "\n\n")
		b.WriteString(m.st.faint.Render("enter or esc: back") + "\n")
	case recoveryFailed:
		b.WriteString(m.st.errText.Render(wrapText(recoveryErrorText(r.err), m.width)) + "\n\n")
		b.WriteString(m.st.faint.Render("enter or esc: back") + "\n")
	}
}

// wordGrid lays the words out numbered, down the columns, as wide as fits.
func wordGrid(words []string, width int) string {
	cell := 0
	for _, w := range words {
		cell = max(cell, len(w))
	}
	cell += 6 // "NN. " and a gap
	cols := max(1, min(5, (width-2)/cell))
	rows := (len(words) + cols - 1) / cols
	var b strings.Builder
	for r := range rows {
		line := ""
		for c := range cols {
			i := c*rows + r
			if i >= len(words) {
				break
			}
			line += fmt.Sprintf("%2d. %-*s", i+1, cell-4, words[i])
		}
		b.WriteString("  " + strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}
