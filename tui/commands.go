package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

// submit sends the composer's text (Enter): a command, an edit, a reply
// or a message.
func (m *Model) submit() tea.Cmd {
	cv := m.conv
	text := strings.TrimRight(m.composer.Value(), " \n")
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if cv.reactTo != nil {
		target := cv.reactTo
		cv.reactTo = nil
		m.composer.Reset()
		return m.react(target, strings.TrimSpace(strings.TrimPrefix(text, "/react")))
	}
	if strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") {
		m.composer.Reset()
		return m.command(text)
	}
	text = strings.TrimPrefix(text, "/") // "//x" sends "/x"
	m.composer.Reset()
	chat := cv.id
	m.lastTyping = time.Time{}
	switch {
	case cv.editing != nil:
		target := cv.editing.ID
		cv.editing = nil
		return m.do("", func(ctx context.Context) doneMsg {
			_, err := m.c.Edit(ctx, chat, target, text)
			return doneMsg{err: err}
		})
	case cv.replyTo != nil:
		target := cv.replyTo.ID
		cv.replyTo = nil
		return m.do("", func(ctx context.Context) doneMsg {
			_, err := m.c.Reply(ctx, chat, target, text)
			return doneMsg{err: err}
		})
	}
	cv.scroll = 0
	return tea.Batch(m.sendLastSeen(), m.do("", func(ctx context.Context) doneMsg {
		_, err := m.c.Send(ctx, chat, text)
		if err == nil {
			_ = m.c.SetTyping(ctx, chat, false) // best effort
		}
		return doneMsg{err: err}
	}))
}

// command runs a /command typed in the composer or the chat list prompt.
func (m *Model) command(line string) tea.Cmd {
	name, rest, _ := strings.Cut(strings.TrimPrefix(line, "/"), " ")
	rest = strings.TrimSpace(rest)
	args := strings.Fields(rest)
	var chat client.ChatID
	inChat := m.conv != nil && m.screen == screenChat
	if inChat {
		chat = m.conv.id
	}
	needChat := func() bool {
		if !inChat {
			m.setError(fmt.Errorf("/%s works inside a chat: open one first", name))
			return false
		}
		return true
	}
	usage := func(u string) tea.Cmd {
		m.setError(fmt.Errorf("usage: %s", u))
		return nil
	}
	switch name {
	case "help", "?":
		m.show(screenHelp)
		return nil
	case "chat", "new", "msg":
		if len(args) != 1 {
			return usage("/chat ADDRESS")
		}
		return m.do("opening the chat with "+args[0], func(ctx context.Context) doneMsg {
			id, err := m.c.StartDirect(ctx, args[0])
			return doneMsg{err: err, open: id}
		})
	case "create", "group":
		if len(args) < 1 {
			return usage("/create NAME MEMBER...")
		}
		return m.do("creating the group "+args[0], func(ctx context.Context) doneMsg {
			id, err := m.c.CreateGroup(ctx, args[0], args[1:])
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{open: id, info: "created the group " + args[0]}
		})
	case "add", "remove":
		if !needChat() {
			return nil
		}
		if len(args) == 0 {
			return usage("/" + name + " MEMBER...")
		}
		return m.do(name+"ing "+strings.Join(args, ", "), func(ctx context.Context) doneMsg {
			var err error
			if name == "add" {
				err = m.c.AddMembers(ctx, chat, args)
			} else {
				err = m.c.RemoveMembers(ctx, chat, args)
			}
			if err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{info: name + "ed " + strings.Join(args, ", ")}
		})
	case "rename":
		if !needChat() {
			return nil
		}
		if rest == "" {
			return usage("/rename NAME")
		}
		return m.do("renaming", func(ctx context.Context) doneMsg {
			if err := m.c.Rename(ctx, chat, rest); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{info: "renamed to " + rest}
		})
	case "leave":
		if !needChat() {
			return nil
		}
		m.screen = screenList
		m.conv = nil
		return m.do("leaving", func(ctx context.Context) doneMsg {
			if err := m.c.Leave(ctx, chat); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{info: "you left the chat"}
		})
	case "file":
		if !needChat() {
			return nil
		}
		if rest == "" {
			return usage("/file PATH")
		}
		st, err := os.Stat(rest)
		if err != nil {
			m.setError(fmt.Errorf("cannot read %s: %w", rest, errors.Unwrap(err)))
			return nil
		}
		if st.IsDir() {
			m.setError(fmt.Errorf("%s is a folder, not a file", rest))
			return nil
		}
		return m.sendFile(rest)
	case "react":
		m.setError(errors.New("select a message first (↑ on an empty line), then press + or 1-5"))
		return nil
	case "verify":
		if len(args) == 1 {
			return m.openVerify(args[0])
		}
		if inChat && m.conv.conv != nil {
			return m.openVerifyChat(m.conv.conv)
		}
		return usage("/verify ADDRESS")
	case "disappear", "disappearing":
		if !needChat() {
			return nil
		}
		d, err := parseTimer(rest)
		if err != nil {
			m.setError(err)
			return nil
		}
		return m.do("setting the timer", func(ctx context.Context) doneMsg {
			if err := m.c.SetDisappearing(ctx, chat, d); err != nil {
				return doneMsg{err: err}
			}
			if d == 0 {
				return doneMsg{info: "disappearing messages are off"}
			}
			return doneMsg{info: "new messages disappear after " + d.String()}
		})
	case "settings":
		return m.openSettings()
	case "devices":
		return m.openDevices()
	case "link":
		return m.openLink()
	case "recovery":
		return m.openRecovery()
	}
	m.setError(fmt.Errorf("unknown command /%s (? lists the commands; start with // to send a slash)", name))
	return nil
}

// maxTimer is the longest disappearing timer.
const maxTimer = 365 * 24 * time.Hour

// parseTimer reads a disappearing timer: off, a Go duration or Nd.
func parseTimer(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	bad := fmt.Errorf("a timer is off, a duration like 30s, 1h or 7d, at most 365d")
	switch {
	case s == "off" || s == "0":
		return 0, nil
	case strings.HasSuffix(s, "d"):
		var n int
		if _, err := fmt.Sscanf(s, "%dd", &n); err != nil || n <= 0 || n > 365 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > maxTimer {
		return 0, bad
	}
	return d, nil
}

// isDirect reports whether conv is a 1:1 chat.
func isDirect(conv *client.Conversation) bool { return conv.Kind == store.ChatDirect }
