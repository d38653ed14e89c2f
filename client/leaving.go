package client

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// A member's leave message and the commit that removes it are separate
// entries of the group log, and the commit may arrive in a later batch,
// after a restart. Whether a removal was the member's own leave decides
// whether it is a breach (and, for the last admin, whether it is ousted and
// added back), so the leave is remembered in the store with the batch that
// processed it, not only in the task queue: every member decides alike,
// whether or not it restarted in between.

// leavingKey is the setting holding the accounts that sent a leave
// message to chat and are not yet removed from it.
func leavingKey(chat ChatID) string { return "chat." + string(chat) + leavingSuffix }

const leavingSuffix = ".leaving"

// leavingIn returns chat's leaving accounts as of the batch a (which may
// have changed them), or as stored if a is nil.
func (c *Client) leavingIn(ctx context.Context, a *applySet, chat ChatID) []identity.AccountID {
	var batch map[ChatID][]identity.AccountID
	if a != nil {
		batch = a.leaving
	}
	return c.accountListIn(ctx, batch, chat, leavingKey(chat))
}

// setLeaving records, in a and in the store when a commits, chat's
// leaving accounts.
func (c *Client) setLeaving(a *applySet, chat ChatID, leaving []identity.AccountID) {
	setAccountList(a, a.leaving, chat, leavingKey(chat), leaving)
}

// noteLeaving records that account sent a leave message to conv and
// queues its removal. Caller holds c.mu.
func (c *Client) noteLeaving(ctx context.Context, a *applySet, conv *store.Conversation, account identity.AccountID) {
	c.tasks.removeAccount(conv.Group, account)
	if !slices.Contains(conv.Members, account) {
		return
	}
	if l := c.leavingIn(ctx, a, conv.ID); !slices.Contains(l, account) {
		c.setLeaving(a, conv.ID, append(slices.Clone(l), account))
	}
}

// isLeaving reports whether account sent a leave message to conv that
// its removal has not yet followed (as of the batch a), or is queued for
// removal by this device.
func (c *Client) isLeaving(ctx context.Context, a *applySet, conv *store.Conversation, account identity.AccountID) bool {
	return slices.Contains(c.leavingIn(ctx, a, conv.ID), account) || c.tasks.leaving(conv.Group, account)
}

// keepLeaving drops from conv's leaving accounts those no longer members
// (the commit that removed them), as of the batch a.
func (c *Client) keepLeaving(ctx context.Context, a *applySet, conv *store.Conversation) {
	if kept, changed := c.leavingKept(ctx, a, conv); changed {
		c.setLeaving(a, conv.ID, kept)
	}
}

// leavingKept returns conv's leaving accounts that are still members, and
// whether that dropped any.
func (c *Client) leavingKept(ctx context.Context, a *applySet, conv *store.Conversation) ([]identity.AccountID, bool) {
	l := c.leavingIn(ctx, a, conv.ID)
	kept := slices.DeleteFunc(slices.Clone(l), func(id identity.AccountID) bool { return !slices.Contains(conv.Members, id) })
	return kept, len(kept) != len(l)
}

// requeueLeaving queues again the removal of every account whose leave
// message was processed before a restart (the task queue is in memory)
// and forgets those of chats this device is no longer in. runTasks calls
// it once per open client. Caller holds c.mu.
func (c *Client) requeueLeaving(ctx context.Context) error {
	names, err := c.st.SettingNames(ctx, "chat.")
	if err != nil {
		return err
	}
	var stale []string
	for _, name := range names {
		if !strings.HasSuffix(name, leavingSuffix) {
			continue
		}
		chat := ChatID(strings.TrimSuffix(strings.TrimPrefix(name, "chat."), leavingSuffix))
		conv, err := c.st.Conversation(ctx, chat)
		if errors.Is(err, store.ErrNotFound) || err == nil && conv.Left {
			stale = append(stale, name)
			continue
		}
		if err != nil {
			return err
		}
		for _, acct := range c.leavingIn(ctx, nil, chat) {
			if slices.Contains(conv.Members, acct) {
				c.tasks.removeAccount(conv.Group, acct)
			}
		}
	}
	if len(stale) == 0 {
		return nil
	}
	return c.st.Update(ctx, func(tx *store.Tx) error {
		for _, name := range stale {
			if err := tx.DeleteSetting(name); err != nil {
				return err
			}
		}
		return nil
	})
}
