package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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

// React sets our reaction to target (an empty reaction withdraws it). A
// reaction is at most content.MaxReaction bytes of UTF-8.
func (c *Client) React(ctx context.Context, chat ChatID, target MessageID, reaction string) (MessageID, error) {
	if !content.ValidReaction([]byte(reaction)) {
		return MessageID{}, fmt.Errorf("%w: a reaction is at most %d bytes of UTF-8 (an emoji or a short word), this one is %d", store.ErrInvalid, content.MaxReaction, len(reaction))
	}
	return c.post(ctx, chat, content.KindReaction, []byte(reaction), target)
}

// SendFile queues a file message. The descriptor (the file's key, hash,
// size, name and media type, in the encoding of the files package) travels
// end to end; the file's encrypted blob is uploaded separately. Receivers
// store it as a message of kind store.KindFile whose Body is the
// descriptor.
func (c *Client) SendFile(ctx context.Context, chat ChatID, descriptor []byte) (MessageID, error) {
	if len(descriptor) == 0 || len(descriptor) > content.MaxBody {
		return MessageID{}, fmt.Errorf("%w: file descriptor of %d bytes", store.ErrInvalid, len(descriptor))
	}
	return c.post(ctx, chat, content.KindFile, descriptor, MessageID{})
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
	if _, err := c.st.GroupState(ctx, conv.Group); errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotRejoined
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
	return id, c.postAs(ctx, conv, kind, body, target, id)
}

// postAs queues a message with a given id. If this device already stored a
// message with that id (an earlier attempt that was interrupted after
// queueing it), nothing new is queued.
func (c *Client) postAs(ctx context.Context, conv *store.Conversation, kind content.Kind, body []byte, target, id MessageID) error {
	chat := conv.ID
	now := c.now()
	ct := &content.Content{Kind: kind, ID: content.ID(id), Target: content.ID(target), SentAtMilli: uint64(now.UnixMilli()), Body: body}
	if conv.DisappearAfter > 0 {
		ct.ExpireAfter = uint32(conv.DisappearAfter / time.Second)
	}
	payload, err := content.Marshal(ct)
	if err != nil {
		return err
	}
	sk, _ := storeKind(kind)
	m := &store.Message{
		ID: id, Chat: chat, Sender: c.account(), SenderDevice: c.id.Device, Mine: true, Kind: sk, Body: body,
		Target: target, SentAt: time.UnixMilli(int64(ct.SentAtMilli)), ReceivedAt: now, State: store.StatePending,
	}
	if ct.ExpireAfter > 0 {
		m.ExpiresAt = m.SentAt.Add(time.Duration(ct.ExpireAfter) * time.Second)
	}
	inserted := false
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		if inserted, err = tx.InsertMessage(m); err != nil || !inserted {
			return err
		}
		if err := c.expectReceipts(tx, conv, kind, id); err != nil {
			return err
		}
		_, err = tx.Enqueue(&store.OutboxItem{Chat: chat, Message: id, Payload: payload, NextAttempt: now, CreatedAt: now})
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to queue message: %w", err)
	}
	if !inserted {
		return nil
	}
	ev := Event{Kind: EventMessage, Chat: chat, Sender: c.account(), Message: m}
	if sk.IsEvent() {
		ev.Kind, ev.Target = EventUpdate, target
	}
	c.emit(ev)
	c.wake()
	return nil
}

// queueControl queues a content that is not stored as a message (typing,
// receipts, group info, settings, read marks).
func (c *Client) queueControl(ctx context.Context, chat ChatID, ct *content.Content) error {
	return c.queueControlNote(ctx, chat, ct, "")
}

// queueControlNote is queueControl that also stores, when note is not
// empty, this device's system message for the change (pending until sent)
// under the message's id and time: receivers store theirs from the same
// content, so the change shows alike, with one sent_at, on every device.
func (c *Client) queueControlNote(ctx context.Context, chat ChatID, ct *content.Content, note string) error {
	id, err := store.NewMessageID(c.opts.Rand)
	if err != nil {
		return err
	}
	return c.queueControlAs(ctx, chat, id, ct, note)
}

// queueControlAs is queueControlNote with the message id given.
func (c *Client) queueControlAs(ctx context.Context, chat ChatID, id MessageID, ct *content.Content, note string) error {
	now := c.now()
	ct.ID = content.ID(id)
	ct.SentAtMilli = uint64(now.UnixMilli())
	payload, err := content.Marshal(ct)
	if err != nil {
		return err
	}
	var m *store.Message
	if note != "" {
		m = &store.Message{
			ID: id, Chat: chat, Sender: c.account(), SenderDevice: c.id.Device, Mine: true, Kind: store.KindSystem,
			Body: []byte(note), SentAt: time.UnixMilli(int64(ct.SentAtMilli)), ReceivedAt: now, State: store.StatePending,
		}
	}
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if m != nil {
			if _, err := tx.InsertMessage(m); err != nil {
				return err
			}
		}
		_, err := tx.Enqueue(&store.OutboxItem{Chat: chat, Message: id, Payload: payload, NextAttempt: now, CreatedAt: now})
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to queue: %w", err)
	}
	if m != nil {
		c.emit(Event{Kind: EventMembership, Chat: chat, Sender: c.account(), Text: note, Message: m})
	}
	c.wake()
	return nil
}

// queued counts outbox items (up to MaxPageSize per chat).
func (c *Client) queued(ctx context.Context) (int, error) {
	heads, err := c.st.OutboxDue(ctx, c.now().Add(50*365*24*time.Hour), store.MaxPageSize)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range heads {
		items, err := c.st.Outbox(ctx, h.Chat, store.MaxPageSize)
		if err != nil {
			return n, err
		}
		n += len(items)
	}
	return n, nil
}

// retryDelay is the backoff after n failed attempts.
func (c *Client) retryDelay(n int) time.Duration {
	d := 200 * time.Millisecond << min(n, 10)
	return min(d, c.opts.MaxBackoff)
}

// sendBatch is how many outbox items are encrypted and sent together.
const sendBatch = 128

// flushOutbox encrypts and sends every due outbox item and returns how
// many were sent.
func (c *Client) flushOutbox(ctx context.Context, conn *wireclient.Client) (sent int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if sent > 0 {
			// The queue shrank: front ends show its length.
			q, _ := c.queued(ctx)
			c.emit(Event{Kind: EventConnection, State: c.State(), Queued: q})
		}
	}()
	for range 1000 {
		n, err := c.flushBatch(ctx, conn)
		sent += n
		if err != nil || n == 0 {
			return sent, err
		}
	}
	return sent, nil
}

// outgoing is one outbox item on its way.
type outgoing struct {
	item  *store.OutboxItem
	group store.GroupID
	epoch uint64
	data  []byte
	seq   uint64
	err   error
	tried bool
}

// sendInOrder sends the batch pipelined across groups but in order within
// each: the server may handle one connection's requests concurrently, so a
// group's next message leaves only after the previous one was acknowledged
// (the server's order is the conversation's order and must be the order in
// which the user sent). At a group's first failure its later items are not
// tried, so they keep their place behind the failed one.
func sendInOrder(ctx context.Context, conn *wireclient.Client, out []*outgoing) {
	var lanes [][]*outgoing
	lane := make(map[store.GroupID]int)
	for _, o := range out {
		i, ok := lane[o.group]
		if !ok {
			i = len(lanes)
			lane[o.group] = i
			lanes = append(lanes, nil)
		}
		lanes[i] = append(lanes[i], o)
	}
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, o := range l {
				o.tried = true
				o.seq, o.err = conn.SendMessage(ctx, []byte(o.group), o.epoch, o.item.Message, o.data)
				if o.err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// dueItems returns the due items of every chat, each chat's in order,
// up to sendBatch in all.
func (c *Client) dueItems(ctx context.Context) ([]*store.OutboxItem, error) {
	now := c.now()
	heads, err := c.st.OutboxDue(ctx, now, sendBatch)
	if err != nil {
		return nil, err
	}
	var out []*store.OutboxItem
	for _, h := range heads {
		items, err := c.st.Outbox(ctx, h.Chat, sendBatch)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.NextAttempt.After(now) || len(out) >= sendBatch {
				break
			}
			out = append(out, it)
		}
	}
	return out, nil
}

// flushBatch encrypts a batch, stores the advanced ratchets once, sends the
// ciphertexts (pipelined across chats, in order within one: sendInOrder),
// and records the outcomes in one transaction. It returns how many items
// left the outbox. Caller holds c.mu.
func (c *Client) flushBatch(ctx context.Context, conn *wireclient.Client) (int, error) {
	items, err := c.dueItems(ctx)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	var out []*outgoing
	var dropped []*store.OutboxItem
	dirty := make(map[store.GroupID]bool)
	for _, it := range items {
		conv, err := c.st.Conversation(ctx, it.Chat)
		if errors.Is(err, store.ErrNotFound) {
			dropped = append(dropped, it)
			continue
		}
		if err != nil {
			return 0, err
		}
		grp, err := c.group(ctx, conv.Group)
		if err != nil {
			return 0, err
		}
		if conv.Left || grp == nil || !grp.Active() {
			dropped = append(dropped, it)
			continue
		}
		data, err := grp.Encrypt(it.Payload, nil)
		if err != nil {
			return 0, fmt.Errorf("failed to encrypt: %w", err)
		}
		dirty[conv.Group] = true
		out = append(out, &outgoing{item: it, group: conv.Group, epoch: grp.Epoch(), data: data})
	}
	// The ratchets moved: store them before any ciphertext leaves, so a
	// crash never reuses a key.
	states := make(map[store.GroupID][]byte, len(dirty))
	for g := range dirty {
		raw, err := c.groups[g].Marshal()
		if err != nil {
			return 0, fmt.Errorf("failed to encode group state: %w", err)
		}
		states[g] = raw
	}
	var changed []Event
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		for g, raw := range states {
			if err := tx.PutGroupState(g, raw, c.now()); err != nil {
				return err
			}
		}
		for _, it := range dropped {
			if err := c.dropItem(tx, it, &changed); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.forgetGroups()
		return 0, fmt.Errorf("failed to store group state: %w", err)
	}
	c.emit(changed...)
	changed = nil
	for _, it := range dropped {
		c.settle(it.Message, false, ErrNotMember)
	}
	sendInOrder(ctx, conn, out)
	done := len(dropped)
	var connErr error
	refused := false
	var rewound []store.Stream
	var gaveUp []*outgoing
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		rewound, gaveUp = rewound[:0], gaveUp[:0]
		for _, o := range out {
			switch {
			case !o.tried:
				// Behind a failed send of its chat: stays queued, in order.
			case o.err == nil:
				done++
				if !o.item.Message.IsZero() {
					// Only our own posts have a message in the outbox, and
					// they are pending (or failed) until now.
					before := tx.Displaced()
					ok, err := tx.MarkSentChanged(o.item.Message, o.seq)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					if tx.Displaced() > before {
						// The server gave out this number before: it was
						// restored from an older backup. Fetch its log again
						// from here (what we hold under reused numbers stays).
						if err := c.serverWentBack(tx, o.group, o.seq, &rewound); err != nil {
							return err
						}
					}
					if ok {
						changed = append(changed, stateEvent(o.item.Chat, o.item.Message, store.StateSent))
					}
				}
				if err := tx.RemoveFromOutbox(o.item.ID); err != nil {
					return err
				}
			case isConnErr(conn, o.err) || ctx.Err() != nil:
				connErr = o.err
			default:
				code := wireCode(o.err)
				c.log.Info("send refused; will retry", "chat", o.item.Chat, "code", code.String())
				if notMemberErr(o.err) {
					c.tasks.members = true // removed unseen? ask before the retry
				}
				if o.item.Attempts+1 >= maxSendAttempts || code == wire.ErrorCode_TOO_LARGE || code == wire.ErrorCode_INVALID_ARGUMENT {
					done++
					if err := c.dropItem(tx, o.item, &changed); err != nil {
						return err
					}
					gaveUp = append(gaveUp, o)
					continue
				}
				refused = true
				if err := tx.RetryLater(o.item.ID, c.now().Add(c.retryDelay(o.item.Attempts))); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return done, fmt.Errorf("failed to record sends: %w", err)
	}
	for _, st := range rewound {
		delete(c.cursors, st) // reread from the store
	}
	for _, o := range out {
		switch {
		case !o.tried:
		case o.err == nil:
			c.settle(o.item.Message, true, nil)
		case slices.Contains(gaveUp, o):
			c.settle(o.item.Message, false, o.err)
		default:
			c.refusedOnce(o.item.Message, o.err)
		}
	}
	c.emit(changed...)
	if connErr != nil {
		return done, connErr
	}
	if refused {
		// Probably an epoch we are behind on: catch up before the retry.
		if err := c.fetchAll(ctx, conn); err != nil {
			return done, err
		}
	}
	return done, nil
}

// dropItem gives up on an outbox item, marking its message failed (and
// adding the state change to evs).
func (c *Client) dropItem(tx *store.Tx, it *store.OutboxItem, evs *[]Event) error {
	if !it.Message.IsZero() {
		ok, err := tx.AdvanceMessageState(it.Message, store.StateFailed)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if ok {
			*evs = append(*evs, stateEvent(it.Chat, it.Message, store.StateFailed))
		}
	}
	return tx.RemoveFromOutbox(it.ID)
}

// stateEvent reports that our message id in chat is now in state s.
func stateEvent(chat ChatID, id MessageID, s store.MessageState) Event {
	return Event{Kind: EventState, Chat: chat, Target: id, MessageState: s}
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

// serverWentBack handles a sequence number of group that the server gave
// out again (it was restored from an older backup): it logs it and rewinds
// the group's cursor to just before seq, so the next fetch reads what the
// server now holds from there. Messages stored under the old numbers stay
// (displaced, see [store.Tx.Displaced]); nothing wedges.
func (c *Client) serverWentBack(tx *store.Tx, g store.GroupID, seq uint64, rewound *[]store.Stream) error {
	s := store.GroupStream(g)
	moved, err := tx.RewindCursor(s, seq-1)
	if err != nil {
		return err
	}
	c.log.Warn("server reused a sequence number (restored from an older backup?); refetching",
		"chat", store.ChatIDFromGroup(g), "seq", seq, "cursor_rewound", moved)
	*rewound = append(*rewound, s)
	return nil
}

// sendOutcome is what became of a watched outbox send.
type sendOutcome struct {
	// done: the send left the outbox, sent if sent, else given up on.
	done, sent bool
	// err is why it was last refused, or given up on.
	err error
}

// watch starts recording the outcome of the send of message id. Caller
// holds c.mu.
func (c *Client) watch(id MessageID) *sendOutcome {
	if c.watched == nil {
		c.watched = make(map[MessageID]*sendOutcome)
	}
	o := &sendOutcome{}
	c.watched[id] = o
	return o
}

// settle records that the watched send of message id left the outbox.
// Caller holds c.mu.
func (c *Client) settle(id MessageID, sent bool, err error) {
	if o := c.watched[id]; o != nil && !id.IsZero() {
		o.done, o.sent, o.err = true, sent, err
	}
}

// refusedOnce records a refusal of the watched send of message id that
// leaves it queued for a retry. Caller holds c.mu.
func (c *Client) refusedOnce(id MessageID, err error) {
	if o := c.watched[id]; o != nil && !id.IsZero() {
		o.err = err
	}
}
