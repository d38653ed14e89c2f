package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// convState is the open conversation.
type convState struct {
	id   client.ChatID
	conv *client.Conversation
	// msgs are the loaded messages, oldest first.
	msgs    []msgView
	more    bool
	loading bool
	loaded  bool
	// scroll is how many lines the view is scrolled up from the bottom.
	scroll int
	// selected indexes msgs; -1 when no message is selected.
	selected int
	replyTo  *store.Message
	editing  *store.Message
	reactTo  *store.Message
}

// msgView is one message with what is needed to draw it.
type msgView struct {
	m         *store.Message
	reactions []store.Reaction
	// quoted is the message replied to, if loaded.
	quoted *store.Message
}

// historyMsg is a loaded page of a conversation.
type historyMsg struct {
	chat  client.ChatID
	msgs  []msgView
	more  bool
	older bool
	err   error
}

// openChat switches to chat and loads its newest messages.
func (m *Model) openChat(chat client.ChatID) tea.Cmd {
	if m.conv == nil || m.conv.id != chat {
		m.conv = &convState{id: chat, selected: -1}
		for _, it := range m.chats {
			if it.conv.ID == chat {
				m.conv.conv = it.conv
			}
		}
		m.composer.Reset()
	}
	m.show(screenChat)
	cmds := []tea.Cmd{m.reloadConv(), m.loadLastSeen(chat), m.sendLastSeen()}
	if m.conv.conv == nil {
		cmds = append(cmds, m.loadChats())
	}
	return tea.Batch(cmds...)
}

// reloadConv reads the newest page of the open chat again and marks it
// read.
func (m *Model) reloadConv() tea.Cmd {
	if m.conv == nil {
		return nil
	}
	return m.loadHistory(m.conv.id, 0, m.screen == screenChat)
}

// loadOlder reads the page before the oldest loaded message.
func (m *Model) loadOlder() tea.Cmd {
	cv := m.conv
	if cv == nil || !cv.more || cv.loading || len(cv.msgs) == 0 {
		return nil
	}
	cv.loading = true
	return m.loadHistory(cv.id, cv.msgs[0].m.Position, false)
}

func (m *Model) loadHistory(chat client.ChatID, before store.Position, markRead bool) tea.Cmd {
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		page, err := c.History(ctx, chat, store.HistoryQuery{Before: before, Limit: pageSize, IncludeDeleted: true})
		if err != nil {
			return historyMsg{chat: chat, older: before != 0, err: err}
		}
		out := historyMsg{chat: chat, more: page.More, older: before != 0}
		byID := map[client.MessageID]*store.Message{}
		for _, msg := range page.Messages {
			cleanMessage(msg)
			byID[msg.ID] = msg
		}
		for _, msg := range page.Messages {
			v := msgView{m: msg}
			if !msg.Deleted && msg.Kind != store.KindSystem {
				v.reactions, _ = c.Store().Reactions(ctx, chat, msg.ID)
				for i := range v.reactions {
					v.reactions[i].Body = []byte(cleanLine(string(v.reactions[i].Body)))
				}
			}
			if msg.Kind == store.KindReply && !msg.Target.IsZero() {
				if q, ok := byID[msg.Target]; ok {
					v.quoted = q
				} else if q, err := c.Store().Message(ctx, msg.Target); err == nil {
					cleanMessage(q)
					v.quoted = q
				}
			}
			out.msgs = append(out.msgs, v)
		}
		if markRead && before == 0 {
			for i := len(page.Messages) - 1; i >= 0; i-- {
				if msg := page.Messages[i]; !msg.Mine && msg.Seq > 0 {
					if conv, err := c.Store().Conversation(ctx, chat); err == nil && conv.LastReadSeq < msg.Seq {
						if err := c.MarkRead(ctx, chat, msg.ID); err != nil {
							out.err = err
						}
					}
					break
				}
			}
		}
		return out
	}
}

// gotHistory merges a loaded page into the open conversation.
func (m *Model) gotHistory(h historyMsg) tea.Cmd {
	cv := m.conv
	if cv == nil || cv.id != h.chat {
		return nil
	}
	if h.older {
		cv.loading = false
	}
	if h.err != nil {
		m.setError(h.err)
		if len(h.msgs) == 0 {
			return nil
		}
	}
	m.freshStates(h.msgs)
	if h.older {
		cv.msgs = append(h.msgs, cv.msgs...)
		cv.more = h.more
		if cv.selected >= 0 {
			cv.selected += len(h.msgs)
		}
	} else {
		var selID client.MessageID
		if cv.selected >= 0 && cv.selected < len(cv.msgs) {
			selID = cv.msgs[cv.selected].m.ID
		}
		var keep []msgView
		if len(h.msgs) > 0 && !h.msgs[0].m.Position.Pending() {
			first := h.msgs[0].m.Position
			for _, v := range cv.msgs {
				if !v.m.Position.Pending() && v.m.Position < first {
					keep = append(keep, v)
				}
			}
		}
		if !cv.loaded || len(keep) == 0 {
			cv.more = h.more
		}
		cv.msgs = append(keep, h.msgs...)
		cv.loaded = true
		if cv.selected >= 0 {
			cv.selected = -1
			for i, v := range cv.msgs {
				if v.m.ID == selID {
					cv.selected = i
				}
			}
		}
	}
	var cmds []tea.Cmd
	for _, v := range h.msgs {
		ids := m.resolveNames(append(reactionSenders(v), v.m.Sender))
		cmds = append(cmds, ids)
	}
	if !h.older {
		cmds = append(cmds, m.loadChats())
	}
	// Fill the window: load more while the history is shorter than it.
	if lines, _ := m.convLines(); len(lines) < m.convHeight() {
		cmds = append(cmds, m.loadOlder())
	}
	return tea.Batch(cmds...)
}

func reactionSenders(v msgView) []identity.AccountID {
	var out []identity.AccountID
	for _, r := range v.reactions {
		out = append(out, r.Sender)
	}
	if v.quoted != nil {
		out = append(out, v.quoted.Sender)
	}
	return out
}

// convHeight is how many lines the message area has.
func (m *Model) convHeight() int {
	h := m.height - 1 /* status */ - 1 /* header */ - 1 /* typing */ - m.composer.Height()
	if m.conv != nil && (m.conv.replyTo != nil || m.conv.editing != nil || m.conv.reactTo != nil) {
		h--
	}
	if m.transfer != nil {
		h--
	}
	return max(1, h)
}

// scroll moves the view up (positive) or down by n lines, loading older
// messages when it reaches the top.
func (m *Model) scroll(n int) tea.Cmd {
	cv := m.conv
	if cv == nil {
		return nil
	}
	lines, _ := m.convLines()
	top := max(0, len(lines)-m.convHeight())
	cv.scroll = max(0, min(cv.scroll+n, top))
	if cv.scroll >= top {
		return m.loadOlder()
	}
	return nil
}

// chatKey handles keys in a conversation.
func (m *Model) chatKey(k tea.KeyPressMsg) tea.Cmd {
	cv := m.conv
	s := k.String()
	if cv.selected >= 0 {
		return m.selectionKey(s)
	}
	switch s {
	case "esc":
		switch {
		case cv.replyTo != nil || cv.editing != nil || cv.reactTo != nil:
			if cv.editing != nil || cv.reactTo != nil {
				m.composer.Reset()
			}
			cv.replyTo, cv.editing, cv.reactTo = nil, nil, nil
		default:
			m.screen = screenList
			m.composer.Blur()
			return m.loadChats()
		}
		return nil
	case "enter":
		return m.submit()
	case "pgup":
		return m.scroll(m.convHeight() - 1)
	case "pgdown":
		return m.scroll(-(m.convHeight() - 1))
	case "?":
		if m.composer.Value() == "" {
			m.show(screenHelp)
			return nil
		}
	case "up":
		if m.composer.Value() == "" && len(cv.msgs) > 0 {
			cv.selected = len(cv.msgs) - 1
			m.revealSelected()
			return nil
		}
	}
	var cmd tea.Cmd
	before := m.composer.Value()
	m.composer, cmd = m.composer.Update(k)
	if m.composer.Value() != before {
		return tea.Batch(cmd, m.sendTyping())
	}
	return cmd
}

// selectionKey handles keys while a message is selected.
func (m *Model) selectionKey(s string) tea.Cmd {
	cv := m.conv
	sel := cv.msgs[cv.selected].m
	switch s {
	case "esc":
		cv.selected = -1
	case "up", "k":
		if cv.selected > 0 {
			cv.selected--
			m.revealSelected()
		} else {
			return m.loadOlder()
		}
	case "down", "j":
		cv.selected++
		if cv.selected >= len(cv.msgs) {
			cv.selected = -1
			cv.scroll = 0
		} else {
			m.revealSelected()
		}
	case "r":
		if sel.Deleted || sel.Kind == store.KindSystem {
			m.setError(fmt.Errorf("that message cannot be replied to"))
			return nil
		}
		cv.replyTo, cv.editing, cv.reactTo = sel, nil, nil
		cv.selected = -1
	case "e":
		if !sel.Mine || sel.Deleted || (sel.Kind != store.KindText && sel.Kind != store.KindReply) {
			m.setError(fmt.Errorf("only your own text messages can be edited"))
			return nil
		}
		cv.editing, cv.replyTo, cv.reactTo = sel, nil, nil
		cv.selected = -1
		m.composer.SetValue(string(sel.Body))
	case "x", "delete":
		if !sel.Mine || sel.Deleted || sel.Kind == store.KindSystem {
			m.setError(fmt.Errorf("only your own messages can be deleted"))
			return nil
		}
		cv.selected = -1
		chat, id := cv.id, sel.ID
		return m.do("deleting", func(ctx context.Context) doneMsg {
			_, err := m.c.Delete(ctx, chat, id)
			return doneMsg{err: err}
		})
	case "s":
		if sel.Kind != store.KindFile || sel.Deleted {
			m.setError(fmt.Errorf("only file messages can be saved"))
			return nil
		}
		cv.selected = -1
		return m.saveFile(sel)
	case "+":
		cv.reactTo, cv.replyTo, cv.editing = sel, nil, nil
		cv.selected = -1
		m.composer.SetValue("/react ")
	case "1", "2", "3", "4", "5":
		cv.selected = -1
		return m.react(sel, quickReactions[s[0]-'1'])
	}
	return nil
}

// react sets our reaction to target; the same reaction again withdraws it.
func (m *Model) react(target *store.Message, reaction string) tea.Cmd {
	if target.Deleted || target.Kind == store.KindSystem {
		m.setError(fmt.Errorf("that message cannot get reactions"))
		return nil
	}
	for _, v := range m.conv.msgs {
		if v.m.ID == target.ID {
			for _, r := range v.reactions {
				if r.Sender == m.c.Me().AccountID && string(r.Body) == reaction {
					reaction = ""
				}
			}
		}
	}
	chat, id := m.conv.id, target.ID
	return m.do("reacting", func(ctx context.Context) doneMsg {
		_, err := m.c.React(ctx, chat, id, reaction)
		return doneMsg{err: err}
	})
}

// revealSelected scrolls so the selected message is on screen.
func (m *Model) revealSelected() {
	cv := m.conv
	lines, starts := m.convLines()
	if cv.selected < 0 || cv.selected >= len(starts) {
		return
	}
	h := m.convHeight()
	bottom := len(lines) - cv.scroll // exclusive
	top := bottom - h
	start := starts[cv.selected]
	end := len(lines)
	if cv.selected+1 < len(starts) {
		end = starts[cv.selected+1]
	}
	if start < top {
		cv.scroll = len(lines) - start - h
	} else if end > bottom {
		cv.scroll = len(lines) - end
	}
	cv.scroll = max(0, min(cv.scroll, max(0, len(lines)-h)))
}

// sendTyping tells the chat we are typing, at most every few seconds. The
// SDK sends nothing unless the user turned typing notices on.
func (m *Model) sendTyping() tea.Cmd {
	now := m.opts.Now()
	if m.conv == nil || now.Sub(m.lastTyping) < 4*time.Second || strings.HasPrefix(m.composer.Value(), "/") {
		return nil
	}
	m.lastTyping = now
	c, ctx, chat := m.c, m.ctx, m.conv.id
	return func() tea.Msg {
		_ = c.SetTyping(ctx, chat, true) // best effort: a lost notice only hides "typing…"
		return nil
	}
}

// chatView draws the open conversation.
func (m *Model) chatView() string {
	cv := m.conv
	var b strings.Builder
	name := "…"
	info := ""
	if cv.conv != nil {
		name = m.chatDisplay(cv.conv)
		switch cv.conv.Kind {
		case store.ChatGroup:
			name = "# " + name
			info = fmt.Sprintf(" · %d members", len(cv.conv.Members))
		}
		if cv.conv.DisappearAfter > 0 {
			info += " · disappearing after " + cv.conv.DisappearAfter.String()
		}
		if cv.conv.Left {
			info += " · you left"
		}
	}
	if p := m.presence(cv); p != "" {
		info += " · " + p
	}
	b.WriteString(truncate(m.st.title.Render("← "+name)+m.st.faint.Render(info+"  (esc back)"), m.width) + "\n")
	lines, _ := m.convLines()
	h := m.convHeight()
	end := len(lines) - cv.scroll
	start := max(0, end-h)
	shown := lines[start:max(start, end)]
	for i := len(shown); i < h; i++ {
		if i == len(shown) && start == 0 {
			switch {
			case cv.loading || !cv.loaded:
				b.WriteString(m.st.faint.Render("loading…") + "\n")
				continue
			case cv.more:
				b.WriteString(m.st.faint.Render("↑ older messages (pgup)") + "\n")
				continue
			case len(lines) == 0:
				b.WriteString(m.st.faint.Render("No messages yet. Say hello!") + "\n")
				continue
			}
		}
		b.WriteString("\n")
	}
	for _, l := range shown {
		b.WriteString(l + "\n")
	}
	typing := ""
	if cv.scroll > 0 {
		typing = fmt.Sprintf("↓ %d more lines below (pgdn)", cv.scroll)
	} else if cv.selected >= 0 {
		typing = "r reply · e edit · x delete · s save file · 1-5 react · + reaction · esc"
	}
	b.WriteString(m.st.faint.Render(truncate(typing, m.width)) + "\n")
	switch {
	case cv.editing != nil:
		b.WriteString(m.st.infoText.Render(truncate("editing your message (esc cancels)", m.width)) + "\n")
	case cv.replyTo != nil:
		b.WriteString(m.st.infoText.Render(truncate("replying to "+m.accountName(cv.replyTo.Sender)+": "+oneLine(cv.replyTo.Body)+"  (esc cancels)", m.width)) + "\n")
	case cv.reactTo != nil:
		b.WriteString(m.st.infoText.Render(truncate("type a reaction and press enter (esc cancels)", m.width)) + "\n")
	}
	if m.transfer != nil {
		b.WriteString(m.transferLine() + "\n")
	}
	b.WriteString(m.composer.View())
	return b.String()
}

// presence is the header's live part: who is typing, else (in a 1:1 chat
// whose other account shares it) when it was last seen.
func (m *Model) presence(cv *convState) string {
	direct := cv.conv != nil && isDirect(cv.conv)
	if t := m.typingNames(cv.id); len(t) > 0 {
		if direct {
			return "typing…"
		}
		return strings.Join(t, ", ") + " typing…"
	}
	at, ok := m.lastSeen[cv.id]
	if !ok || !direct {
		return ""
	}
	now := m.opts.Now()
	switch {
	case sameDay(at.Local(), now.Local()):
		return "last seen " + at.Local().Format("15:04")
	case sameDay(at.Local().AddDate(0, 0, 1), now.Local()):
		return "last seen yesterday " + at.Local().Format("15:04")
	}
	return "last seen " + at.Local().Format("2 Jan 15:04")
}

// convLines lays out the loaded messages; starts[i] is the first line of
// msgs[i].
func (m *Model) convLines() (lines []string, starts []int) {
	cv := m.conv
	if cv == nil {
		return nil, nil
	}
	var lastDay time.Time
	for i, v := range cv.msgs {
		msg := v.m
		at := msg.SentAt
		if at.IsZero() {
			at = msg.ReceivedAt
		}
		if !at.IsZero() && (lastDay.IsZero() || !sameDay(lastDay, at.Local())) {
			lastDay = at.Local()
			lines = append(lines, m.daySeparator(lastDay))
		}
		starts = append(starts, len(lines))
		lines = append(lines, m.messageLines(v, i == cv.selected)...)
	}
	return lines, starts
}

// daySeparator is the line between two days.
func (m *Model) daySeparator(day time.Time) string {
	label := " " + day.Format("Monday, 2 January 2006") + " "
	side := max(2, (m.width-lipgloss.Width(label))/2)
	return m.st.separator.Render(truncate(strings.Repeat("─", side)+label+strings.Repeat("─", side), m.width))
}

// indent is where message text starts after "15:04 ".
const indent = "      "

// messageLines draws one message.
func (m *Model) messageLines(v msgView, selected bool) []string {
	msg := v.m
	clock := "     "
	if !msg.SentAt.IsZero() {
		clock = msg.SentAt.Local().Format("15:04")
	}
	mark := " "
	if selected {
		mark = ">"
	}
	var lines []string
	if msg.Kind == store.KindSystem && !msg.Deleted {
		return []string{m.st.faint.Render(truncate(clock+mark+"* "+m.namesIn(oneLine(msg.Body)), m.width))}
	}
	who := m.accountName(msg.Sender)
	nameStyle := m.st.sender(msg.Sender)
	if msg.Mine {
		who, nameStyle = "me", m.st.me
	}
	if v.quoted != nil {
		q := "message deleted"
		if !v.quoted.Deleted {
			q = oneLine(v.quoted.Body)
		}
		qwho := m.accountName(v.quoted.Sender)
		if v.quoted.Mine {
			qwho = "me"
		}
		lines = append(lines, m.st.faint.Render(truncate(indent+"↳ reply to "+qwho+": "+q, m.width)))
	} else if msg.Kind == store.KindReply {
		lines = append(lines, m.st.faint.Render(indent+"↳ reply to a message not on this device"))
	}
	var text string
	switch {
	case msg.Deleted:
		text = m.st.deleted.Render("message deleted")
		if msg.Sender == "" {
			who, nameStyle = "", m.st.faint
		}
	case msg.State == store.StateUndecryptable:
		text = m.st.errText.Render("[this message could not be decrypted]")
	case msg.Kind == store.KindFile:
		text = fileText(msg)
	default:
		text = string(msg.Body)
	}
	var suffix []string
	if !msg.Deleted {
		if !msg.EditedAt.IsZero() {
			suffix = append(suffix, "(edited)")
		}
		if !msg.ExpiresAt.IsZero() {
			suffix = append(suffix, "⌛")
		}
		if msg.Mine {
			suffix = append(suffix, stateMark(msg.State))
		}
	}
	head := clock + mark
	if who != "" {
		head += nameStyle.Render(who) + ": "
	}
	body := text
	if len(suffix) > 0 {
		body += " " + m.st.faint.Render(strings.Join(suffix, " "))
	}
	width := max(10, m.width-len(indent))
	wrapped := strings.Split(ansi.Wrap(body, max(10, width-lipgloss.Width(head)+len(indent)), " "), "\n")
	for i, w := range wrapped {
		if i == 0 {
			w = head + w
			if selected {
				w = m.st.selected.Render(ansi.Strip(w))
			}
		} else {
			w = indent + ansi.Wrap(w, width, " ")
		}
		lines = append(lines, w)
	}
	if len(v.reactions) > 0 {
		var rs []string
		for _, r := range v.reactions {
			n := m.accountName(r.Sender)
			if r.Sender == m.c.Me().AccountID {
				n = "me"
			}
			rs = append(rs, string(r.Body)+" "+n)
		}
		lines = append(lines, truncate(indent+"["+strings.Join(rs, "  ")+"]", m.width))
	}
	return lines
}

// stateMark is the delivery state of our message, as text.
func stateMark(s store.MessageState) string {
	switch s {
	case store.StatePending:
		return "(sending)"
	case store.StateSent:
		return "✓"
	case store.StateDelivered:
		return "✓✓"
	case store.StateRead:
		return "✓✓ read"
	case store.StateFailed:
		return "(failed to send)"
	}
	return ""
}

// oneLine is a message body on one line.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}

// namesIn replaces the account ids in a system message with known names.
func (m *Model) namesIn(s string) string {
	for a, n := range m.names {
		if len(a) > 0 {
			s = strings.ReplaceAll(s, string(a), n)
		}
	}
	return s
}
