package tui

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// pageSize is how many messages one scrollback load reads.
const pageSize = 100

// maxNameLookups bounds the directory look-ups for one batch of names.
const maxNameLookups = 50

// opTimeout bounds one SDK call made for the user.
const opTimeout = 2 * time.Minute

// eventMsg is one event from the client.
type eventMsg client.Event

// chatItem is one row of the chat list.
type chatItem struct {
	conv    *client.Conversation
	unread  int
	last    *client.Message
	lastAt  time.Time
	display string
}

// chatsMsg is a freshly loaded chat list.
type chatsMsg struct {
	items []chatItem
	// queued counts the outbox (the SDK reports it only on connection
	// changes).
	queued int
	err    error
}

// accounts lists the accounts the chat list names.
func (c chatsMsg) accounts() []identity.AccountID {
	var out []identity.AccountID
	for _, it := range c.items {
		out = append(out, it.conv.Members...)
		if it.last != nil {
			out = append(out, it.last.Sender)
		}
	}
	return out
}

// namesMsg carries resolved account names.
type namesMsg map[identity.AccountID]string

// doneMsg reports the end of an action the user started.
type doneMsg struct {
	err  error
	info string
	// open switches to this chat afterwards.
	open client.ChatID
	then tea.Cmd
}

// waitEvent waits for the next client event without blocking the UI.
func (m *Model) waitEvent() tea.Cmd {
	if m.events == nil {
		return nil
	}
	ch := m.events
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return nil
		}
		return eventMsg(ev)
	}
}

// loadChats reads the chat list with unread counts and last messages.
func (m *Model) loadChats() tea.Cmd {
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		convs, unread, err := c.Chats(ctx)
		if err != nil {
			return chatsMsg{err: err}
		}
		var items []chatItem
		queued := 0
		for _, conv := range convs {
			if out, err := c.Store().Outbox(ctx, conv.ID, store.MaxPageSize); err == nil {
				queued += len(out)
			}
			if conv.Kind == store.ChatSelf {
				continue
			}
			it := chatItem{conv: conv, unread: unread[conv.ID], lastAt: conv.CreatedAt}
			conv.Name = cleanLine(conv.Name)
			if page, err := c.History(ctx, conv.ID, store.HistoryQuery{Limit: 1}); err == nil && len(page.Messages) > 0 {
				it.last = page.Messages[0]
				cleanMessage(it.last)
				it.lastAt = it.last.SentAt
			}
			items = append(items, it)
		}
		sort.SliceStable(items, func(i, j int) bool { return items[i].lastAt.After(items[j].lastAt) })
		return chatsMsg{items: items, queued: queued}
	}
}

// setChats installs a loaded chat list, keeping the cursor on its chat.
func (m *Model) setChats(msg chatsMsg) {
	if msg.err != nil {
		m.setError(msg.err)
		return
	}
	var cur client.ChatID
	if vis := m.visibleChats(); m.cursor < len(vis) {
		cur = vis[m.cursor].conv.ID
	}
	m.chats = msg.items
	m.queued = msg.queued
	m.cursor = 0
	for i, it := range m.visibleChats() {
		if it.conv.ID == cur {
			m.cursor = i
		}
	}
	if m.conv != nil {
		for _, it := range m.chats {
			if it.conv.ID == m.conv.id {
				m.conv.conv = it.conv
			}
		}
	}
}

// resolveNames looks up the names of accounts not yet known.
func (m *Model) resolveNames(accounts []identity.AccountID) tea.Cmd {
	var todo []identity.AccountID
	for _, a := range accounts {
		if _, ok := m.names[a]; ok || m.resolving[a] || a == "" || len(todo) >= maxNameLookups {
			continue
		}
		m.resolving[a] = true
		todo = append(todo, a)
	}
	if len(todo) == 0 {
		return nil
	}
	c, ctx := m.c, m.ctx
	host := ""
	if _, h, ok := strings.Cut(c.Me().Address, "@"); ok {
		host = "@" + h
	}
	return func() tea.Msg {
		out := namesMsg{}
		for _, a := range todo {
			name := string(a)
			if len(name) > 12 {
				name = name[:12] + "…"
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			acct, err := c.Resolve(rctx, string(a))
			cancel()
			if err == nil && acct.ID == a && acct.Username != "" {
				name = cleanLine(acct.Username) + host
			}
			if err != nil && errors.Is(err, client.ErrOffline) {
				continue // try again later; keep the id meanwhile
			}
			out[a] = name
		}
		return out
	}
}

// chatDisplay is a chat's name: the group's name, or for a 1:1 chat the
// other account.
func (m *Model) chatDisplay(conv *client.Conversation) string {
	if conv.Name != "" && conv.Kind != store.ChatDirect {
		return conv.Name
	}
	var others []string
	for _, a := range conv.Members {
		if a == m.c.Me().AccountID {
			continue
		}
		if _, known := m.names[a]; !known && conv.Name != "" {
			return conv.Name
		}
		others = append(others, m.accountName(a))
	}
	if len(others) == 0 {
		return "(just you)"
	}
	return strings.Join(others, ", ")
}

// handleEvent applies one live event.
func (m *Model) handleEvent(ev client.Event) tea.Cmd {
	var cmds []tea.Cmd
	open := m.conv != nil && m.screen == screenChat && ev.Chat == m.conv.id
	switch ev.Kind {
	case client.EventConnection:
		m.conn, m.queued = ev.State, ev.Queued
		return nil
	case client.EventTyping:
		if m.typing[ev.Chat] == nil {
			m.typing[ev.Chat] = map[identity.AccountID]time.Time{}
		}
		if ev.Typing {
			m.typing[ev.Chat][ev.Sender] = m.opts.Now()
			cmds = append(cmds, tea.Tick(typingShown, func(time.Time) tea.Msg { return nil }))
		} else {
			delete(m.typing[ev.Chat], ev.Sender)
		}
		return tea.Batch(append(cmds, m.resolveNames([]identity.AccountID{ev.Sender}))...)
	case client.EventMessage:
		if ev.Message != nil && !ev.Message.Mine {
			delete(m.typing[ev.Chat], ev.Message.Sender)
			if !open {
				if m.opts.Bell {
					cmds = append(cmds, tea.Raw("\a"))
				}
			}
			cmds = append(cmds, m.resolveNames([]identity.AccountID{ev.Message.Sender}))
		}
	case client.EventUndecryptable:
		m.setError(errors.New("a message could not be decrypted (this is a bug; it is counted and logged)"))
	case client.EventPolicy:
		if ev.Text != "" {
			m.setError(errors.New(ev.Text))
		}
	case client.EventMembership:
		if ev.Text != "" && (open || ev.Chat == "") {
			m.setInfo(ev.Text)
		}
	case client.EventLastSeen:
		if ev.Message != nil && ev.Sender != m.c.Me().AccountID {
			m.lastSeen[ev.Chat] = ev.Message.SentAt
		}
		return nil
	case client.EventState:
		m.setState(ev.Chat, ev.Target, ev.MessageState)
		return nil
	}
	if open {
		cmds = append(cmds, m.reloadConv())
	}
	cmds = append(cmds, m.loadChats())
	return tea.Batch(cmds...)
}

// typingShown is how long a typing notice stays shown without a refresh.
const typingShown = 6 * time.Second

// typingNames lists who is typing in chat now.
func (m *Model) typingNames(chat client.ChatID) []string {
	var out []string
	now := m.opts.Now()
	for a, at := range m.typing[chat] {
		if now.Sub(at) < typingShown {
			out = append(out, m.accountName(a))
		}
	}
	sort.Strings(out)
	return out
}

// do runs an SDK action off the UI goroutine and reports it with doneMsg.
func (m *Model) do(busy string, fn func(ctx context.Context) doneMsg) tea.Cmd {
	m.busy = busy
	m.status = ""
	ctx := m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		return fn(ctx)
	}
}

// setState shows a new delivery state of our message id in chat, in the
// open conversation and the chat list, without reading the store again.
func (m *Model) setState(chat client.ChatID, id client.MessageID, state store.MessageState) {
	if len(m.states) >= maxStates {
		clear(m.states)
	}
	m.states[id] = state
	if m.conv != nil && m.conv.id == chat {
		for _, v := range m.conv.msgs {
			if v.m.ID == id {
				v.m.State = state
			}
		}
	}
	for _, it := range m.chats {
		if it.conv.ID == chat && it.last != nil && it.last.ID == id {
			it.last.State = state
		}
	}
}

// lastSeenMsg is the stored last-seen time of a 1:1 chat's other account.
type lastSeenMsg struct {
	chat client.ChatID
	at   time.Time
}

// loadLastSeen reads what the other account of a 1:1 chat last told us.
func (m *Model) loadLastSeen(chat client.ChatID) tea.Cmd {
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		at, ok, err := c.LastSeen(ctx, chat)
		if err != nil || !ok {
			return nil
		}
		return lastSeenMsg{chat: chat, at: at}
	}
}

// lastSeenEvery is how often the open chat is told we are active (if the
// user turned last-seen on; otherwise the SDK sends nothing).
const lastSeenEvery = time.Minute

// sendLastSeen tells the open chat we are active, at most every
// lastSeenEvery per chat.
func (m *Model) sendLastSeen() tea.Cmd {
	if m.conv == nil {
		return nil
	}
	chat, now := m.conv.id, m.opts.Now()
	if at, ok := m.presenceSent[chat]; ok && now.Sub(at) < lastSeenEvery {
		return nil
	}
	m.presenceSent[chat] = now
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		_ = c.SendLastSeen(ctx, chat) // best effort: presence is a hint
		return nil
	}
}

// maxStates bounds the remembered state events.
const maxStates = 4096

// stateRank orders delivery states: a page read from the store before a
// state event must not show an older state than the event did.
func stateRank(s store.MessageState) int {
	switch s {
	case store.StateSent:
		return 1
	case store.StateDelivered:
		return 2
	case store.StateRead:
		return 3
	}
	return 0
}

// freshStates applies remembered state events to freshly loaded messages.
func (m *Model) freshStates(msgs []msgView) {
	for _, v := range msgs {
		if st, ok := m.states[v.m.ID]; ok && v.m.Mine && stateRank(st) > stateRank(v.m.State) {
			v.m.State = st
		}
	}
}
