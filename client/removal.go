package client

import (
	"context"
	"fmt"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// checkMemberships asks the server whether this device is still in every
// group it holds, and marks the chats it was removed from as left.
//
// A device that was offline when it was removed never sees the removing
// commit: the server pushes it only to connected devices, and fetch no
// longer returns the group's log to a non-member. An ack of the position
// the device already stored is a no-op for a member (a cursor never moves
// backwards) and FORBIDDEN (NOT_FOUND for a deleted group) for anyone
// else, so it serves as the question. One ack of every group answers the
// common case; only when it fails is each group asked on its own. Caller
// holds c.mu.
func (c *Client) checkMemberships(ctx context.Context, conn *wireclient.Client) error {
	convs, err := c.st.Conversations(ctx)
	if err != nil {
		return err
	}
	var held []*store.Conversation
	var refs []*wire.AckRef
	for _, conv := range convs {
		if conv.Left {
			continue
		}
		grp, err := c.group(ctx, conv.Group)
		if err != nil {
			return err
		}
		if grp == nil || !grp.Active() {
			continue
		}
		cur, err := c.cursor(ctx, store.GroupStream(conv.Group))
		if err != nil {
			return err
		}
		held = append(held, conv)
		refs = append(refs, &wire.AckRef{GroupId: []byte(conv.Group), Seq: cur})
	}
	if len(refs) == 0 {
		return nil
	}
	err = conn.Ack(ctx, refs, true)
	if err == nil {
		return nil
	}
	if !notMemberErr(err) && !behindErr(err) {
		return fmt.Errorf("failed to check group memberships: %w", err)
	}
	a := newApplySet(c.now())
	for i, ref := range refs {
		err := conn.Ack(ctx, []*wire.AckRef{ref}, true)
		if behindErr(err) {
			// Our cursor is past the group's last entry: the server was
			// restored from an older backup. Start the group's cursor
			// over (what we already hold is recognised by id, MLS refuses
			// replays) and check membership without acknowledging.
			if err := c.rewindAll(ctx, held[i].Group); err != nil {
				return err
			}
			ref.Seq = 0
			err = conn.Ack(ctx, []*wire.AckRef{ref}, true)
		}
		if err == nil {
			continue
		}
		if !notMemberErr(err) {
			return fmt.Errorf("failed to check group membership: %w", err)
		}
		c.markRemoved(a, held[i])
	}
	if err := c.commitSet(ctx, a); err != nil {
		c.forgetGroups()
		return err
	}
	return nil
}

// behindErr reports whether the server refused an acknowledgement as past
// the group's last entry (its log went back: restored from a backup).
func behindErr(err error) bool {
	return err != nil && wireCode(err) == wire.ErrorCode_INVALID_ARGUMENT
}

// rewindAll starts g's cursor over, for a server whose log went back.
func (c *Client) rewindAll(ctx context.Context, g store.GroupID) error {
	s := store.GroupStream(g)
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.RewindCursor(s, 0)
		return err
	})
	if err != nil {
		return err
	}
	delete(c.cursors, s)
	c.log.Warn("server's log is behind our cursor (restored from an older backup?); starting the chat's cursor over",
		"chat", store.ChatIDFromGroup(g))
	return nil
}

// notMemberErr reports whether the server answered that this device is not
// in the group (or the group is gone).
func notMemberErr(err error) bool {
	code := wireCode(err)
	return code == wire.ErrorCode_FORBIDDEN || code == wire.ErrorCode_NOT_FOUND
}

// markRemoved records that this device is no longer in conv: the chat and
// its history stay, listed as left; the group state is deleted, so nothing
// more is synced for it until a Welcome adds this device again.
func (c *Client) markRemoved(a *applySet, conv *store.Conversation) {
	c.log.Info("removed from a group while offline", "chat", conv.ID)
	conv.Left = true
	a.convs[conv.ID] = conv
	g := conv.Group
	delete(c.groups, g)
	delete(a.dirty, g)
	a.ops = append(a.ops, func(tx *store.Tx) error { return tx.DeleteGroupState(g) })
	a.evs = append(a.evs, Event{Kind: EventMembership, Chat: conv.ID, Text: "removed from the chat"})
}
