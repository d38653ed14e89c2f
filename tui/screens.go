package tui

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/parley-im/parley/client"
)

// linkState is the "link a new device" screen, run on an existing device.
type linkState struct {
	input     textinput.Model
	req       *client.LinkRequest
	approving bool
	done      bool
	err       error
}

// devicesState is the device list.
type devicesState struct {
	list    []client.Device
	cursor  int
	confirm bool
	loading bool
	err     error
}

// verifyState is the safety-number screen.
type verifyState struct {
	address string
	// display names the account for people (address if empty).
	display string
	safety  *client.Safety
	qr      string
	loading bool
	err     error
}

// settingsState is the privacy settings screen.
type settingsState struct {
	values map[string]string
	cursor int
	chat   *client.Conversation
	err    error
}

type devicesMsg struct {
	list []client.Device
	err  error
}

type verifyMsg struct {
	address, qr string
	safety      *client.Safety
	err         error
}

type settingsMsg struct {
	values map[string]string
	err    error
}

type linkMsg struct{ err error }

// settingRows are the settings screen's toggles, in order.
var settingRows = []struct{ key, label, help string }{
	{client.SettingReadReceipts, "Read receipts", "send read receipts, and see others'"},
	{client.SettingTyping, "Typing notices", "send and see \"typing…\""},
	{client.SettingLastSeen, "Last seen", "tell your chats when you were last active"},
}

// disappearSteps are the timers the settings screen cycles through.
var disappearSteps = []string{"off", "5m", "1h", "1d", "7d"}

func (m *Model) openDevices() tea.Cmd {
	m.show(screenDevices)
	m.devices = devicesState{loading: true}
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		list, err := c.Devices(ctx)
		return devicesMsg{list: list, err: err}
	}
}

func (m *Model) openLink() tea.Cmd {
	m.show(screenLink)
	m.link.req, m.link.approving, m.link.done, m.link.err = nil, false, false, nil
	m.link.input.Reset()
	return m.link.input.Focus()
}

func (m *Model) openSettings() tea.Cmd {
	var chat *client.Conversation
	if m.screen == screenChat && m.conv != nil {
		chat = m.conv.conv
	} else if vis := m.visibleChats(); m.screen == screenList && m.cursor < len(vis) {
		chat = vis[m.cursor].conv
	}
	m.show(screenSettings)
	m.settings = settingsState{chat: chat}
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		vals := map[string]string{}
		for _, r := range settingRows {
			v, err := c.Setting(ctx, r.key)
			if err != nil {
				return settingsMsg{err: err}
			}
			vals[r.key] = v
		}
		return settingsMsg{values: vals}
	}
}

// openVerifyChat shows the safety number with the other account of a 1:1
// chat.
func (m *Model) openVerifyChat(conv *client.Conversation) tea.Cmd {
	if !isDirect(conv) {
		m.setError(fmt.Errorf("safety numbers are per person: open a 1:1 chat, or /verify ADDRESS"))
		return nil
	}
	for _, a := range conv.Members {
		if a != m.c.Me().AccountID {
			cmd := m.openVerify(string(a))
			m.verify.display = m.accountName(a)
			return cmd
		}
	}
	m.setError(fmt.Errorf("this chat has no other member"))
	return nil
}

// openVerify shows the safety number with the account at address.
func (m *Model) openVerify(address string) tea.Cmd {
	m.show(screenVerify)
	display := ""
	if m.verify.address == address {
		display = m.verify.display
	}
	m.verify = verifyState{address: address, display: display, loading: true}
	c, ctx := m.c, m.ctx
	return func() tea.Msg {
		safety, err := c.SafetyNumber(ctx, address)
		if err != nil {
			return verifyMsg{address: address, err: err}
		}
		q, err := qrcode.New(string(safety.QR), qrcode.Low)
		if err != nil {
			return verifyMsg{address: address, err: fmt.Errorf("failed to draw the QR code: %w", err)}
		}
		q.DisableBorder = true
		return verifyMsg{address: address, safety: safety, qr: quietZone(q.ToSmallString(false))}
	}
}

// updateScreens handles the side screens' load results.
func (m *Model) updateScreens(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case devicesMsg:
		m.devices.loading = false
		m.devices.list, m.devices.err = msg.list, msg.err
		m.devices.cursor = min(m.devices.cursor, max(0, len(msg.list)-1))
	case verifyMsg:
		m.verify = verifyState{address: msg.address, display: m.verify.display, safety: msg.safety, qr: msg.qr, err: msg.err}
	case settingsMsg:
		m.settings.values, m.settings.err = msg.values, msg.err
	case linkMsg:
		m.link.approving = false
		m.link.err = msg.err
		m.link.done = msg.err == nil
		m.busy = ""
		if msg.err == nil {
			return m.loadChats()
		}
	}
	return nil
}

// screenKey handles keys on the side screens.
func (m *Model) screenKey(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if m.screen == screenRecovery {
		return m.recoveryKey(k)
	}
	if s == "esc" || (s == "q" && m.screen != screenLink) {
		if m.screen == screenDevices && m.devices.confirm {
			m.devices.confirm = false
			return nil
		}
		m.link.input.Blur()
		m.screen = m.back
		if m.screen == screenChat {
			return m.composer.Focus()
		}
		return nil
	}
	if s == "?" && m.screen != screenLink {
		m.show(screenHelp)
		return nil
	}
	switch m.screen {
	case screenDevices:
		return m.devicesKey(s)
	case screenSettings:
		return m.settingsKey(s)
	case screenLink:
		return m.linkKey(k)
	case screenVerify:
		if s == "m" && m.verify.safety != nil && !m.verify.safety.Verified {
			safety, address := m.verify.safety, m.verify.address
			return m.do("saving", func(ctx context.Context) doneMsg {
				if err := m.c.MarkVerified(ctx, safety); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{info: "marked " + address + " as verified", then: m.openVerify(address)}
			})
		}
	}
	return nil
}

func (m *Model) devicesKey(s string) tea.Cmd {
	d := &m.devices
	switch {
	case d.confirm && s == "y":
		d.confirm = false
		dev := d.list[d.cursor].ID
		return m.do("revoking the device", func(ctx context.Context) doneMsg {
			if err := m.c.RevokeDevice(ctx, dev); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{info: "device revoked: it can read nothing sent from now on", then: m.openDevices()}
		})
	case d.confirm:
		d.confirm = false
	case s == "up" || s == "k":
		d.cursor = max(0, d.cursor-1)
	case s == "down" || s == "j":
		d.cursor = min(len(d.list)-1, d.cursor+1)
	case s == "x" || s == "delete":
		if d.cursor < len(d.list) {
			if d.list[d.cursor].Current {
				m.setError(fmt.Errorf("this is the device you are using: revoke it from another device"))
				return nil
			}
			d.confirm = true
		}
	}
	return nil
}

func (m *Model) settingsKey(s string) tea.Cmd {
	st := &m.settings
	rows := len(settingRows)
	if st.chat != nil {
		rows++
	}
	switch s {
	case "up", "k":
		st.cursor = max(0, st.cursor-1)
	case "down", "j":
		st.cursor = min(rows-1, st.cursor+1)
	case "enter", " ", "space":
		if st.values == nil {
			return nil
		}
		if st.cursor < len(settingRows) {
			key := settingRows[st.cursor].key
			val := "on"
			if st.values[key] == "on" {
				val = "off"
			}
			return m.do("saving", func(ctx context.Context) doneMsg {
				if err := m.c.SetSetting(ctx, key, val); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{info: settingLabel(key) + " " + val, then: m.reloadSettings()}
			})
		}
		chat := st.chat
		next := disappearSteps[0]
		cur := timerText(chat.DisappearAfter)
		for i, step := range disappearSteps {
			if step == cur {
				next = disappearSteps[(i+1)%len(disappearSteps)]
			}
		}
		d, _ := parseTimer(next)
		return m.do("setting the timer", func(ctx context.Context) doneMsg {
			if err := m.c.SetDisappearing(ctx, chat.ID, d); err != nil {
				return doneMsg{err: err}
			}
			if conv, err := m.c.Store().Conversation(ctx, chat.ID); err == nil {
				*chat = *conv
			}
			return doneMsg{info: "disappearing messages: " + next}
		})
	}
	return nil
}

func (m *Model) reloadSettings() tea.Cmd {
	chat, cursor := m.settings.chat, m.settings.cursor
	back := m.back
	cmd := m.openSettings()
	m.settings.chat, m.settings.cursor, m.back = chat, cursor, back
	return cmd
}

func settingLabel(key string) string {
	for _, r := range settingRows {
		if r.key == key {
			return r.label
		}
	}
	return key
}

// timerText names a disappearing timer as the settings screen does.
func timerText(d interface{ String() string }) string {
	s := d.String()
	switch s {
	case "0s":
		return "off"
	case "5m0s":
		return "5m"
	case "1h0m0s":
		return "1h"
	case "24h0m0s":
		return "1d"
	case "168h0m0s":
		return "7d"
	}
	return s
}

func (m *Model) linkKey(k tea.KeyPressMsg) tea.Cmd {
	l := &m.link
	s := k.String()
	switch {
	case l.approving:
		return nil
	case l.req == nil && s == "enter":
		req, err := client.ParseLinkCode(strings.TrimSpace(l.input.Value()))
		if err != nil {
			l.err = err
			return nil
		}
		l.req, l.err = req, nil
		l.input.Blur()
		return nil
	case l.req != nil && !l.done && (s == "y" || s == "enter"):
		l.approving = true
		req := l.req
		m.busy = "approving the new device"
		c, ctx := m.c, m.ctx
		return func() tea.Msg {
			ctx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			return linkMsg{err: c.ApproveLink(ctx, req)}
		}
	case l.req != nil && !l.done && s == "n":
		l.req, l.err = nil, nil
		l.input.Reset()
		return l.input.Focus()
	case l.req == nil:
		var cmd tea.Cmd
		l.input, cmd = l.input.Update(k)
		return cmd
	}
	return nil
}

// screenView draws the side screens.
func (m *Model) screenView() string {
	var b strings.Builder
	switch m.screen {
	case screenLink:
		m.linkView(&b)
	case screenDevices:
		m.devicesView(&b)
	case screenVerify:
		m.verifyView(&b)
	case screenSettings:
		m.settingsView(&b)
	case screenRecovery:
		m.recoveryView(&b)
	}
	return b.String()
}

func (m *Model) linkView(b *strings.Builder) {
	l := &m.link
	b.WriteString(m.st.title.Render("Link a new device") + m.st.faint.Render("  (esc back)") + "\n\n")
	b.WriteString(wrapText("On the new device run `parley link new --server "+m.c.Me().ServerURL+"`. It shows a link code, a QR code and a comparison code. Paste the link code here.", m.width) + "\n\n")
	switch {
	case l.req == nil:
		b.WriteString(l.input.View() + "\n")
	case l.done:
		b.WriteString(m.st.infoText.Render("Linked. The new device joins your conversations and gets every message from now on.") + "\n")
	case l.approving:
		b.WriteString("Approving: waiting for the new device to finish…\n")
	default:
		b.WriteString("Comparison code:  " + m.st.bold.Render(l.req.Comparison()) + "\n\n")
		b.WriteString("Does the new device show the same comparison code?\n")
		b.WriteString(m.st.bold.Render("y") + " approve   " + m.st.bold.Render("n") + " no (someone else made that code)\n")
	}
	if l.err != nil {
		b.WriteString("\n" + m.st.errText.Render("error: "+errorText(l.err)) + "\n")
	}
}

func (m *Model) devicesView(b *strings.Builder) {
	d := &m.devices
	b.WriteString(m.st.title.Render("Devices of "+m.c.Me().Address) + m.st.faint.Render("  (esc back)") + "\n\n")
	switch {
	case d.loading:
		b.WriteString("loading…\n")
		return
	case d.err != nil:
		b.WriteString(m.st.errText.Render("error: "+errorText(d.err)) + "\n")
		return
	}
	for i, dev := range d.list {
		line := fmt.Sprintf("  %s  added %s", dev.ID, dev.Created.Local().Format("2006-01-02 15:04"))
		if dev.Current {
			line += "  (this device)"
		}
		if i == d.cursor {
			line = m.st.selected.Render(">" + line[1:])
		}
		b.WriteString(truncate(line, m.width) + "\n")
	}
	b.WriteString("\n")
	if d.confirm {
		b.WriteString(m.st.errText.Render(fmt.Sprintf("Revoke %s? It will be removed from every chat and read nothing new. y/n", d.list[d.cursor].ID)) + "\n")
	} else {
		b.WriteString(m.st.faint.Render("↑/↓ select · x revoke · esc back") + "\n")
	}
}

func (m *Model) verifyView(b *strings.Builder) {
	v := m.verify
	if v.display != "" {
		v.address = v.display
	}
	b.WriteString(m.st.title.Render("Safety number with "+v.address) + m.st.faint.Render("  (esc back)") + "\n")
	switch {
	case v.loading:
		b.WriteString("\nlooking up " + v.address + "…\n")
		return
	case v.err != nil:
		b.WriteString("\n" + m.st.errText.Render("error: "+errorText(v.err)) + "\n")
		return
	}
	b.WriteString(wrapText("Compare these digits with "+v.address+" in person or over a channel you trust, or scan the code. If they match, nobody is in between.", m.width) + "\n")
	switch {
	case v.safety.Changed:
		b.WriteString(m.st.errText.Render("The safety number CHANGED since you verified it: "+v.address+" has a new account key. Compare again.") + "\n")
	case v.safety.Verified:
		b.WriteString(m.st.infoText.Render("✓ verified: you compared this number before.") + "\n")
	default:
		b.WriteString(m.st.faint.Render("Not verified yet: press m once the numbers match.") + "\n")
	}
	groups := strings.Fields(v.safety.Number)
	var digits []string
	for i := 0; i < len(groups); i += 4 {
		digits = append(digits, "  "+m.st.bold.Render(strings.Join(groups[i:min(i+4, len(groups))], " ")), "")
	}
	qrWidth := lipglossWidth(v.qr)
	if m.width >= qrWidth+26 {
		b.WriteString(lipgloss.JoinHorizontal(lipgloss.Top, v.qr, "\n"+strings.Join(digits, "\n")))
		return
	}
	b.WriteString(strings.Join(digits, "\n") + "\n" + v.qr)
}

// quietZone frames a QR code drawn with half blocks in light modules, so it
// scans on dark terminals too (the code is drawn without its own border to
// fit 80x24; two modules of margin are enough for phone scanners).
func quietZone(qr string) string {
	lines := strings.Split(strings.TrimRight(qr, "\n"), "\n")
	w := 0
	for _, l := range lines {
		w = max(w, lipglossWidth(l))
	}
	full := strings.Repeat("█", w+4)
	out := []string{full}
	for _, l := range lines {
		out = append(out, "██"+l+strings.Repeat(" ", w-lipglossWidth(l))+"██")
	}
	return strings.Join(append(out, full), "\n")
}

func (m *Model) settingsView(b *strings.Builder) {
	st := &m.settings
	b.WriteString(m.st.title.Render("Privacy settings") + m.st.faint.Render("  (esc back)") + "\n")
	b.WriteString(m.st.faint.Render(wrapText("Everything is off until you turn it on; when on, it travels end to end, indistinguishable from messages to the server.", m.width)) + "\n\n")
	if st.err != nil {
		b.WriteString(m.st.errText.Render("error: "+errorText(st.err)) + "\n")
		return
	}
	if st.values == nil {
		b.WriteString("loading…\n")
		return
	}
	row := func(i int, label, value, help string) {
		line := fmt.Sprintf("  %-22s %-5s  %s", label, value, help)
		if i == st.cursor {
			line = m.st.selected.Render(">" + line[1:])
		}
		b.WriteString(truncate(line, m.width) + "\n")
	}
	for i, r := range settingRows {
		v := st.values[r.key]
		if v == "" {
			v = "off"
		}
		row(i, r.label, v, r.help)
	}
	if st.chat != nil {
		row(len(settingRows), "Disappearing messages", timerText(st.chat.DisappearAfter), "in "+m.chatDisplay(st.chat))
	}
	b.WriteString("\n" + m.st.faint.Render("↑/↓ select · enter/space change · esc back") + "\n")
}

// helpView draws the key and command reference.
func (m *Model) helpView() string {
	var b strings.Builder
	b.WriteString(m.st.title.Render("Parley — keys and commands") + m.st.faint.Render("  (esc closes)") + "\n")
	var col []string
	for _, sec := range helpText {
		col = append(col, m.st.bold.Render(sec.title))
		for _, k := range sec.keys {
			col = append(col, fmt.Sprintf("  %-23s %s", k[0], k[1]))
		}
	}
	// Two columns when the window is wide enough, else a page at a time.
	rows := m.height - 3
	if m.width >= 120 && len(col) > rows {
		half := (len(col) + 1) / 2
		for i := 0; i < half; i++ {
			left := truncate(col[i], m.width/2-1)
			right := ""
			if i+half < len(col) {
				right = col[i+half]
			}
			b.WriteString(truncate(left+strings.Repeat(" ", max(1, m.width/2-lipglossWidth(left)))+right, m.width) + "\n")
		}
		return b.String()
	}
	m.helpScroll = max(0, min(m.helpScroll, len(col)-rows))
	col = col[m.helpScroll:]
	if len(col) > rows {
		col = append(col[:rows-1], m.st.faint.Render("↓ more: pgdn/space"))
	}
	for _, l := range col {
		b.WriteString(truncate(l, m.width) + "\n")
	}
	return b.String()
}
