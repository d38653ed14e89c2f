package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// The --json output of the client commands. Field names are a stable
// interface documented in docs/cli.md: add fields, never rename or remove.

// messageJSON is one message, from recv and history.
type messageJSON struct {
	ID           string `json:"id"`
	Chat         string `json:"chat"`
	Sender       string `json:"sender"`
	SenderDevice string `json:"sender_device,omitempty"`
	Kind         string `json:"kind"`
	Text         string `json:"text"`
	SentAt       string `json:"sent_at"`
	Mine         bool   `json:"mine,omitempty"`
	ReplyTo      string `json:"reply_to,omitempty"`
	EditedAt     string `json:"edited_at,omitempty"`
	ExpiresAt    string `json:"expires_at,omitempty"`
	State        string `json:"state,omitempty"`
	// File describes the file of a message of kind "file" (its id is what
	// parley file get takes).
	File *client.File `json:"file,omitempty"`
	// Reactions are the current reactions (history only).
	Reactions []reactionJSON `json:"reactions,omitempty"`
}

// chatJSON is one conversation, from chats.
type chatJSON struct {
	Chat    string   `json:"chat"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Unread  int      `json:"unread"`
	Members []string `json:"members"`
	Left    bool     `json:"left,omitempty"`
}

// meJSON is this profile, from whoami, init and link new.
type meJSON struct {
	Address   string `json:"address"`
	AccountID string `json:"account_id"`
	DeviceID  string `json:"device_id"`
	Server    string `json:"server"`
	Username  string `json:"username,omitempty"`
}

func meOf(c *client.Client) meJSON {
	me := c.Me()
	return meJSON{Address: me.Address, AccountID: string(me.AccountID), DeviceID: me.DeviceID.String(),
		Server: me.ServerURL, Username: me.Username}
}

// jsonTimeLayout is RFC 3339 with exactly three fractional digits, so
// every time in the --json output has the same form and precision.
const jsonTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// timeText formats a time for JSON: RFC 3339 in UTC with milliseconds,
// empty for zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(jsonTimeLayout)
}

// shownKind reports whether a stored message is shown on its own (not an
// event applied to another message) and names its kind for output.
func shownKind(m *store.Message) (string, bool) {
	if m.Deleted {
		return "", false
	}
	if m.State == store.StateUndecryptable {
		return "undecryptable", true
	}
	switch m.Kind {
	case store.KindText, store.KindReply, store.KindFile, store.KindSystem:
		return m.Kind.String(), true
	}
	return "", false
}

func messageOf(m *store.Message, kind string) messageJSON {
	j := messageJSON{
		ID: m.ID.String(), Chat: string(m.Chat), Sender: string(m.Sender), Kind: kind,
		SentAt: timeText(m.SentAt), Mine: m.Mine, EditedAt: timeText(m.EditedAt), ExpiresAt: timeText(m.ExpiresAt),
	}
	if m.SenderDevice != ([len(m.SenderDevice)]byte{}) {
		j.SenderDevice = m.SenderDevice.String()
	}
	if kind != "undecryptable" {
		j.Text = string(m.Body)
	}
	if m.Kind == store.KindFile {
		j.Text = "" // the body is the file reference, with its key
		if f, err := client.FileOf(m); err == nil && kind != "undecryptable" {
			j.File = &f
		}
	}
	if m.Kind == store.KindReply && !m.Target.IsZero() {
		j.ReplyTo = m.Target.String()
	}
	if m.Mine {
		j.State = m.State.String()
	}
	return j
}

// printer writes results to stdout, as JSON lines or as text.
type printer struct {
	w     io.Writer
	json  bool
	names map[client.ChatID]string
	// reactions adds each message's reactions (history).
	reactions bool
	// who caches the names of accounts shown in text output.
	who map[identity.AccountID]string
}

// maxLookups bounds the directory look-ups one command makes for names.
const maxLookups = 50

// accountName is how text output names an account: username@server when
// the directory has a (signed) username for it, else its account id. JSON
// output always uses account ids.
func (p *printer) accountName(ctx context.Context, c *client.Client, a identity.AccountID) string {
	if a == "" {
		return ""
	}
	if name, ok := p.who[a]; ok {
		return name
	}
	if p.who == nil {
		p.who = map[identity.AccountID]string{}
	}
	name := string(a)
	if len(p.who) < maxLookups {
		if acct, err := c.Resolve(ctx, string(a)); err == nil && acct.ID == a && acct.Username != "" {
			name = acct.Username
			if _, host, ok := strings.Cut(c.Me().Address, "@"); ok {
				name += "@" + host
			}
		}
	}
	p.who[a] = name
	return name
}

// emit writes v as one JSON line.
func (p *printer) emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.w.Write(append(b, '\n'))
	return err
}

// loadNames remembers the chats' display names for text output.
func (p *printer) loadNames(ctx context.Context, c *client.Client) error {
	if p.json {
		return nil
	}
	convs, err := c.Store().Conversations(ctx)
	if err != nil {
		return err
	}
	p.names = make(map[client.ChatID]string, len(convs))
	for _, conv := range convs {
		p.names[conv.ID] = chatName(c, conv, func(a identity.AccountID) string { return p.accountName(ctx, c, a) })
	}
	return nil
}

// message prints one message.
func (p *printer) message(ctx context.Context, c *client.Client, m *store.Message, kind string) error {
	j := messageOf(m, kind)
	if p.reactions && kind != "undecryptable" && kind != "system" {
		rs, err := reactionsOf(ctx, c, m)
		if err != nil {
			return err
		}
		j.Reactions = rs
	}
	if p.json {
		return p.emit(j)
	}
	who := p.accountName(ctx, c, m.Sender)
	switch {
	case kind == "system":
		who = "*"
	case m.Mine && m.SenderDevice == c.Me().DeviceID:
		who = "me"
	case m.Mine:
		who = "me (other device)"
	}
	text := j.Text
	if kind == "system" {
		text = p.systemText(ctx, c, text)
	}
	if kind == "undecryptable" {
		text = "[this message could not be decrypted]"
	}
	if j.File != nil {
		text = fmt.Sprintf("[file %q, %s, %s: parley file get %s]", j.File.Name, sizeText(j.File.Size), j.File.MediaType, j.ID)
	}
	if j.ReplyTo != "" {
		text = "[reply to " + j.ReplyTo[:8] + "] " + text
	}
	if !m.EditedAt.IsZero() {
		text += " (edited)"
	}
	for i, r := range j.Reactions {
		sep := " "
		if i == 0 {
			sep = "  ["
		}
		text += sep + r.Reaction + " " + p.accountName(ctx, c, identity.AccountID(r.Sender))
		if i == len(j.Reactions)-1 {
			text += "]"
		}
	}
	chat := p.names[m.Chat]
	if chat == "" {
		chat = string(m.Chat)
	}
	_, err := fmt.Fprintf(p.w, "%s  [%s]  %s: %s\n", m.SentAt.Local().Format("2006-01-02 15:04:05"), chat, who, text)
	return err
}

// systemText is a system message's text for people: the account ids that
// membership, device and admin changes name ("members: +ACCOUNT") become
// names, as accountName gives them. JSON output keeps the ids.
func (p *printer) systemText(ctx context.Context, c *client.Client, text string) string {
	for _, prefix := range []string{"members:", "devices changed:", "admins:"} {
		rest, ok := strings.CutPrefix(text, prefix)
		if !ok {
			continue
		}
		words := strings.Fields(rest)
		for i, w := range words {
			sign := ""
			if strings.HasPrefix(w, "+") || strings.HasPrefix(w, "-") {
				sign, w = w[:1], w[1:]
			}
			if a, err := identity.ParseAccountID(w); err == nil {
				words[i] = sign + p.accountName(ctx, c, a)
			}
		}
		return prefix + " " + strings.Join(words, " ")
	}
	return text
}

// chatName is a chat's name: the group's name, or for a 1:1 chat the other
// account, named by name.
func chatName(c *client.Client, conv *store.Conversation, name func(identity.AccountID) string) string {
	if conv.Name != "" || conv.Kind != store.ChatDirect {
		return conv.Name
	}
	var others []string
	for _, a := range conv.Members {
		if a != c.Me().AccountID {
			others = append(others, name(a))
		}
	}
	return strings.Join(others, ", ")
}

// accountIDText names an account by its id.
func accountIDText(a identity.AccountID) string { return string(a) }
