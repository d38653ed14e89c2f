package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-im/parley/client/content"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// fetchLimit is how many deliveries one Fetch asks for.
const fetchLimit = 256

// maxFetchRounds bounds one catch-up (256 × 4096 deliveries).
const maxFetchRounds = 4096

// applySet gathers everything one fetched batch changes, written in one
// transaction, so a crash never separates a group state from the messages
// its processing produced or from the cursor past them.
type applySet struct {
	b     store.Batch
	ops   []func(tx *store.Tx) error
	evs   []Event
	msgEv []Event // parallel to b.Messages: what to emit if inserted
	convs map[store.ChatID]*store.Conversation
	dirty map[store.GroupID]*mls.Group
	curs  map[store.Stream]uint64
	// delivered indexes b.Messages: per chat, the messages to acknowledge
	// with a delivery receipt if they are new (see receipts.go).
	delivered map[store.ChatID][]int
	// admins and unconfirmed hold the group info settings this batch
	// changed, so later entries of the batch are judged by them (the
	// store has them only once the batch commits).
	admins      map[store.ChatID][]identity.AccountID
	unconfirmed map[store.ChatID]bool
	// ousted holds the ousted admins (see effectiveAdmins) this batch
	// changed, likewise.
	ousted map[store.ChatID][]identity.AccountID
	// leaving holds the accounts whose leave message awaits their
	// removal (see leaving.go) this batch changed, likewise.
	leaving map[store.ChatID][]identity.AccountID
}

func newApplySet(now time.Time) *applySet {
	return &applySet{
		b:     store.Batch{Now: now},
		convs: make(map[store.ChatID]*store.Conversation),
		dirty: make(map[store.GroupID]*mls.Group),
		curs:  make(map[store.Stream]uint64),

		admins:      make(map[store.ChatID][]identity.AccountID),
		unconfirmed: make(map[store.ChatID]bool),
		ousted:      make(map[store.ChatID][]identity.AccountID),
		leaving:     make(map[store.ChatID][]identity.AccountID),
	}
}

func (a *applySet) addMessage(m *store.Message, ev Event) {
	a.b.Messages = append(a.b.Messages, m)
	ev.Message = m
	a.msgEv = append(a.msgEv, ev)
}

// conversation returns the conversation of g, from this batch or the store.
func (c *Client) conversationOf(ctx context.Context, a *applySet, g store.GroupID) (*store.Conversation, error) {
	id := store.ChatIDFromGroup(g)
	if conv, ok := a.convs[id]; ok {
		return conv, nil
	}
	conv, err := c.st.Conversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.convs[id] = conv
	return conv, nil
}

// commitSet writes a to the store and then updates memory.
func (c *Client) commitSet(ctx context.Context, a *applySet) error {
	for g, grp := range a.dirty {
		raw, err := grp.Marshal()
		if err != nil {
			return fmt.Errorf("failed to encode group state: %w", err)
		}
		a.b.GroupStates = append(a.b.GroupStates, store.GroupStateUpdate{Group: g, State: raw})
	}
	for _, conv := range a.convs {
		a.b.Conversations = append(a.b.Conversations, conv)
	}
	for s, seq := range a.curs {
		a.b.Cursors = append(a.b.Cursors, store.CursorUpdate{Stream: s, Seq: seq})
	}
	res := store.BatchResult{Inserted: make([]bool, len(a.b.Messages))}
	receipts := 0
	displaced := 0
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.Apply(&a.b, &res); err != nil {
			return err
		}
		displaced = tx.Displaced()
		for _, op := range a.ops {
			if err := op(tx); err != nil {
				return err
			}
		}
		var err error
		receipts, err = c.queueDelivered(tx, a, res.Inserted)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to store received messages: %w", err)
	}
	if displaced > 0 {
		// The server handed out sequence numbers again (restored from an
		// older backup): the messages we held under them are kept, moved.
		c.log.Warn("server reused sequence numbers (restored from an older backup?)", "messages_moved", displaced)
	}
	if receipts > 0 {
		c.wake()
	}
	for s, seq := range a.curs {
		c.cursors[s] = seq
	}
	for i, ev := range a.msgEv {
		if i < len(res.Inserted) && res.Inserted[i] {
			c.emit(ev)
		}
	}
	c.emit(a.evs...)
	return nil
}

// maxPushedCommits bounds the pushed commits kept between syncs.
const maxPushedCommits = 1024

// keepPushedCommit remembers a pushed commit. Fetch returns the log of
// groups we are in, so the commit that removes us reaches us only as a
// push: it is processed after the fetch if it directly follows what we
// have (see processPushed).
func (c *Client) keepPushedCommit(d *wire.Delivery) {
	c.pushMu.Lock()
	defer c.pushMu.Unlock()
	if len(c.pushed) >= maxPushedCommits {
		c.pushed = c.pushed[1:]
	}
	c.pushed = append(c.pushed, d)
}

// processPushed processes kept commits that directly follow the last
// processed entry of their group (the others were fetched, or will be).
// Caller holds c.mu.
func (c *Client) processPushed(ctx context.Context, conn *wireclient.Client) error {
	c.pushMu.Lock()
	ds := c.pushed
	c.pushed = nil
	c.pushMu.Unlock()
	slices.SortFunc(ds, func(x, y *wire.Delivery) int {
		if k := bytes.Compare(x.GetGroupId(), y.GetGroupId()); k != 0 {
			return k
		}
		return int(x.GetSeq()) - int(y.GetSeq())
	})
	a := newApplySet(c.now())
	for _, d := range ds {
		s := store.GroupStream(store.GroupID(d.GetGroupId()))
		cur, err := c.cursorIn(ctx, a, s)
		if err != nil {
			return err
		}
		if d.GetSeq() > cur+1 {
			// A gap the fetch did not fill: entries expired, or we are
			// no longer in the group (its log stops at our removal).
			c.tasks.members = true
		}
		if d.GetSeq() != cur+1 {
			continue
		}
		if err := c.processDelivery(ctx, conn, a, d); err != nil {
			c.forgetGroups()
			return err
		}
	}
	if err := c.commitSet(ctx, a); err != nil {
		c.forgetGroups()
		return err
	}
	return nil
}

// fetchAll fetches, processes, stores and acknowledges deliveries until
// the server has nothing more. Caller holds c.mu.
func (c *Client) fetchAll(ctx context.Context, conn *wireclient.Client) error {
	for range maxFetchRounds {
		resp, err := conn.Fetch(ctx, fetchLimit)
		if err != nil {
			return fmt.Errorf("failed to fetch: %w", err)
		}
		ds := resp.GetDeliveries()
		if len(ds) == 0 {
			break
		}
		a := newApplySet(c.now())
		refs := make([]*wire.AckRef, 0, len(ds))
		for _, d := range ds {
			if err := c.processDelivery(ctx, conn, a, d); err != nil {
				c.forgetGroups()
				return err
			}
			refs = append(refs, wireclient.RefOf(d))
		}
		if err := c.commitSet(ctx, a); err != nil {
			c.forgetGroups()
			return err
		}
		if err := conn.Ack(ctx, refs, true); err != nil {
			return fmt.Errorf("failed to acknowledge: %w", err)
		}
		if !resp.GetMore() {
			break
		}
	}
	return c.processPushed(ctx, conn)
}

func (c *Client) processDelivery(ctx context.Context, conn *wireclient.Client, a *applySet, d *wire.Delivery) error {
	if len(d.GetGroupId()) == 0 {
		s := store.MailboxStream
		cur, err := c.cursorIn(ctx, a, s)
		if err != nil {
			return err
		}
		if d.GetMailboxSeq() <= cur {
			return nil
		}
		a.curs[s] = d.GetMailboxSeq()
		switch d.GetKind() {
		case wire.MessageKind_MESSAGE_KIND_WELCOME:
			return c.processWelcome(ctx, a, d)
		case wire.MessageKind_MESSAGE_KIND_LINK:
			c.processLinkSignal(d)
		case wire.MessageKind_MESSAGE_KIND_OTHER:
			c.processRejoin(d)
		}
		return nil
	}
	g := store.GroupID(d.GetGroupId())
	s := store.GroupStream(g)
	cur, err := c.cursorIn(ctx, a, s)
	if err != nil {
		return err
	}
	if d.GetSeq() <= cur {
		// Already processed, unless the server reused the number.
		fresh, reused, err := c.seqReused(ctx, g, d)
		if err != nil || !fresh {
			return err
		}
		if reused {
			// The server's log went back (its number is ours for another
			// message): the cursor follows it, so that no acknowledgement
			// passes over what it has not delivered yet.
			a.curs[s] = d.GetSeq()
			a.ops = append(a.ops, func(tx *store.Tx) error {
				_, err := tx.RewindCursor(s, a.curs[s])
				return err
			})
		}
	} else {
		a.curs[s] = d.GetSeq()
	}
	grp, err := c.groupIn(ctx, a, g)
	if err != nil || grp == nil || !grp.Active() {
		return err
	}
	conv, err := c.conversationOf(ctx, a, g)
	if err != nil {
		return err
	}
	if conv == nil || conv.Left {
		return nil
	}
	sender := d.GetSender()
	if sender.GetAccountId() == string(c.account()) && bytes.Equal(sender.GetDeviceId(), c.id.Device[:]) {
		return c.processOwn(ctx, a, grp, conv, d)
	}
	if d.GetEpoch() < c.joinedEpoch(ctx, conv) {
		// Sent in an epoch before we joined (the sender had not yet seen
		// the commit that added us): not meant for us, and nothing lost.
		return nil
	}
	before, err := c.groupMembers(grp)
	if err != nil {
		return err
	}
	p, err := grp.Process(d.GetData())
	if errors.Is(err, mls.ErrReplay) {
		// The server (or someone in its place) sent a ciphertext we
		// already opened under a new sequence number: a duplicate, not
		// a lost message. The group state is unchanged.
		c.replays.Add(1)
		c.log.Warn("replayed message refused", "chat", conv.ID, "seq", d.GetSeq(), "kind", d.GetKind().String())
		return nil
	}
	if err != nil {
		c.undecryptableMsg(a, conv, d, err)
		return nil
	}
	a.dirty[g] = grp
	switch p.Kind {
	case mls.KindApplication:
		who, err := c.applicationSender(grp, p)
		if err != nil {
			c.undecryptableMsg(a, conv, d, err)
			return nil
		}
		ct, err := content.Unmarshal(p.Application)
		if err != nil {
			c.undecryptableMsg(a, conv, d, err)
			return nil
		}
		c.processContent(ctx, a, grp, conv, who, d, ct)
	case mls.KindCommit:
		c.processCommit(ctx, a, grp, conv, before, p, d)
	}
	return nil
}

// applicationSender verifies who sent an application message. A message
// of a past epoch (still in the grace period) is attributed by the
// credential of its epoch's tree: its sender may since have been removed,
// and its leaf may hold someone else now.
func (c *Client) applicationSender(grp *mls.Group, p *mls.Processed) (*memberID, error) {
	if p.Epoch != grp.Epoch() {
		cert, err := c.certOf(p.Sender.Credential)
		if err != nil {
			return nil, err
		}
		return &memberID{Account: cert.AccountID(), Device: cert.DeviceID(), cert: cert}, nil
	}
	m, ok := grp.Member(p.Sender.Index)
	if !ok {
		return nil, errors.New("sender is not a member")
	}
	return c.verifyMember(m)
}

// processOwn handles an entry this device sent: our commit merges if it is
// still pending (after a crash between send and merge); our application
// messages are already stored.
func (c *Client) processOwn(ctx context.Context, a *applySet, grp interface{ Epoch() uint64 }, conv *store.Conversation, d *wire.Delivery) error {
	g := store.GroupID(d.GetGroupId())
	mg, _ := c.groupIn(ctx, a, g)
	if d.GetKind() == wire.MessageKind_MESSAGE_KIND_COMMIT && mg != nil && mg.Epoch() == d.GetEpoch() {
		before, err := c.groupMembers(mg)
		if err != nil {
			return err
		}
		p, err := mg.Process(d.GetData())
		if err != nil {
			c.log.Warn("own commit could not be merged", "chat", conv.ID, "seq", d.GetSeq(), "err", err)
			return nil
		}
		a.dirty[g] = mg
		c.processCommit(ctx, a, mg, conv, before, p, d)
		return nil
	}
	if d.GetKind() == wire.MessageKind_MESSAGE_KIND_APPLICATION {
		id, ok := messageIDOf(d.GetMessageId())
		if ok {
			seq, chat := d.GetSeq(), conv.ID
			a.ops = append(a.ops, func(tx *store.Tx) error {
				// Usually already sent; after a crash between send and
				// acknowledgement this is where it becomes so.
				changed, err := tx.MarkSentChanged(id, seq)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				if changed {
					a.evs = append(a.evs, stateEvent(chat, id, store.StateSent))
				}
				return nil
			})
		}
	}
	return nil
}

func (c *Client) cursorIn(ctx context.Context, a *applySet, s store.Stream) (uint64, error) {
	if v, ok := a.curs[s]; ok {
		return v, nil
	}
	return c.cursor(ctx, s)
}

func (c *Client) groupIn(ctx context.Context, a *applySet, g store.GroupID) (*mls.Group, error) {
	if grp, ok := a.dirty[g]; ok {
		return grp, nil
	}
	return c.group(ctx, g)
}

// seqReused reports whether d, at or below its group's cursor, is to be
// processed all the same: an application message whose id the store does
// not know while it holds another message at its number. That is what a
// server restored from an older backup sends (it gives out sequence
// numbers again). fresh and reused are then both set. See
// [store.Store.Redelivered].
func (c *Client) seqReused(ctx context.Context, g store.GroupID, d *wire.Delivery) (fresh, reused bool, err error) {
	if d.GetKind() != wire.MessageKind_MESSAGE_KIND_APPLICATION {
		return false, false, nil
	}
	id, ok := messageIDOf(d.GetMessageId())
	if !ok {
		return false, false, nil
	}
	known, reused, err := c.st.Redelivered(ctx, store.ChatIDFromGroup(g), d.GetSeq(), id)
	if err != nil || known || !reused {
		// Known: a redelivery. Unknown with nothing at its number: most
		// likely a redelivery of something never stored (processing it
		// again would fail as undecryptable); a restored server's log is
		// caught by the reused numbers and by acks past its end.
		return false, false, err
	}
	c.log.Warn("server reused a sequence number (restored from an older backup?); processing the new message",
		"chat", store.ChatIDFromGroup(g), "seq", d.GetSeq())
	return true, true, nil
}

func messageIDOf(b []byte) (store.MessageID, bool) {
	var id store.MessageID
	if len(b) != len(id) {
		return id, false
	}
	copy(id[:], b)
	return id, !id.IsZero()
}

// undecryptableMsg counts, logs (without content) and records a message
// that could not be decrypted.
func (c *Client) undecryptableMsg(a *applySet, conv *store.Conversation, d *wire.Delivery, err error) {
	c.undecryptable.Add(1)
	c.log.Error("undecryptable message", "chat", conv.ID, "seq", d.GetSeq(), "kind", d.GetKind().String(), "err", err)
	id, ok := messageIDOf(d.GetMessageId())
	if !ok {
		return
	}
	m := &store.Message{
		ID: id, Chat: conv.ID, Seq: d.GetSeq(), Kind: store.KindSystem, State: store.StateUndecryptable,
		Sender: identity.AccountID(d.GetSender().GetAccountId()), SentAt: time.Unix(d.GetUnixTime(), 0), ReceivedAt: c.now(),
	}
	if _, err := identity.ParseAccountID(string(m.Sender)); err != nil {
		m.Sender = ""
	}
	a.addMessage(m, Event{Kind: EventUndecryptable, Chat: conv.ID})
}

// storeKind maps content kinds to stored message kinds.
func storeKind(k content.Kind) (store.MessageKind, bool) {
	switch k {
	case content.KindText:
		return store.KindText, true
	case content.KindReply:
		return store.KindReply, true
	case content.KindEdit:
		return store.KindEdit, true
	case content.KindDelete:
		return store.KindDelete, true
	case content.KindReaction:
		return store.KindReaction, true
	case content.KindReceipt:
		return store.KindReceipt, true
	case content.KindFile:
		return store.KindFile, true
	}
	return 0, false
}

func (c *Client) processContent(ctx context.Context, a *applySet, grp *mls.Group, conv *store.Conversation, who *memberID, d *wire.Delivery, ct *content.Content) {
	sentAt := time.UnixMilli(int64(ct.SentAtMilli))
	mine := who.Account == c.account()
	base := Event{Chat: conv.ID, Sender: who.Account}
	if k, ok := storeKind(ct.Kind); ok {
		m := &store.Message{
			ID: store.MessageID(ct.ID), Chat: conv.ID, Seq: d.GetSeq(), Sender: who.Account, SenderDevice: who.Device,
			Mine: mine, Kind: k, Body: ct.Body, Target: store.MessageID(ct.Target), SentAt: sentAt,
			ReceivedAt: c.now(), State: store.StateReceived,
		}
		if mine {
			m.State = store.StateSent
		}
		if ct.ExpireAfter > 0 {
			m.ExpiresAt = sentAt.Add(time.Duration(ct.ExpireAfter) * time.Second)
		}
		ev := base
		ev.Kind = EventMessage
		if k.IsEvent() {
			ev.Kind = EventUpdate
			ev.Target = m.Target
		}
		if ct.Kind == content.KindReceipt {
			ev.Kind = EventReceipt
			c.applyReceipt(a, conv, who.Account, nil, m.Target, store.StateRead)
		}
		a.addMessage(m, ev)
		if !mine && receiptable(ct.Kind) {
			c.noteDelivered(a, conv)
		}
		if mine {
			// Sent by another of our devices: it waits for the same
			// recipients here.
			id, kind := m.ID, ct.Kind
			a.ops = append(a.ops, func(tx *store.Tx) error { return c.expectReceipts(tx, conv, kind, id) })
		}
		return
	}
	switch ct.Kind {
	case content.KindDelivered:
		ids := content.DeliveredIDs(ct)
		mids := make([]store.MessageID, len(ids))
		for i, id := range ids {
			mids[i] = store.MessageID(id)
		}
		c.applyReceipt(a, conv, who.Account, mids, store.MessageID{}, store.StateDelivered)
	case content.KindTyping:
		ev := base
		ev.Kind, ev.Typing = EventTyping, string(ct.Body) == "1"
		a.evs = append(a.evs, ev)
	case content.KindLastSeen:
		c.applyLastSeen(a, conv, base, sentAt)
	case content.KindGroupInfo:
		c.applyGroupInfo(ctx, a, conv, who, d.GetSeq(), ct)
	case content.KindTimer:
		if conv.Kind == store.ChatGroup && !c.isAdminIn(ctx, a, conv, who.Account) {
			c.policy(a, conv, who.Account, "a non-admin tried to change the disappearing timer")
			return
		}
		conv.DisappearAfter = time.Duration(ct.ExpireAfter) * time.Second
		c.addNote(a, conv, who, d.GetSeq(), ct, timerNote(conv.DisappearAfter))
	case content.KindSetting:
		if conv.Kind != store.ChatSelf || !mine {
			return
		}
		name, value, ok := strings.Cut(string(ct.Body), "=")
		if ok && validSetting(name, value) {
			a.ops = append(a.ops, func(tx *store.Tx) error { return tx.SetSetting(name, value) })
		}
	case content.KindReadMark:
		if conv.Kind != store.ChatSelf || !mine {
			return
		}
		chat, seq, ok := parseReadMark(string(ct.Body))
		if ok {
			a.ops = append(a.ops, func(tx *store.Tx) error {
				err := tx.MarkRead(chat, seq)
				if errors.Is(err, store.ErrNotFound) {
					return nil
				}
				return err
			})
		}
	case content.KindAccount:
		if conv.Kind != store.ChatSelf || !mine || !validAccountDataName(ct.Name) || len(ct.Body) > MaxAccountData {
			return
		}
		key, val := accountDataKey(ct.Name), string(ct.Body)
		a.ops = append(a.ops, func(tx *store.Tx) error { return tx.SetSetting(key, val) })
		a.evs = append(a.evs, Event{Kind: EventAccountData, Chat: conv.ID, Sender: who.Account, Text: ct.Name})
	case content.KindLeave:
		if mine {
			// Another of our devices left: so does this one.
			conv.Left = true
			conv.Members = withoutAccount(conv.Members, c.account())
			delete(c.groups, conv.Group)
			delete(a.dirty, conv.Group)
			g := conv.Group
			a.ops = append(a.ops, func(tx *store.Tx) error { return tx.DeleteGroupState(g) })
			a.evs = append(a.evs, Event{Kind: EventMembership, Chat: conv.ID, Sender: who.Account, Text: "left"})
			return
		}
		c.noteLeaving(ctx, a, conv, who.Account)
		a.evs = append(a.evs, Event{Kind: EventMembership, Chat: conv.ID, Sender: who.Account, Text: "leaving"})
	}
}

// processCommit records a membership change and enforces the group rules.
func (c *Client) processCommit(ctx context.Context, a *applySet, grp *mls.Group, conv *store.Conversation, before map[mls.LeafIndex]*memberID, p *mls.Processed, d *wire.Delivery) {
	ci := p.Commit
	if ci.RemovedUs {
		conv.Left = true
		stay := make(map[mls.LeafIndex]*memberID, len(before))
		for l, m := range before {
			if !slices.Contains(ci.Removed, l) {
				stay[l] = m
			}
		}
		conv.Members = withoutAccount(accountsOf(stay), c.account())
		a.evs = append(a.evs, Event{Kind: EventMembership, Chat: conv.ID, Text: "removed from the chat"})
		return
	}
	var committer *memberID
	if p.Sender.Kind == mls.SenderMember {
		committer = before[p.Sender.Index]
	}
	after, err := c.groupMembers(grp)
	if err != nil {
		c.log.Error("group holds an unverifiable member", "chat", conv.ID, "err", err)
		c.policy(a, conv, "", "a member's certificate does not verify")
		return
	}
	oldAccounts := accountsOf(before)
	conv.Members = accountsOf(after)
	var added, removed []identity.AccountID
	for _, m := range ci.Added {
		if id, err := c.verifyMember(m); err == nil && !slices.Contains(added, id.Account) {
			added = append(added, id.Account)
		}
	}
	for _, l := range ci.Removed {
		if id := before[l]; id != nil && !slices.Contains(removed, id.Account) {
			removed = append(removed, id.Account)
		}
	}
	if committer != nil && conv.Kind != store.ChatSelf {
		c.enforce(ctx, a, conv, committer.Account, oldAccounts, added, removed)
	}
	if conv.Kind == store.ChatGroup {
		c.keepOusted(ctx, a, conv)
	}
	c.keepLeaving(ctx, a, conv)
	if conv.Kind == store.ChatSelf {
		for _, acct := range conv.Members {
			if acct != c.account() {
				c.policy(a, conv, "", "a foreign account was added to the self group")
			}
		}
	}
	text := membershipText(oldAccounts, conv.Members, append(added, removed...))
	if text == "" {
		return
	}
	if id, ok := messageIDOf(d.GetMessageId()); ok {
		var sender identity.AccountID
		if committer != nil {
			sender = committer.Account
		}
		m := &store.Message{
			ID: id, Chat: conv.ID, Seq: d.GetSeq(), Kind: store.KindSystem, Body: []byte(text), Sender: sender,
			Mine: sender == c.account(), SentAt: commitTime(p.AuthenticatedData, d.GetUnixTime()), ReceivedAt: c.now(), State: store.StateReceived,
		}
		if committer != nil {
			m.SenderDevice = committer.Device
		}
		a.addMessage(m, Event{Kind: EventMembership, Chat: conv.ID, Sender: sender, Text: text})
	}
}

// commitAAD is the authenticated data a commit of ours carries: the
// committer's clock in Unix milliseconds (8 bytes, big-endian). Every
// device dates the commit's system message by it, so the message has the
// same sent_at everywhere.
func commitAAD(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixMilli()))
}

// commitTime returns the time a commit's system message is dated by: the
// committer's clock from its authenticated data, or, for a commit without
// one (an external commit, an older client), the server's time of the
// entry.
func commitTime(aad []byte, serverUnix int64) time.Time {
	if len(aad) == 8 {
		if ms := binary.BigEndian.Uint64(aad); ms > 0 && ms < 1<<62 {
			return time.UnixMilli(int64(ms))
		}
	}
	return time.Unix(serverUnix, 0)
}

// membershipText describes a commit that changed the accounts from old to
// now and the devices of the accounts in touched: "members: +a -b" for
// accounts that joined or left, "devices changed: c" for accounts that
// stayed members but gained or lost a device (a linked, revoked or
// recovered device: worth knowing, as a changed safety number is). Empty
// when neither happened.
func membershipText(old, now, touched []identity.AccountID) string {
	var parts, devices []string
	for _, x := range now {
		if !slices.Contains(old, x) {
			parts = append(parts, "+"+string(x))
		}
	}
	for _, x := range old {
		if !slices.Contains(now, x) {
			parts = append(parts, "-"+string(x))
		}
	}
	for _, x := range touched {
		if slices.Contains(old, x) && slices.Contains(now, x) && !slices.Contains(devices, string(x)) {
			devices = append(devices, string(x))
		}
	}
	var out []string
	if len(parts) > 0 {
		out = append(out, "members: "+strings.Join(parts, " "))
	}
	if len(devices) > 0 {
		out = append(out, "devices changed: "+strings.Join(devices, " "))
	}
	return strings.Join(out, "; ")
}

func (c *Client) policy(a *applySet, conv *store.Conversation, who identity.AccountID, text string) {
	c.log.Warn("group rule broken", "chat", conv.ID, "what", text)
	a.evs = append(a.evs, Event{Kind: EventPolicy, Chat: conv.ID, Sender: who, Text: text})
}

// joinedKey is the setting holding the epoch at which this device joined a
// group by Welcome.
func joinedKey(chat ChatID) string { return "chat." + string(chat) + ".joined" }

// joinedEpoch returns the epoch this device joined conv at (0 if it made
// the group). Caller holds c.mu.
func (c *Client) joinedEpoch(ctx context.Context, conv *store.Conversation) uint64 {
	if e, ok := c.joined[conv.Group]; ok {
		return e
	}
	v, ok, err := c.st.Setting(ctx, joinedKey(conv.ID))
	if err != nil {
		return 0
	}
	var e uint64
	if ok {
		e, _ = strconv.ParseUint(v, 10, 64)
	}
	c.joined[conv.Group] = e
	return e
}
