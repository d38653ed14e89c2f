package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/textarea"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// Options configure the UI.
type Options struct {
	// NoColor draws without colours (set it when NO_COLOR is set).
	NoColor bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Bell rings the terminal bell for new messages in other chats (the
	// window title shows an unread marker either way).
	Bell bool
	// DownloadDir is where saved files go (default: the current folder).
	DownloadDir string
}

// screen is what fills the window.
type screen int

const (
	screenList screen = iota
	screenChat
	screenHelp
	screenLink
	screenDevices
	screenVerify
	screenSettings
	screenRecovery
)

// Model is the whole UI state. It is a tea.Model; build it with [New].
type Model struct {
	c    *client.Client
	ctx  context.Context
	opts Options
	st   styles

	width, height int
	screen        screen
	back          screen // where Esc on a side screen returns to

	events <-chan client.Event

	// chat list
	chats     []chatItem
	cursor    int
	search    textinput.Model
	searching bool
	prompt    textinput.Model
	prompting bool

	// conversation
	conv     *convState
	composer textarea.Model

	// status line
	conn       client.ConnState
	queued     int
	status     string
	statusErr  bool
	busy       string
	helpScroll int
	names      map[identity.AccountID]string
	resolving  map[identity.AccountID]bool
	typing     map[client.ChatID]map[identity.AccountID]time.Time
	lastTyping time.Time
	// lastSeen is when the other account of a 1:1 chat was last active;
	// presenceSent when we last told a chat we are.
	lastSeen     map[client.ChatID]time.Time
	presenceSent map[client.ChatID]time.Time
	// states are the latest state events of our messages (see freshStates).
	states map[client.MessageID]store.MessageState

	transfer *transferState

	// side screens
	link     linkState
	devices  devicesState
	verify   verifyState
	settings settingsState
	recovery recoveryState
}

// New builds the UI for c. events is the client's event subscription (see
// [client.Client.Subscribe]); nil means no live updates.
func New(ctx context.Context, c *client.Client, events <-chan client.Event, opts Options) *Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Model{
		c: c, ctx: ctx, opts: opts, st: newStyles(!opts.NoColor), events: events,
		width: 80, height: 24,
		names:        map[identity.AccountID]string{c.Me().AccountID: "me"},
		resolving:    map[identity.AccountID]bool{},
		typing:       map[client.ChatID]map[identity.AccountID]time.Time{},
		lastSeen:     map[client.ChatID]time.Time{},
		presenceSent: map[client.ChatID]time.Time{},
		states:       map[client.MessageID]store.MessageState{},
		conn:         c.State(),
	}
	m.search = textinput.New()
	m.search.Prompt = "search: "
	m.prompt = textinput.New()
	m.prompt.Prompt = "> "
	m.prompt.Placeholder = "address (bob@server) or /create NAME MEMBER..."
	m.composer = textarea.New()
	m.composer.Prompt = "│ "
	m.composer.ShowLineNumbers = false
	m.composer.Placeholder = "message — enter sends, alt+enter or ctrl+j adds a line, /help"
	m.composer.KeyMap.InsertNewline.SetKeys("alt+enter", "ctrl+j")
	m.composer.SetHeight(2)
	m.composer.CharLimit = 64 << 10
	m.link.input = textinput.New()
	m.link.input.Prompt = "link code: "
	// A steady cursor: no blink timers, fewer redraws over slow links.
	cs := m.composer.Styles()
	if opts.NoColor {
		cs = textarea.Styles{}
		cs.Focused.Placeholder = cs.Focused.Placeholder.Faint(true)
	}
	cs.Cursor.Blink = false
	m.composer.SetStyles(cs)
	for _, in := range []*textinput.Model{&m.search, &m.prompt, &m.link.input} {
		is := in.Styles()
		if opts.NoColor {
			is = textinput.Styles{}
		}
		is.Cursor.Blink = false
		in.SetStyles(is)
	}
	m.resize()
	return m
}

// Init loads the chat list and starts listening for events.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.loadChats(), m.waitEvent())
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.resize()
		return m, nil
	case eventMsg:
		return m, tea.Batch(m.handleEvent(client.Event(msg)), m.waitEvent())
	case chatsMsg:
		m.setChats(msg)
		return m, m.resolveNames(msg.accounts())
	case lastSeenMsg:
		if at, ok := m.lastSeen[msg.chat]; !ok || msg.at.After(at) {
			m.lastSeen[msg.chat] = msg.at
		}
		return m, nil
	case historyMsg:
		return m, m.gotHistory(msg)
	case namesMsg:
		for a, n := range msg {
			m.names[a] = n
			delete(m.resolving, a)
		}
		return m, nil
	case doneMsg:
		m.busy = ""
		if msg.err != nil {
			m.setError(msg.err)
		} else if msg.info != "" {
			m.setInfo(msg.info)
		}
		var cmds []tea.Cmd
		if msg.open != "" {
			cmds = append(cmds, m.openChat(msg.open))
		}
		cmds = append(cmds, m.loadChats())
		if m.conv != nil {
			cmds = append(cmds, m.reloadConv())
		}
		if msg.then != nil {
			cmds = append(cmds, msg.then)
		}
		return m, tea.Batch(cmds...)
	case progressMsg, transferDoneMsg:
		return m, m.updateTransfer(msg)
	case devicesMsg, verifyMsg, settingsMsg, linkMsg:
		return m, m.updateScreens(msg)
	case recoveryMsg:
		return m, m.gotRecovery(msg)
	case tea.PasteMsg:
		return m, m.paste(msg)
	case tea.MouseWheelMsg:
		if m.screen == screenChat {
			switch msg.Mouse().Button {
			case tea.MouseWheelUp:
				return m, m.scroll(3)
			case tea.MouseWheelDown:
				return m, m.scroll(-3)
			}
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, m.forward(msg)
}

// forward passes other messages (cursor blinks) to the focused input.
func (m *Model) forward(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	switch {
	case m.screen == screenChat:
		m.composer, cmd = m.composer.Update(msg)
	case m.searching:
		m.search, cmd = m.search.Update(msg)
	case m.prompting:
		m.prompt, cmd = m.prompt.Update(msg)
	case m.screen == screenLink:
		m.link.input, cmd = m.link.input.Update(msg)
	case m.screen == screenRecovery && m.recovery.phase == recoveryShowing:
		m.recovery.input, cmd = m.recovery.input.Update(msg)
	}
	return cmd
}

// paste inserts pasted text into the focused input.
func (m *Model) paste(msg tea.PasteMsg) tea.Cmd {
	if m.screen == screenChat && m.conv != nil && m.conv.selected >= 0 {
		m.conv.selected = -1
	}
	return m.forward(msg)
}

// key handles a key press.
func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if s == "ctrl+c" {
		return tea.Quit
	}
	switch m.screen {
	case screenList:
		return m.listKey(k)
	case screenChat:
		return m.chatKey(k)
	case screenHelp:
		switch s {
		case "esc", "q", "?":
			m.screen = m.back
			if m.screen == screenChat {
				return m.composer.Focus()
			}
		case "down", "j":
			m.helpScroll++
		case "up", "k":
			m.helpScroll = max(0, m.helpScroll-1)
		case "pgdown", "space", " ":
			m.helpScroll += m.height - 4
		case "pgup":
			m.helpScroll = max(0, m.helpScroll-(m.height-4))
		}
		return nil
	}
	return m.screenKey(k)
}

// show opens a side screen, remembering where to return.
func (m *Model) show(s screen) {
	if m.screen == screenList || m.screen == screenChat {
		m.back = m.screen
	}
	m.screen = s
	if s == screenHelp {
		m.helpScroll = 0
	}
	if s == screenChat {
		m.composer.Focus()
	} else {
		m.composer.Blur()
	}
}

// resize lays the inputs out for the window size.
func (m *Model) resize() {
	m.composer.SetWidth(max(10, m.width))
	m.search.SetWidth(max(10, m.width-10))
	m.prompt.SetWidth(max(10, m.width-4))
	m.link.input.SetWidth(max(10, m.width-12))
}

func (m *Model) setError(err error) {
	m.status, m.statusErr = cleanLine(errorText(err)), true
}

func (m *Model) setInfo(s string) {
	m.status, m.statusErr = cleanLine(s), false
}

// errorText turns an SDK error into a sentence for the status line.
func errorText(err error) string {
	switch {
	case errors.Is(err, client.ErrOffline):
		return "cannot reach the server: it will be sent when the connection is back"
	case errors.Is(err, client.ErrNotAdmin):
		return "only a group admin may do that"
	case errors.Is(err, client.ErrNotMember):
		return "you are not a member of this chat"
	case errors.Is(err, client.ErrOwnAddress):
		return "that is your own address: give another account's"
	case errors.Is(err, client.ErrBadAddress):
		return "that is not an address (ACCOUNTID@server or username@server)"
	case errors.Is(err, client.ErrUnknownAccount):
		return "the server knows no such account"
	case errors.Is(err, client.ErrNoKeyPackages):
		return "that account has no device that can be added right now"
	case errors.Is(err, client.ErrBadLinkCode):
		return "that is not a link code: copy it exactly as the new device shows it"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	s := err.Error()
	for _, p := range []string{"client: ", "store: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return strings.TrimPrefix(s, "invalid argument: ")
}

// View draws the window.
func (m *Model) View() tea.View {
	var body string
	switch m.screen {
	case screenList:
		body = m.listView()
	case screenChat:
		body = m.chatView()
	case screenHelp:
		body = m.helpView()
	default:
		body = m.screenView()
	}
	v := tea.NewView(fitHeight(body, m.height-1) + "\n" + m.statusLine())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = m.title()
	return v
}

// title is the window title: "(N) Parley" when other chats have unread
// messages.
func (m *Model) title() string {
	n := 0
	for _, c := range m.chats {
		if m.conv == nil || c.conv.ID != m.conv.id || m.screen != screenChat {
			n += c.unread
		}
	}
	if n > 0 {
		return fmt.Sprintf("(%d) Parley", n)
	}
	return "Parley"
}

// statusLine is the bottom line: connection, queue, then the last message.
func (m *Model) statusLine() string {
	var conn string
	switch m.conn {
	case client.Online:
		conn = m.st.online.Render("● online")
	case client.Connecting:
		conn = m.st.offline.Render("○ connecting")
	case client.Reconnecting:
		conn = m.st.offline.Render("○ reconnecting")
	default:
		conn = m.st.offline.Render("○ offline")
	}
	if m.queued > 0 {
		conn += m.st.offline.Render(fmt.Sprintf(" (%d queued)", m.queued))
	}
	text := m.status
	switch {
	case m.busy != "":
		text = m.busy + "…"
	case text == "":
		text = m.st.faint.Render("? help")
	case m.statusErr:
		text = m.st.errText.Render("error: " + text)
	default:
		text = m.st.infoText.Render(text)
	}
	return truncate(conn+"  "+text, m.width)
}

// accountName is how the UI names an account: "me", username@server once
// the directory answered, else the account id.
func (m *Model) accountName(a identity.AccountID) string {
	if n, ok := m.names[a]; ok {
		return n
	}
	return string(a)
}
