package client

import (
	"fmt"
	"slices"

	"github.com/parley-im/parley/client/content"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// Delivery receipts.
//
// A device that stores a new text, reply or file message from another
// account acknowledges it to the chat with a delivery receipt
// (content.KindDelivered): one per chat for everything one fetched batch
// brought, written in the same transaction as the messages, so a burst
// costs one small padded message and a crash loses neither. Receipts are
// never sent for receipts, typing, edits, reactions or other control
// messages, nor in chats of more than maxReceiptMembers accounts (where
// every receipt would reach every member device).
//
// The sender's devices record per recipient account how far it got
// (store.Tx.RecordReceipts) and move the message's state: delivered once
// every account it was sent to that is still a member has it (in a 1:1
// chat: any device of the peer), read once each of them has read it.
// Accounts added to a group after the message are not waited for. Read receipts
// (content.KindReceipt) are sent only by accounts that turned
// SettingReadReceipts on; one covers the sender's messages up to the one
// it names. Every change is published as an EventState.

// maxReceiptMembers is the largest chat (in accounts) whose members send
// delivery receipts.
const maxReceiptMembers = 32

// receiptable reports whether a stored message of kind k from someone
// else is acknowledged with a delivery receipt.
func receiptable(k content.Kind) bool {
	return k == content.KindText || k == content.KindReply || k == content.KindFile
}

// noteDelivered marks the message just added to a (the last of
// a.b.Messages) for a delivery receipt, if it gets one.
func (c *Client) noteDelivered(a *applySet, conv *store.Conversation) {
	if conv.Kind == store.ChatSelf || len(conv.Members) > maxReceiptMembers {
		return
	}
	if a.delivered == nil {
		a.delivered = make(map[store.ChatID][]int)
	}
	a.delivered[conv.ID] = append(a.delivered[conv.ID], len(a.b.Messages)-1)
}

// queueDelivered queues, inside the transaction that stores a batch, one
// delivery receipt per chat (per content.MaxDeliveredIDs messages) for the
// noted messages the batch inserted.
func (c *Client) queueDelivered(tx *store.Tx, a *applySet, inserted []bool) (int, error) {
	chats := make([]store.ChatID, 0, len(a.delivered))
	for chat := range a.delivered {
		chats = append(chats, chat)
	}
	slices.Sort(chats)
	queued := 0
	for _, chat := range chats {
		var ids []content.ID
		for _, i := range a.delivered[chat] {
			if i < len(inserted) && inserted[i] {
				ids = append(ids, content.ID(a.b.Messages[i].ID))
			}
		}
		for chunk := range slices.Chunk(ids, content.MaxDeliveredIDs) {
			id, err := store.NewMessageID(c.opts.Rand)
			if err != nil {
				return queued, err
			}
			ct := &content.Content{Kind: content.KindDelivered, ID: content.ID(id), SentAtMilli: uint64(a.b.Now.UnixMilli()), Body: content.Delivered(chunk)}
			payload, err := content.Marshal(ct)
			if err != nil {
				return queued, err
			}
			if _, err := tx.Enqueue(&store.OutboxItem{Chat: chat, Message: id, Payload: payload, NextAttempt: a.b.Now, CreatedAt: a.b.Now}); err != nil {
				return queued, fmt.Errorf("failed to queue a delivery receipt: %w", err)
			}
			queued++
		}
	}
	return queued, nil
}

// expectReceipts records who a group message of ours of kind k goes to,
// so that members added later are not waited for.
func (c *Client) expectReceipts(tx *store.Tx, conv *store.Conversation, k content.Kind, id store.MessageID) error {
	if conv.Kind != store.ChatGroup || !receiptable(k) || len(conv.Members) > maxReceiptMembers {
		return nil
	}
	return tx.ExpectReceipts(conv.ID, id, c.recipients(conv))
}

// recipients are the accounts whose receipts a message of ours in conv
// waits for: every member but us.
func (c *Client) recipients(conv *store.Conversation) []identity.AccountID {
	var out []identity.AccountID
	for _, a := range conv.Members {
		if a != c.account() {
			out = append(out, a)
		}
	}
	return out
}

// applyReceipt records a delivery receipt (ids) or a read receipt (the
// messages up to upTo) from account who in conv, and publishes the state
// changes it causes.
func (c *Client) applyReceipt(a *applySet, conv *store.Conversation, who identity.AccountID, ids []store.MessageID, upTo store.MessageID, state store.MessageState) {
	if who == c.account() {
		return // our other devices do not count as recipients
	}
	need := c.recipients(conv)
	chat := conv.ID
	a.ops = append(a.ops, func(tx *store.Tx) error {
		if state == store.StateRead {
			covered, err := tx.ReadCovered(chat, upTo, who, store.MaxPageSize)
			if err != nil {
				return err
			}
			ids = append(covered, ids...)
		}
		changes, err := tx.RecordReceipts(chat, who, ids, state, need)
		if err != nil {
			return err
		}
		for _, ch := range changes {
			ev := stateEvent(chat, ch.ID, ch.State)
			ev.Sender = who
			a.evs = append(a.evs, ev)
		}
		return nil
	})
}
