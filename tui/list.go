package tui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parley-im/parley/client/store"
)

// visibleChats is the chat list filtered by the search text.
func (m *Model) visibleChats() []chatItem {
	q := strings.ToLower(strings.TrimSpace(m.search.Value()))
	if q == "" {
		return m.chats
	}
	var out []chatItem
	for _, it := range m.chats {
		if strings.Contains(strings.ToLower(m.chatDisplay(it.conv)), q) {
			out = append(out, it)
		}
	}
	return out
}

// listKey handles keys on the chat list.
func (m *Model) listKey(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if m.searching {
		switch s {
		case "esc":
			m.searching = false
			m.search.Reset()
			m.search.Blur()
			m.cursor = 0
			return nil
		case "enter":
			m.searching = false
			m.search.Blur()
			cmd := m.openSelected()
			m.search.Reset()
			m.cursor = 0
			return cmd
		case "up", "down":
			m.moveCursor(s)
			return nil
		}
		var cmd tea.Cmd
		m.search, cmd = m.search.Update(k)
		m.cursor = 0
		return cmd
	}
	if m.prompting {
		switch s {
		case "esc":
			m.prompting = false
			m.prompt.Reset()
			m.prompt.Blur()
			return nil
		case "enter":
			text := strings.TrimSpace(m.prompt.Value())
			m.prompting = false
			m.prompt.Reset()
			m.prompt.Blur()
			if text == "" {
				return nil
			}
			if !strings.HasPrefix(text, "/") {
				text = "/chat " + text
			}
			return m.command(text)
		}
		var cmd tea.Cmd
		m.prompt, cmd = m.prompt.Update(k)
		return cmd
	}
	switch s {
	case "q":
		return tea.Quit
	case "?":
		m.show(screenHelp)
	case "up", "k", "down", "j", "home", "end":
		m.moveCursor(s)
	case "enter":
		return m.openSelected()
	case "/":
		m.searching = true
		m.search.Reset()
		m.cursor = 0
		return m.search.Focus()
	case "n":
		m.prompting = true
		return m.prompt.Focus()
	case "esc":
		m.search.Reset()
	case "d":
		return m.openDevices()
	case "l":
		return m.openLink()
	case "s":
		return m.openSettings()
	case "r":
		return m.openRecovery()
	case "v":
		if vis := m.visibleChats(); m.cursor < len(vis) {
			return m.openVerifyChat(vis[m.cursor].conv)
		}
	}
	return nil
}

func (m *Model) moveCursor(s string) {
	n := len(m.visibleChats())
	switch s {
	case "up", "k":
		m.cursor--
	case "down", "j":
		m.cursor++
	case "home":
		m.cursor = 0
	case "end":
		m.cursor = n - 1
	}
	m.cursor = max(0, min(m.cursor, n-1))
}

func (m *Model) openSelected() tea.Cmd {
	vis := m.visibleChats()
	if m.cursor >= len(vis) {
		return nil
	}
	return m.openChat(vis[m.cursor].conv.ID)
}

// listView draws the chat list: two lines per chat.
func (m *Model) listView() string {
	var b strings.Builder
	me := m.c.Me()
	b.WriteString(m.st.title.Render(truncate("Parley — "+me.Address, m.width)) + "\n")
	switch {
	case m.searching || m.search.Value() != "":
		b.WriteString(m.search.View() + "\n")
	case m.prompting:
		b.WriteString(m.prompt.View() + "\n")
	default:
		b.WriteString(m.st.faint.Render(truncate("enter open · / search · n new chat · d devices · l link · s settings · ? help", m.width)) + "\n")
	}
	vis := m.visibleChats()
	if len(vis) == 0 {
		if len(m.chats) == 0 {
			b.WriteString("\nNo chats yet. Press n and type an address (bob@server) to start one,\nor /create NAME MEMBER... for a group.\n")
		} else {
			b.WriteString("\nNo chat matches the search.\n")
		}
		return b.String()
	}
	rows := max(1, (m.height-3)/2)
	first := 0
	if m.cursor >= rows {
		first = m.cursor - rows + 1
	}
	now := m.opts.Now()
	for i := first; i < len(vis) && i < first+rows; i++ {
		it := vis[i]
		name := m.chatDisplay(it.conv)
		if it.conv.Kind == store.ChatGroup {
			name = "# " + name
		}
		if it.conv.Left {
			name += " (left)"
		}
		right := shortTime(it.lastAt, now)
		if it.unread > 0 {
			right = m.st.unread.Render(fmt.Sprintf("(%d)", it.unread)) + " " + right
		}
		marker := "  "
		if i == m.cursor {
			marker = "> "
		}
		left := truncate(marker+name, m.width-lipgloss.Width(right)-2)
		line := left + strings.Repeat(" ", max(1, m.width-lipgloss.Width(left)-lipgloss.Width(right))) + right
		if i == m.cursor {
			line = m.st.selected.Render(line)
		} else if it.unread > 0 {
			line = m.st.bold.Render(line)
		}
		b.WriteString(line + "\n")
		b.WriteString(m.st.faint.Render(truncate("    "+m.preview(it), m.width)) + "\n")
	}
	return b.String()
}

// preview is the last message of a chat in one line.
func (m *Model) preview(it chatItem) string {
	if t := m.typingNames(it.conv.ID); len(t) > 0 {
		return strings.Join(t, ", ") + " typing…"
	}
	l := it.last
	if l == nil {
		return "no messages yet"
	}
	who := m.accountName(l.Sender)
	if l.Mine {
		who = "me"
	}
	text := strings.ReplaceAll(string(l.Body), "\n", " ")
	switch {
	case l.Deleted:
		text = "message deleted"
	case l.State == store.StateUndecryptable:
		text = "[could not be decrypted]"
	case l.Kind == store.KindSystem:
		return text
	case l.Kind == store.KindFile:
		text = fileText(l)
	}
	if l.Mine && !l.Deleted {
		if mark := stateMark(l.State); mark != "" {
			text += " " + mark
		}
	}
	return who + ": " + text
}

// shortTime is a list time: the clock today, the weekday this week, else
// the date.
func shortTime(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	t, now = t.Local(), now.Local()
	switch {
	case sameDay(t, now):
		return t.Format("15:04")
	case now.Sub(t) < 6*24*time.Hour:
		return t.Format("Mon")
	case t.Year() == now.Year():
		return t.Format("2 Jan")
	}
	return t.Format("2006-01-02")
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// truncate cuts s to width cells.
func truncate(s string, width int) string {
	if width <= 0 {
		return ""
	}
	return ansi.Truncate(s, width, "…")
}

// fitHeight pads or cuts s to exactly h lines.
func fitHeight(s string, h int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > h {
		lines = lines[:max(0, h)]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// lipglossWidth is the width of s in cells.
func lipglossWidth(s string) int { return lipgloss.Width(s) }

// wrapText wraps plain text to width.
func wrapText(s string, width int) string { return ansi.Wrap(s, max(10, width), " ") }
