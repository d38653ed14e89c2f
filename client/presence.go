package client

import (
	"context"
	"strconv"
	"time"

	"github.com/parley-im/parley/client/store"
)

// lastSeenKey is the setting holding when the other account of a 1:1 chat
// was last active (Unix milliseconds), as it told us.
func lastSeenKey(chat ChatID) string { return "chat." + string(chat) + ".lastseen" }

// LastSeen returns when the other account of the 1:1 chat was last active,
// as its devices told this one (only accounts that turned
// [SettingLastSeen] on tell), and false if it never did. The time is the
// sender's claim, capped at when it arrived.
func (c *Client) LastSeen(ctx context.Context, chat ChatID) (time.Time, bool, error) {
	v, ok, err := c.st.Setting(ctx, lastSeenKey(chat))
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(ms), true, nil
}

// applyLastSeen publishes a presence notice and, in a 1:1 chat, keeps it
// for [Client.LastSeen].
func (c *Client) applyLastSeen(a *applySet, conv *store.Conversation, base Event, sentAt time.Time) {
	at := sentAt
	if now := c.now(); at.After(now) || at.IsZero() {
		at = now
	}
	ev := base
	ev.Kind = EventLastSeen
	ev.Message = &store.Message{SentAt: at}
	a.evs = append(a.evs, ev)
	if conv.Kind != store.ChatDirect || base.Sender == c.account() {
		return
	}
	key, val := lastSeenKey(conv.ID), strconv.FormatInt(at.UnixMilli(), 10)
	a.ops = append(a.ops, func(tx *store.Tx) error { return tx.SetSetting(key, val) })
}
