package client

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-im/parley/client/content"
	"github.com/parley-im/parley/client/store"
)

// Privacy settings. Each is "on" or "off"; all are off by default.
const (
	// SettingReadReceipts sends read receipts (and shows others').
	SettingReadReceipts = "read-receipts"
	// SettingTyping sends typing notices.
	SettingTyping = "typing"
	// SettingLastSeen sends last-seen presence.
	SettingLastSeen = "last-seen"
)

// Settings lists the synced settings and their defaults.
var Settings = map[string]string{SettingReadReceipts: "off", SettingTyping: "off", SettingLastSeen: "off"}

func validSetting(name, value string) bool {
	_, known := Settings[name]
	return known && (value == "on" || value == "off")
}

// ErrBadSetting means an unknown setting or value.
var ErrBadSetting = fmt.Errorf("client: unknown setting or value (settings: %s, %s, %s; values: on, off)",
	SettingReadReceipts, SettingTyping, SettingLastSeen)

// Setting returns a setting's value.
func (c *Client) Setting(ctx context.Context, name string) (string, error) {
	def, ok := Settings[name]
	if !ok {
		return "", ErrBadSetting
	}
	v, ok, err := c.st.Setting(ctx, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return def, nil
	}
	return v, nil
}

func (c *Client) settingOn(ctx context.Context, name string) bool {
	v, err := c.Setting(ctx, name)
	return err == nil && v == "on"
}

// SetSetting changes a setting on this device and, through the self group,
// on every device of the account.
func (c *Client) SetSetting(ctx context.Context, name, value string) error {
	if !validSetting(name, value) {
		return ErrBadSetting
	}
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSetting(name, value) }); err != nil {
		return err
	}
	self, err := c.SelfChat(ctx)
	if err != nil {
		return err
	}
	return c.queueControl(ctx, self, &content.Content{Kind: content.KindSetting, Body: []byte(name + "=" + value)})
}

// SetTyping tells a chat that we are (or stopped) typing, if typing
// notices are on; otherwise it does nothing.
func (c *Client) SetTyping(ctx context.Context, chat ChatID, typing bool) error {
	if !c.settingOn(ctx, SettingTyping) {
		return nil
	}
	if _, err := c.activeConversation(ctx, chat); err != nil {
		return err
	}
	body := "0"
	if typing {
		body = "1"
	}
	return c.queueControl(ctx, chat, &content.Content{Kind: content.KindTyping, Body: []byte(body)})
}

// MarkRead records that the user has read chat up to and including the
// message upTo: on every device of the account (through the self group),
// and, if read receipts are on, for the sender.
func (c *Client) MarkRead(ctx context.Context, chat ChatID, upTo MessageID) error {
	m, err := c.st.Message(ctx, upTo)
	if err != nil {
		return fmt.Errorf("failed to find message: %w", err)
	}
	if m.Chat != chat || m.Seq == 0 {
		return fmt.Errorf("%w: message is not in this chat", ErrUnknownChat)
	}
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.MarkRead(chat, m.Seq) }); err != nil {
		return err
	}
	if self, err := c.SelfChat(ctx); err == nil {
		body := fmt.Sprintf("%s=%d", chat, m.Seq)
		if err := c.queueControl(ctx, self, &content.Content{Kind: content.KindReadMark, Body: []byte(body)}); err != nil {
			return err
		}
	}
	if !m.Mine && c.settingOn(ctx, SettingReadReceipts) {
		return c.queueControl(ctx, chat, &content.Content{Kind: content.KindReceipt, Target: content.ID(upTo)})
	}
	return nil
}

func parseReadMark(s string) (ChatID, uint64, bool) {
	a, b, ok := strings.Cut(s, "=")
	if !ok {
		return "", 0, false
	}
	chat, err := store.ParseChatID(a)
	if err != nil {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(b, 10, 64)
	if err != nil || seq == 0 || seq > store.MaxSeq {
		return "", 0, false
	}
	return chat, seq, true
}

// SetDisappearing sets a chat's disappearing-message timer (zero turns it
// off) for every member. Messages sent afterwards are deleted on every
// device that long after they were sent.
func (c *Client) SetDisappearing(ctx context.Context, chat ChatID, after time.Duration) error {
	conv, err := c.activeConversation(ctx, chat)
	if err != nil {
		return err
	}
	if after < 0 || after/time.Second > 1<<31 {
		return fmt.Errorf("client: disappearing timer out of range")
	}
	if conv.Kind == store.ChatGroup && !c.isAdmin(ctx, conv, c.account()) {
		return ErrNotAdmin
	}
	conv.DisappearAfter = after.Truncate(time.Second)
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.PutConversation(conv) }); err != nil {
		return err
	}
	return c.queueControlNote(ctx, chat, &content.Content{Kind: content.KindTimer, ExpireAfter: uint32(after / time.Second)}, timerNote(conv.DisappearAfter))
}

// SendLastSeen tells the chats we are active now, if last-seen is on.
func (c *Client) SendLastSeen(ctx context.Context, chat ChatID) error {
	if !c.settingOn(ctx, SettingLastSeen) {
		return nil
	}
	return c.queueControl(ctx, chat, &content.Content{Kind: content.KindLastSeen})
}
