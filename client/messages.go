package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/client/content"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// maxSendAttempts is how many times a send is tried before it is marked
// failed.
const maxSendAttempts = 30

// Send queues a text message to chat and returns its id. It returns once
// the message is stored and queued; the engine sends it when online.
func (c *Client) Send(ctx context.Context, chat ChatID, text string) (MessageID, error) {
	return c.post(ctx, chat, content.KindText, []byte(text), MessageID{})
}

// Reply queues a text message replying to target.
func (c *Client) Reply(ctx context.Context, chat ChatID, target MessageID, text string) (MessageID, error) {
	return c.post(ctx, chat, content.KindReply, []byte(text), target)
}

// Edit replaces the text of our message target, for everyone.
func (c *Client) Edit(ctx context.Context, chat ChatID, target MessageID, text string) (MessageID, error) {
	return c.post(ctx, chat, content.KindEdit, []byte(text), target)
}

// Delete deletes our message target for everyone.
func (c *Client) Delete(ctx context.Context, chat ChatID, target MessageID) (MessageID, error) {
	return c.post(ctx, chat, content.KindDelete, nil, target)
}

// React sets our reaction to target (an empty reaction withdraws it).
func (c *Client) React(ctx context.Context, chat ChatID, target MessageID, reaction string) (MessageID, error) {
	return c.post(ctx, chat, content.KindReaction, []byte(reaction), target)
}

// SendTo sends text to an address (ACCOUNTID@server or username@server),
// starting a 1:1 chat if there is none.
func (c *Client) SendTo(ctx context.Context, address, text string) (ChatID, MessageID, error) {
	chat, err := c.StartDirect(ctx, address)
	if err != nil {
		return "", MessageID{}, err
	}
	id, err := c.Send(ctx, chat, text)
	return chat, id, err
}

func (c *Client) activeConversation(ctx context.Context, chat ChatID) (*store.Conversation, error) {
	conv, err := c.st.Conversation(ctx, chat)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownChat, chat)
	}
	if err != nil {
		return nil, err
	}
	if conv.Left {
		return nil, ErrNotMember
	}
	return conv, nil
}

func (c *Client) post(ctx context.Context, chat ChatID, kind content.Kind, body []byte, target MessageID) (MessageID, error) {
	conv, err := c.activeConversation(ctx, chat)
	if err != nil {
		return MessageID{}, err
	}
	id, err := store.NewMessageID(c.opts.Rand)
	if err != nil {
		return id, err
	}
	now := c.now()
	ct := &content.Content{Kind: kind, ID: content.ID(id), Target: content.ID(target), SentAtMilli: uint64(now.UnixMilli()), Body: body}
	if conv.DisappearAfter > 0 {
		ct.ExpireAfter = uint32(conv.DisappearAfter / time.Second)
	}
	payload, err := content.Marshal(ct)
	if err != nil {
		return id, err
	}
	sk, _ := storeKind(kind)
	m := &store.Message{
		ID: id, Chat: chat, Sender: c.account(), SenderDevice: c.id.Device, Mine: true, Kind: sk, Body: body,
		Target: target, SentAt: time.UnixMilli(int64(ct.SentAtMilli)), ReceivedAt: now, State: store.StatePending,
	}
	if ct.ExpireAfter > 0 {
		m.ExpiresAt = m.SentAt.Add(time.Duration(ct.ExpireAfter) * time.Second)
	}
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.InsertMessage(m); err != nil {
			return err
		}
		_, err := tx.Enqueue(&store.OutboxItem{Chat: chat, Message: id, Payload: payload, NextAttempt: now, CreatedAt: now})
		return err
	})
	if err != nil {
		return id, fmt.Errorf("failed to queue message: %w", err)
	}
	ev := Event{Kind: EventMessage, Chat: chat, Sender: c.account(), Message: m}
	if sk.IsEvent() {
		ev.Kind, ev.Target = EventUpdate, target
	}
	c.emit(ev)
	c.wake()
	return id, nil
}

// queueControl queues a content that is not stored as a message (typing,
// receipts, group info, settings, read marks).
func (c *Client) queueControl(ctx context.Context, chat ChatID, ct *content.Content) error {
	id, err := store.NewMessageID(c.opts.Rand)
	if err != nil {
		return err
	}
	ct.ID = content.ID(id)
	ct.SentAtMilli = uint64(c.now().UnixMilli())
	payload, err := content.Marshal(ct)
	if err != nil {
		return err
	}
	now := c.now()
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.Enqueue(&store.OutboxItem{Chat: chat, Message: id, Payload: payload, NextAttempt: now, CreatedAt: now})
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to queue: %w", err)
	}
	c.wake()
	return nil
}

// queued counts outbox items.
func (c *Client) queued(ctx context.Context) (int, error) {
	items, err := c.st.OutboxDue(ctx, time.Unix(1<<40, 0), store.MaxPageSize)
	return len(items), err
}

// retryDelay is the backoff after n failed attempts.
func (c *Client) retryDelay(n int) time.Duration {
	d := 200 * time.Millisecond << min(n, 10)
	return min(d, c.opts.MaxBackoff)
}

// flushOutbox encrypts and sends every due outbox item and returns how
// many were sent.
func (c *Client) flushOutbox(ctx context.Context, conn *wireclient.Client) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sent := 0
	for range 1000 {
		items, err := c.st.OutboxDue(ctx, c.now(), 64)
		if err != nil {
			return sent, err
		}
		if len(items) == 0 {
			return sent, nil
		}
		progress := false
		for _, it := range items {
			ok, err := c.sendItem(ctx, conn, it)
			if err != nil {
				return sent, err
			}
			if ok {
				sent++
				progress = true
			}
		}
		if !progress {
			return sent, nil
		}
	}
	return sent, nil
}

// sendItem sends one outbox item. It reports whether the item left the
// outbox; a connection error is returned so the caller reconnects.
func (c *Client) sendItem(ctx context.Context, conn *wireclient.Client, it *store.OutboxItem) (bool, error) {
	drop := func(state store.MessageState) (bool, error) {
		err := c.st.Update(ctx, func(tx *store.Tx) error {
			if !it.Message.IsZero() {
				if err := tx.SetMessageState(it.Message, state); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			return tx.RemoveFromOutbox(it.ID)
		})
		return true, err
	}
	conv, err := c.st.Conversation(ctx, it.Chat)
	if errors.Is(err, store.ErrNotFound) {
		return drop(store.StateFailed)
	}
	if err != nil {
		return false, err
	}
	grp, err := c.group(ctx, conv.Group)
	if err != nil {
		return false, err
	}
	if conv.Left || grp == nil || !grp.Active() {
		return drop(store.StateFailed)
	}
	ct, err := grp.Encrypt(it.Payload, nil)
	if err != nil {
		return false, fmt.Errorf("failed to encrypt: %w", err)
	}
	// The ratchet moved: store it before the ciphertext leaves, so a
	// crash never reuses a key.
	if err := c.saveGroup(ctx, grp); err != nil {
		return false, err
	}
	seq, err := conn.SendMessage(ctx, []byte(conv.Group), grp.Epoch(), it.Message, ct)
	if err != nil {
		if isConnErr(conn, err) || ctx.Err() != nil {
			return false, err
		}
		code := wireCode(err)
		c.log.Info("send refused; will retry", "chat", conv.ID, "code", code.String())
		if it.Attempts+1 >= maxSendAttempts || code == wire.ErrorCode_TOO_LARGE || code == wire.ErrorCode_INVALID_ARGUMENT {
			return drop(store.StateFailed)
		}
		if err := c.st.Update(ctx, func(tx *store.Tx) error {
			return tx.RetryLater(it.ID, c.now().Add(c.retryDelay(it.Attempts)))
		}); err != nil {
			return false, err
		}
		// An epoch we are behind on: catch up before the retry.
		if ferr := c.fetchAll(ctx, conn); ferr != nil {
			return false, ferr
		}
		return false, nil
	}
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if !it.Message.IsZero() {
			if err := tx.MarkSent(it.Message, seq); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return tx.RemoveFromOutbox(it.ID)
	})
	if err != nil {
		return false, err
	}
	return true, nil
}

// expire deletes disappearing messages whose time has come.
func (c *Client) expire(ctx context.Context) error {
	for range 100 {
		var refs []store.MessageRef
		err := c.st.Update(ctx, func(tx *store.Tx) error {
			var err error
			refs, err = tx.ExpireMessages(c.now(), 500)
			return err
		})
		if err != nil {
			return fmt.Errorf("failed to expire messages: %w", err)
		}
		for _, r := range refs {
			c.emit(Event{Kind: EventUpdate, Chat: r.Chat, Target: r.ID, Text: "expired"})
		}
		if len(refs) < 500 {
			return nil
		}
	}
	return nil
}
