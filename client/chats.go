package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-im/parley/client/content"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// Account is a directory entry whose keys were checked: the account id is
// derived from the account key, and every device certificate verifies.
type Account struct {
	ID       identity.AccountID
	Key      []byte
	Username string
	Devices  []*identity.DeviceCertificate
}

// Resolve looks an address up in the directory: ACCOUNTID@server,
// username@server, or either without @server for this device's server.
func (c *Client) Resolve(ctx context.Context, address string) (*Account, error) {
	var acct *Account
	err := c.withConn(ctx, func(conn *wireclient.Client) error {
		var err error
		acct, err = c.resolveOn(ctx, conn, address)
		return err
	})
	return acct, err
}

func (c *Client) resolveOn(ctx context.Context, conn *wireclient.Client, address string) (*Account, error) {
	name, host, hasHost := strings.Cut(strings.TrimSpace(address), "@")
	if name == "" || hasHost && host == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadAddress, address)
	}
	if hasHost && !strings.EqualFold(host, c.host) && !strings.EqualFold(host, hostOf(c.id.ServerURL)) {
		return nil, fmt.Errorf("%w: %q is on another server, and federation is not available yet", ErrBadAddress, address)
	}
	lk := &wire.Lookup{}
	if id, err := identity.ParseAccountID(name); err == nil {
		lk.By = &wire.Lookup_AccountId{AccountId: string(id)}
	} else if _, err := identity.FoldUsername(name); err == nil {
		lk.By = &wire.Lookup_Username{Username: name}
	} else {
		return nil, fmt.Errorf("%w: %q", ErrBadAddress, address)
	}
	r, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_Lookup{Lookup: lk}})
	if err != nil {
		if wireCode(err) == wire.ErrorCode_NOT_FOUND {
			return nil, fmt.Errorf("%w: %s", ErrUnknownAccount, address)
		}
		return nil, fmt.Errorf("failed to look up %s: %w", address, err)
	}
	return c.checkLookup(r.GetLookup())
}

func (c *Client) checkLookup(l *wire.LookupResponse) (*Account, error) {
	id := identity.AccountIDFromKey(l.GetAccountPublicKey())
	if len(l.GetAccountPublicKey()) != 32 || string(id) != l.GetAccountId() {
		return nil, fmt.Errorf("failed to look up account: the server's key does not match the account id")
	}
	acct := &Account{ID: id, Key: l.GetAccountPublicKey()}
	if len(l.GetUsernameClaim()) > 0 {
		claim, err := identity.ParseUsernameClaim(l.GetUsernameClaim())
		if err == nil && claim.Verify() == nil && claim.AccountID() == id {
			acct.Username = claim.Username()
		}
	}
	for _, raw := range l.GetDeviceCertificates() {
		cert, err := identity.ParseDeviceCertificate(raw)
		if err != nil || cert.Verify() != nil || cert.AccountID() != id {
			continue
		}
		acct.Devices = append(acct.Devices, cert)
	}
	return acct, nil
}

// resolveAll resolves addresses to account ids, skipping this account.
func (c *Client) resolveAll(ctx context.Context, addresses []string) ([]identity.AccountID, error) {
	var out []identity.AccountID
	for _, a := range addresses {
		acct, err := c.Resolve(ctx, a)
		if err != nil {
			return nil, err
		}
		if acct.ID != c.account() && !slices.Contains(out, acct.ID) {
			out = append(out, acct.ID)
		}
	}
	return out, nil
}

// StartDirect returns the 1:1 chat with the account at address, creating
// it (and adding all devices of both accounts) if there is none.
func (c *Client) StartDirect(ctx context.Context, address string) (ChatID, error) {
	if err := c.reachable(ctx); err != nil {
		return "", err
	}
	acct, err := c.Resolve(ctx, address)
	if err != nil {
		return "", err
	}
	if acct.ID == c.account() {
		return "", ErrOwnAddress
	}
	convs, err := c.st.Conversations(ctx)
	if err != nil {
		return "", err
	}
	for _, conv := range convs {
		if conv.Kind == store.ChatDirect && !conv.Left && slices.Contains(conv.Members, acct.ID) {
			return conv.ID, nil
		}
	}
	chat, err := c.createGroupOn(ctx, nil, store.ChatDirect, address, []identity.AccountID{acct.ID})
	if err != nil {
		return chat, err
	}
	return chat, c.withConn(ctx, func(conn *wireclient.Client) error { return c.addOwnDevices(ctx, conn, chat) })
}

// addOwnDevices adds this account's other devices to a new chat.
func (c *Client) addOwnDevices(ctx context.Context, conn *wireclient.Client, chat ChatID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	conv, err := c.activeConversation(ctx, chat)
	if err != nil {
		return err
	}
	return c.syncOwnDevices(ctx, conn, conv, nil)
}

// CreateGroup creates a group chat named name with the accounts at the
// addresses (and all of their and this account's devices). This account
// is its first admin.
func (c *Client) CreateGroup(ctx context.Context, name string, addresses []string) (ChatID, error) {
	if len(name) > content.MaxName {
		return "", fmt.Errorf("group name over %d bytes", content.MaxName)
	}
	if err := c.reachable(ctx); err != nil {
		return "", err
	}
	accounts, err := c.resolveAll(ctx, addresses)
	if err != nil {
		return "", err
	}
	chat, err := c.createGroupOn(ctx, nil, store.ChatGroup, name, accounts)
	if err != nil {
		return chat, err
	}
	return chat, c.withConn(ctx, func(conn *wireclient.Client) error { return c.addOwnDevices(ctx, conn, chat) })
}

// requireAdmin returns the conversation if this account may change its
// membership.
func (c *Client) requireAdmin(ctx context.Context, chat ChatID) (*store.Conversation, error) {
	conv, err := c.activeConversation(ctx, chat)
	if err != nil {
		return nil, err
	}
	if conv.Kind != store.ChatGroup {
		return nil, fmt.Errorf("%w: only groups change members", ErrNotAdmin)
	}
	if !c.isAdmin(ctx, conv, c.account()) {
		return nil, ErrNotAdmin
	}
	return conv, nil
}

// AddMembers adds the accounts at the addresses (all their devices) to a
// group. Only admins may.
func (c *Client) AddMembers(ctx context.Context, chat ChatID, addresses []string) error {
	conv, err := c.requireAdmin(ctx, chat)
	if err != nil {
		return err
	}
	if err := c.reachable(ctx); err != nil {
		return err
	}
	accounts, err := c.resolveAll(ctx, addresses)
	if err != nil {
		return err
	}
	// Newcomers learn the name and the admins from the group info the
	// add commit queues (commitChange).
	return c.withConn(ctx, func(conn *wireclient.Client) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.addAccountsLocked(ctx, conn, conv, accounts)
	})
}

// RemoveMembers removes the accounts at the addresses (all their devices)
// from a group. Only admins may.
func (c *Client) RemoveMembers(ctx context.Context, chat ChatID, addresses []string) error {
	conv, err := c.requireAdmin(ctx, chat)
	if err != nil {
		return err
	}
	if err := c.reachable(ctx); err != nil {
		return err
	}
	accounts, err := c.resolveAll(ctx, addresses)
	if err != nil {
		return err
	}
	return c.withConn(ctx, func(conn *wireclient.Client) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.commitChange(ctx, conn, conv.Group, nil, func(m *memberID) bool { return slices.Contains(accounts, m.Account) })
	})
}

// Leave leaves a chat on every device of this account: the other members
// remove our devices by commit, and this device forgets the group at once.
// It returns once the server has taken the leave message; if it cannot
// deliver it (the server keeps refusing it, or cannot be reached), it
// returns the error and this device stays in the group, its leave message
// withdrawn. A leave message not delivered while this device turns out to
// be out of the group anyway (the removal committed before the retry of a
// send whose answer was lost, or a removal it had not seen) is a leave
// that took effect: Leave succeeds.
func (c *Client) Leave(ctx context.Context, chat ChatID) error {
	conv, err := c.activeConversation(ctx, chat)
	if errors.Is(err, ErrNotRejoined) {
		return c.leaveRestored(ctx, chat)
	}
	if err != nil {
		return err
	}
	if conv.Kind == store.ChatSelf {
		return fmt.Errorf("%w: the self group cannot be left", ErrNotMember)
	}
	id, err := store.NewMessageID(c.opts.Rand)
	if err != nil {
		return err
	}
	c.mu.Lock()
	outcome := c.watch(id)
	c.mu.Unlock()
	if err := c.queueControlAs(ctx, chat, id, &content.Content{Kind: content.KindLeave}, ""); err != nil {
		c.mu.Lock()
		delete(c.watched, id)
		c.mu.Unlock()
		return err
	}
	err = c.deliverLeave(ctx, chat, id, outcome)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.watched, id)
	if err != nil && !outcome.sent {
		// Not delivered: withdraw it, so it does not take effect later
		// behind the caller's back (a flush in flight held c.mu: the
		// outcome is final now).
		if werr := c.withdrawSend(ctx, chat, id); werr != nil {
			c.log.Warn("failed to withdraw an undelivered leave", "chat", chat, "err", werr)
		}
		if !c.noLongerMember(ctx, chat) {
			return err
		}
		// The device is out of the group all the same: the server took
		// the leave message before a broken connection lost its answer
		// and a member committed the removal before the retry (or a
		// member removed us meanwhile). The leave took effect.
		c.log.Info("leave message not confirmed, but no longer a member: left", "chat", chat, "err", err)
	}
	if cur, err := c.st.Conversation(ctx, chat); err == nil {
		conv = cur // as the retries' catching up left it
	}
	conv.Left = true
	conv.Members = withoutAccount(conv.Members, c.account())
	delete(c.groups, conv.Group)
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteGroupState(conv.Group); err != nil {
			return err
		}
		return tx.PutConversation(conv)
	})
	if err != nil {
		return err
	}
	c.emit(Event{Kind: EventMembership, Chat: chat, Sender: c.account(), Text: "left"})
	return nil
}

// noLongerMember reports whether this device is out of chat's group: the
// chat is marked left or its group state is gone or inactive, as when a
// commit removed the device (flushBatch drops a send to such a chat).
// Caller holds c.mu.
func (c *Client) noLongerMember(ctx context.Context, chat ChatID) bool {
	conv, err := c.st.Conversation(ctx, chat)
	if err != nil {
		return false
	}
	if conv.Left {
		return true
	}
	grp, err := c.group(ctx, conv.Group)
	return err == nil && (grp == nil || !grp.Active())
}

// leaveAttempts bounds how often Leave sends its leave message after the
// server refused it.
const leaveAttempts = 5

// deliverLeave sends chat's outbox, which holds the leave message id, until
// the server has taken the leave (outcome.sent): after a refusal it waits
// a moment (the flush caught up with the group meanwhile) and sends again
// at once, rather than at the outbox's later retry. It returns why the
// leave was not delivered.
func (c *Client) deliverLeave(ctx context.Context, chat ChatID, id MessageID, outcome *sendOutcome) error {
	for attempt := 0; ; attempt++ {
		err := c.withConn(ctx, func(conn *wireclient.Client) error {
			if _, err := c.flushOutbox(ctx, conn); err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if !outcome.done && notMemberErr(outcome.err) {
				// Refused as from a non-member: removed unseen? Ask, so
				// the next attempt finds the chat left rather than
				// sending again.
				return c.checkMemberships(ctx, conn)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("failed to leave: %w", err)
		}
		c.mu.Lock()
		done, sent, why := outcome.done, outcome.sent, outcome.err
		c.mu.Unlock()
		switch {
		case sent:
			return nil
		case done:
			return fmt.Errorf("failed to leave: the leave message was not sent: %w", why)
		case attempt+1 >= leaveAttempts:
			if why == nil {
				why = errors.New("it is queued behind sends waiting for their retry")
			}
			return fmt.Errorf("failed to leave: the server refused the leave message %d times: %w", leaveAttempts, why)
		}
		if !c.sleep(ctx, min(c.retryDelay(attempt), time.Second)) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrClosed
		}
		if err := c.sendNow(ctx, chat, id); err != nil {
			return err
		}
	}
}

// sendNow makes chat's outbox items up to the one carrying message id due
// now.
func (c *Client) sendNow(ctx context.Context, chat ChatID, id MessageID) error {
	items, err := c.st.Outbox(ctx, chat, store.MaxPageSize)
	if err != nil {
		return err
	}
	now := c.now()
	return c.st.Update(ctx, func(tx *store.Tx) error {
		for _, it := range items {
			if it.NextAttempt.After(now) {
				if err := tx.RetryLater(it.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			if it.Message == id {
				break
			}
		}
		return nil
	})
}

// withdrawSend removes the outbox item of chat carrying message id, if it
// is still queued. Caller holds c.mu.
func (c *Client) withdrawSend(ctx context.Context, chat ChatID, id MessageID) error {
	items, err := c.st.Outbox(ctx, chat, store.MaxPageSize)
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.Message == id {
			return c.st.Update(ctx, func(tx *store.Tx) error {
				if err := tx.RemoveFromOutbox(it.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				return nil
			})
		}
	}
	return nil
}

// Rename renames a group (admins only).
func (c *Client) Rename(ctx context.Context, chat ChatID, name string) error {
	conv, err := c.requireAdmin(ctx, chat)
	if err != nil {
		return err
	}
	admins := c.admins(ctx, chat)
	note := groupInfoNote(conv.Name, name, admins, admins)
	conv.Name = name
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.PutConversation(conv) }); err != nil {
		return err
	}
	return c.queueControlNote(ctx, chat, groupInfoContent(name, admins), note)
}

// withoutAccount returns ids without acct.
func withoutAccount(ids []identity.AccountID, acct identity.AccountID) []identity.AccountID {
	return slices.DeleteFunc(slices.Clone(ids), func(x identity.AccountID) bool { return x == acct })
}

// groupInfoNote is the system message for a change of a group's name or
// admins ("" when neither changed). Sender and receivers build it alike.
func groupInfoNote(oldName, name string, oldAdmins, admins []identity.AccountID) string {
	var parts []string
	if name != oldName {
		parts = append(parts, fmt.Sprintf("renamed the group to %q", name))
	}
	if !slices.Equal(oldAdmins, admins) {
		s := make([]string, len(admins))
		for i, a := range admins {
			s[i] = string(a)
		}
		parts = append(parts, "admins: "+strings.Join(s, " "))
	}
	return strings.Join(parts, "; ")
}

// timerNote is the system message for a disappearing-timer change.
func timerNote(after time.Duration) string {
	if after <= 0 {
		return "disappearing messages: off"
	}
	return "disappearing messages: " + after.String()
}

// SetAdmins replaces a group's admin list (admins only). The list must
// name at least one member.
func (c *Client) SetAdmins(ctx context.Context, chat ChatID, addresses []string) error {
	conv, err := c.requireAdmin(ctx, chat)
	if err != nil {
		return err
	}
	var admins []identity.AccountID
	for _, a := range addresses {
		acct, err := c.Resolve(ctx, a)
		if err != nil {
			return err
		}
		// An admin outside the group could change nothing, and the
		// members would have lost theirs.
		if !slices.Contains(conv.Members, acct.ID) {
			return fmt.Errorf("%w: %s is not a member of this group, so it cannot be an admin", store.ErrInvalid, a)
		}
		admins = append(admins, acct.ID)
	}
	if len(admins) == 0 {
		return fmt.Errorf("%w: a group needs an admin", ErrNotAdmin)
	}
	note := groupInfoNote(conv.Name, conv.Name, c.admins(ctx, chat), admins)
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSetting(adminsKey(chat), joinAccounts(admins)) }); err != nil {
		return err
	}
	return c.queueControlNote(ctx, chat, groupInfoContent(conv.Name, admins), note)
}

// Admins returns a group's recorded admin list. Those of them still in
// the group administer it; when none is, every member does (see
// docs/protocol.md, "Group admin rules").
func (c *Client) Admins(ctx context.Context, chat ChatID) []identity.AccountID {
	return c.admins(ctx, chat)
}

func (c *Client) queueGroupInfo(ctx context.Context, chat ChatID, name string, admins []identity.AccountID) error {
	return c.queueControl(ctx, chat, groupInfoContent(name, admins))
}

func groupInfoContent(name string, admins []identity.AccountID) *content.Content {
	ct := &content.Content{Kind: content.KindGroupInfo, Name: name}
	for _, a := range admins {
		ct.Admins = append(ct.Admins, string(a))
	}
	return ct
}

// Chats lists the conversations, with unread counts.
func (c *Client) Chats(ctx context.Context) ([]*Conversation, map[ChatID]int, error) {
	convs, err := c.st.Conversations(ctx)
	if err != nil {
		return nil, nil, err
	}
	unread, err := c.st.UnreadCounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, conv := range convs {
		if conv.Left {
			// The members when we left (or were removed), without us:
			// later changes no longer reach this device.
			conv.Members = withoutAccount(conv.Members, c.account())
		}
	}
	return convs, unread, nil
}

// History returns a page of a chat's messages, oldest first, in the
// server's order.
func (c *Client) History(ctx context.Context, chat ChatID, q store.HistoryQuery) (*store.HistoryPage, error) {
	return c.st.History(ctx, chat, q)
}

// SelfChat returns the id of this account's self group.
func (c *Client) SelfChat(ctx context.Context) (ChatID, error) {
	convs, err := c.st.Conversations(ctx)
	if err != nil {
		return "", err
	}
	for _, conv := range convs {
		if conv.Kind == store.ChatSelf && !conv.Left {
			return conv.ID, nil
		}
	}
	return "", ErrUnknownChat
}
