package client

import (
	"context"
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

// maxCommitAttempts bounds the rebuild-and-resend loop of one change.
const maxCommitAttempts = 16

// createGroupOn makes a new MLS group of the given kind on the server and
// adds the accounts' devices, over conn, or (conn nil) over this client's
// connection, retried on a new one when it breaks. Caller must not hold
// c.mu.
func (c *Client) createGroupOn(ctx context.Context, conn *wireclient.Client, kind store.ChatKind, name string, accounts []identity.AccountID) (ChatID, error) {
	raw := make([]byte, 16)
	if _, err := c.opts.Rand.Read(raw); err != nil {
		return "", fmt.Errorf("failed to make group id: %w", err)
	}
	gid := store.GroupID(raw)
	grp, err := mls.Create(c.cfg, mls.GroupID(raw), mls.Credential{Identity: c.id.Certificate.Marshal()}, c.signer, nil)
	if err != nil {
		return "", fmt.Errorf("failed to create group: %w", err)
	}
	// The id is 128 fresh random bits, so "already exists" is our own
	// registration answered twice (a request repeated after a lost answer,
	// on this connection or a new one, or a frame the network duplicated):
	// the group is registered.
	err = c.onConn(ctx, conn, func(conn *wireclient.Client) error {
		if err := conn.CreateGroup(ctx, raw); err != nil && wireCode(err) != wire.ErrorCode_ALREADY_EXISTS {
			return fmt.Errorf("failed to register group: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	conv := &store.Conversation{
		ID: store.ChatIDFromGroup(gid), Kind: kind, Group: gid, Name: name,
		Members: []identity.AccountID{c.account()}, CreatedAt: c.now(),
	}
	state, err := grp.Marshal()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutGroupState(gid, state, c.now()); err != nil {
			return err
		}
		if kind == store.ChatGroup {
			if err := tx.SetSetting(adminsKey(conv.ID), string(c.account())); err != nil {
				return err
			}
		}
		return tx.PutConversation(conv)
	})
	if err == nil {
		c.groups[gid] = grp
	}
	c.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("failed to store new group: %w", err)
	}
	if len(accounts) > 0 {
		err := c.onConn(ctx, conn, func(conn *wireclient.Client) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.addAccountsLocked(ctx, conn, conv, accounts)
		})
		if err != nil {
			return conv.ID, err
		}
	}
	if kind == store.ChatGroup && len(accounts) == 0 {
		// With members, the add commit sent it (commitChange).
		if err := c.queueGroupInfo(ctx, conv.ID, name, []identity.AccountID{c.account()}); err != nil {
			return conv.ID, err
		}
	}
	return conv.ID, nil
}

// onConn runs fn over conn, or (conn nil) over this client's connection
// with withConn's retries.
func (c *Client) onConn(ctx context.Context, conn *wireclient.Client, fn func(conn *wireclient.Client) error) error {
	if conn != nil {
		return fn(conn)
	}
	return c.withConn(ctx, fn)
}

// claimKeyPackages takes one KeyPackage per device of account and checks
// each against its certificate.
func (c *Client) claimKeyPackages(ctx context.Context, conn *wireclient.Client, account identity.AccountID) ([]*mls.KeyPackage, error) {
	r, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimKeyPackages{ClaimKeyPackages: &wire.ClaimKeyPackages{AccountId: string(account)}}})
	if err != nil {
		if wireCode(err) == wire.ErrorCode_NOT_FOUND {
			return nil, fmt.Errorf("%w: %s", ErrUnknownAccount, account)
		}
		return nil, fmt.Errorf("failed to claim key packages: %w", err)
	}
	var out []*mls.KeyPackage
	for _, ck := range r.GetClaimKeyPackages().GetKeyPackages() {
		kp, err := mls.ParseKeyPackage(c.cfg, ck.GetData())
		if err != nil {
			c.log.Warn("ignoring a bad key package", "account", account, "err", err)
			continue
		}
		cert, err := c.certOf(kp.Credential())
		if err != nil || cert.AccountID() != account || string(ck.GetDeviceId()) != string(devBytes(cert.DeviceID())) {
			c.log.Warn("ignoring a key package that does not match its device", "account", account)
			continue
		}
		if string(cert.SignatureKey()) != string(kp.SignaturePublicKey()) {
			continue
		}
		out = append(out, kp)
	}
	return out, nil
}

// addAccountsLocked adds every device of the accounts to conv. Caller
// holds c.mu.
func (c *Client) addAccountsLocked(ctx context.Context, conn *wireclient.Client, conv *store.Conversation, accounts []identity.AccountID) error {
	var kps []*mls.KeyPackage
	for _, a := range accounts {
		got, err := c.claimKeyPackages(ctx, conn, a)
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return fmt.Errorf("%w: %s", ErrNoKeyPackages, a)
		}
		kps = append(kps, got...)
	}
	return c.commitChange(ctx, conn, conv.Group, kps, nil)
}

// commitChange commits adding the key packages' devices (those not yet in
// the group) and removing the members remove selects, catching up and
// rebuilding when another commit wins the epoch. Caller holds c.mu.
func (c *Client) commitChange(ctx context.Context, conn *wireclient.Client, g store.GroupID, kps []*mls.KeyPackage, remove func(*memberID) bool) error {
	for range maxCommitAttempts {
		if err := c.fetchAll(ctx, conn); err != nil {
			return err
		}
		grp, err := c.group(ctx, g)
		if err != nil {
			return err
		}
		conv, err := c.st.ConversationByGroup(ctx, g)
		if err != nil || grp == nil || !grp.Active() || conv.Left {
			return ErrNotMember
		}
		grp.ClearPendingCommit()
		members, err := c.groupMembers(grp)
		if err != nil {
			return err
		}
		// A device whose leaf this commit removes (a stale leaf of a
		// recovered device) may be added again with a new KeyPackage.
		present := make(map[identity.DeviceID]bool)
		for leaf, m := range members {
			if leaf == grp.Index() || remove == nil || !remove(m) {
				present[m.Device] = true
			}
		}
		var adds []*mls.KeyPackage
		var addRefs []*wire.DeviceRef
		var addedAccounts []identity.AccountID
		for _, kp := range kps {
			cert, err := c.certOf(kp.Credential())
			if err != nil || present[cert.DeviceID()] {
				continue
			}
			present[cert.DeviceID()] = true
			adds = append(adds, kp)
			addRefs = append(addRefs, &wire.DeviceRef{AccountId: string(cert.AccountID()), DeviceId: devBytes(cert.DeviceID())})
			if !slices.Contains(addedAccounts, cert.AccountID()) {
				addedAccounts = append(addedAccounts, cert.AccountID())
			}
		}
		var removes []mls.LeafIndex
		var removeRefs []*wire.DeviceRef
		var removedAccounts []identity.AccountID
		for leaf, m := range members {
			if leaf == grp.Index() || remove == nil || !remove(m) {
				continue
			}
			removes = append(removes, leaf)
			removeRefs = append(removeRefs, &wire.DeviceRef{AccountId: string(m.Account), DeviceId: devBytes(m.Device)})
			if !slices.Contains(removedAccounts, m.Account) {
				removedAccounts = append(removedAccounts, m.Account)
			}
		}
		if len(adds) == 0 && len(removes) == 0 {
			return nil
		}
		sentAt := time.UnixMilli(c.now().UnixMilli())
		res, err := grp.Commit(&mls.CommitOptions{Add: adds, Remove: removes, InlineTree: true, AuthenticatedData: commitAAD(sentAt)})
		if err != nil {
			return fmt.Errorf("failed to build commit: %w", err)
		}
		if err := c.saveGroup(ctx, grp); err != nil {
			grp.ClearPendingCommit()
			return err
		}
		id, err := store.NewMessageID(c.opts.Rand)
		if err != nil {
			return err
		}
		req := &wire.Commit{GroupId: []byte(g), Epoch: grp.Epoch(), MessageId: id[:], Commit: res.Commit, Added: addRefs, Removed: removeRefs}
		for i, kp := range adds {
			req.Welcomes = append(req.Welcomes, &wire.WelcomeFor{Device: addRefs[i], Data: marshalWelcome(conv.Kind, kp.Ref(), res.Welcome)})
		}
		resp, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_Commit{Commit: req}})
		if err != nil && wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED {
			// The connection failed: the server may have accepted the
			// commit. Keep it pending; the next catch-up merges it if it
			// is in the log, and the next attempt discards it if not.
			return err
		}
		if err != nil {
			grp.ClearPendingCommit()
			if serr := c.saveGroup(ctx, grp); serr != nil {
				return serr
			}
			if wireCode(err) == wire.ErrorCode_EPOCH_CONFLICT {
				c.log.Debug("commit lost the epoch race; catching up and rebuilding", "chat", conv.ID)
				continue
			}
			return fmt.Errorf("failed to send commit: %w", err)
		}
		if err := grp.MergePendingCommit(); err != nil {
			return fmt.Errorf("failed to enter the new epoch: %w", err)
		}
		after, err := c.groupMembers(grp)
		if err != nil {
			return err
		}
		oldAccounts := accountsOf(members)
		conv.Members = accountsOf(after)
		text := membershipText(oldAccounts, conv.Members, append(addedAccounts, removedAccounts...))
		m := &store.Message{
			ID: id, Chat: conv.ID, Seq: resp.GetCommit().GetSeq(), Kind: store.KindSystem, Body: []byte(text),
			Sender: c.account(), SenderDevice: c.id.Device, Mine: true, SentAt: sentAt, ReceivedAt: c.now(), State: store.StateSent,
		}
		state, err := grp.Marshal()
		if err != nil {
			return err
		}
		// Our own commit may add an ousted admin back (keepOusted).
		kept, keptChanged := c.oustedKept(ctx, nil, conv)
		// ... and removes leaving members (keepLeaving).
		stillLeaving, leavingChanged := c.leavingKept(ctx, nil, conv)
		err = c.st.Update(ctx, func(tx *store.Tx) error {
			if err := tx.PutGroupState(g, state, c.now()); err != nil {
				return err
			}
			if err := tx.PutConversation(conv); err != nil {
				return err
			}
			if keptChanged {
				if err := putAccountList(tx, oustedKey(conv.ID), kept); err != nil {
					return err
				}
			}
			if leavingChanged {
				if err := putAccountList(tx, leavingKey(conv.ID), stillLeaving); err != nil {
					return err
				}
			}
			_, err := tx.InsertMessage(m)
			return err
		})
		if err != nil {
			c.forgetGroups()
			return fmt.Errorf("failed to store the new epoch: %w", err)
		}
		c.emit(Event{Kind: EventMembership, Chat: conv.ID, Sender: c.account(), Text: text, Message: m})
		if len(adds) > 0 && conv.Kind == store.ChatGroup {
			// The new devices (new members, or a member's newly linked
			// device) learn the name and the admins from the group info.
			if admins := c.admins(ctx, conv.ID); len(admins) > 0 {
				if err := c.queueGroupInfo(ctx, conv.ID, conv.Name, admins); err != nil {
					c.log.Warn("failed to queue the group info for new members", "chat", conv.ID, "err", err)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("failed to commit: lost the epoch race %d times", maxCommitAttempts)
}

// processWelcome joins a group from a Welcome in the mailbox.
func (c *Client) processWelcome(ctx context.Context, a *applySet, d *wire.Delivery) error {
	kind, ref, welcome, err := unmarshalWelcome(d.GetData())
	if err != nil {
		c.log.Warn("ignoring a malformed welcome", "err", err)
		return nil
	}
	priv, err := c.st.KeyPackage(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		c.log.Warn("welcome for an unknown key package")
		return nil
	}
	if err != nil {
		return err
	}
	bundle, err := mls.UnmarshalKeyPackageBundle(priv)
	if err != nil {
		return fmt.Errorf("failed to decode key package: %w", err)
	}
	grp, err := mls.Join(c.cfg, welcome, bundle, nil)
	if err != nil {
		c.undecryptable.Add(1)
		c.log.Error("undecryptable welcome", "err", err)
		return nil
	}
	members, err := c.groupMembers(grp)
	if err != nil {
		c.log.Warn("refusing a group with an unverifiable member", "err", err)
		return nil
	}
	g := store.GroupID(grp.ID())
	// A Welcome to an epoch past the state we hold means we were removed
	// (perhaps while offline, so we never saw it) and added again: the
	// new state replaces the stale one; the chat and its history stay.
	if old, err := c.groupIn(ctx, a, g); err != nil {
		return err
	} else if old != nil && old.Active() && old.Epoch() >= grp.Epoch() {
		return nil
	}
	accounts := accountsOf(members)
	if kind == store.ChatSelf && (len(accounts) != 1 || accounts[0] != c.account()) {
		c.log.Warn("refusing a self group with foreign members")
		return nil
	}
	conv, err := c.conversationOf(ctx, a, g)
	if err != nil {
		return err
	}
	if conv == nil {
		conv = &store.Conversation{ID: store.ChatIDFromGroup(g), Kind: kind, Group: g, CreatedAt: c.now()}
		a.convs[conv.ID] = conv
	} else if conv.Kind == store.ChatGroup {
		// The name and admins held from before this join (restored from
		// the archive, or kept from an earlier membership) may be out of
		// date: the group info the adding member sends replaces them.
		c.setUnconfirmed(a, conv.ID, true)
	}
	conv.Members, conv.Left = accounts, false
	c.groups[g] = grp
	a.dirty[g] = grp
	// The group log starts after the commit that added us.
	if last, _, _ := c.st.Setting(ctx, lastResortKey); last != fmt.Sprintf("%x", []byte(ref)) {
		a.b.UsedKeyPackages = append(a.b.UsedKeyPackages, ref)
	}
	c.tasks.refill = true
	epoch := grp.Epoch()
	c.joined[g] = epoch
	key := joinedKey(conv.ID)
	a.ops = append(a.ops, func(tx *store.Tx) error { return tx.SetSetting(key, strconv.FormatUint(epoch, 10)) })
	a.evs = append(a.evs, Event{Kind: EventMembership, Chat: conv.ID, Text: "joined"})
	return nil
}

// adminsKey is the setting holding a group's admin list.
func adminsKey(chat ChatID) string { return store.ChatAdminsSetting(chat) }

// infoUnconfirmedKey is the setting marking a group whose name and admins
// this device held before it joined the group (see processWelcome).
func infoUnconfirmedKey(chat ChatID) string { return "chat." + string(chat) + ".info-unconfirmed" }

// setUnconfirmed marks or clears, in a and in the store when a commits,
// that chat's name and admins await the group's word (infoUnconfirmedKey).
func (c *Client) setUnconfirmed(a *applySet, chat ChatID, on bool) {
	a.unconfirmed[chat] = on
	key := infoUnconfirmedKey(chat)
	a.ops = append(a.ops, func(tx *store.Tx) error {
		if on {
			return tx.SetSetting(key, store.On)
		}
		return tx.DeleteSetting(key)
	})
}

// unconfirmedIn reports whether chat's name and admins await the group's
// word, as of the batch a.
func (c *Client) unconfirmedIn(ctx context.Context, a *applySet, chat ChatID) bool {
	if on, ok := a.unconfirmed[chat]; ok {
		return on
	}
	on, err := c.st.SettingOn(ctx, infoUnconfirmedKey(chat))
	return err == nil && on
}

// adminsIn returns a group's admins as of the batch a (which may have
// changed them), or as stored if a is nil.
func (c *Client) adminsIn(ctx context.Context, a *applySet, chat ChatID) []identity.AccountID {
	if a != nil {
		if admins, ok := a.admins[chat]; ok {
			return admins
		}
	}
	return c.admins(ctx, chat)
}

// isAdminIn is isAdmin as of the batch a.
func (c *Client) isAdminIn(ctx context.Context, a *applySet, conv *store.Conversation, account identity.AccountID) bool {
	return c.isAdminAmong(ctx, a, conv, conv.Members, account)
}

// isAdminAmong is isAdminIn for a group whose members are members (those
// before a commit, when judging its committer).
func (c *Client) isAdminAmong(ctx context.Context, a *applySet, conv *store.Conversation, members []identity.AccountID, account identity.AccountID) bool {
	if conv.Kind != store.ChatGroup {
		return true
	}
	return slices.Contains(effectiveAdmins(c.adminsIn(ctx, a, conv.ID), members, c.oustedIn(ctx, a, conv.ID)), account)
}

// effectiveAdmins returns who administers a group with the recorded admin
// list and members: the recorded admins that are still members, or, when
// none is (the last admin left or was removed) and the group has members,
// every member: a group without an admin administers itself. Recorded admins a non-admin removed (ousted, see
// enforce) count as still in the group until they are added back, so
// removing the last admin gains a non-admin nothing. An unknown list
// (empty: a new member before the group info arrives) makes nobody an
// admin. Every member derives the same answer from the group log.
func effectiveAdmins(recorded, members, ousted []identity.AccountID) []identity.AccountID {
	if len(recorded) == 0 {
		return nil
	}
	var out []identity.AccountID
	for _, id := range recorded {
		if slices.Contains(members, id) || slices.Contains(ousted, id) {
			out = append(out, id)
		}
	}
	if len(out) > 0 {
		return out
	}
	return slices.Clone(members)
}

// oustedKey is the setting holding a group's ousted admins: recorded
// admins a non-admin removed, which the remaining members add back.
func oustedKey(chat ChatID) string { return "chat." + string(chat) + ".admins-ousted" }

// oustedIn returns a group's ousted admins as of the batch a (which may
// have changed them), or as stored if a is nil.
func (c *Client) oustedIn(ctx context.Context, a *applySet, chat ChatID) []identity.AccountID {
	var batch map[ChatID][]identity.AccountID
	if a != nil {
		batch = a.ousted
	}
	return c.accountListIn(ctx, batch, chat, oustedKey(chat))
}

// setOusted records, in a and in the store when a commits, a group's
// ousted admins.
func (c *Client) setOusted(a *applySet, chat ChatID, ousted []identity.AccountID) {
	setAccountList(a, a.ousted, chat, oustedKey(chat), ousted)
}

// keepOusted drops from a group's ousted admins those that are members
// again (added back, or back by a rejoin), as of the batch a.
func (c *Client) keepOusted(ctx context.Context, a *applySet, conv *store.Conversation) {
	if kept, changed := c.oustedKept(ctx, a, conv); changed {
		c.setOusted(a, conv.ID, kept)
	}
}

// oustedKept returns a group's ousted admins without the members of conv,
// and whether that dropped any.
func (c *Client) oustedKept(ctx context.Context, a *applySet, conv *store.Conversation) ([]identity.AccountID, bool) {
	ousted := c.oustedIn(ctx, a, conv.ID)
	kept := slices.DeleteFunc(slices.Clone(ousted), func(id identity.AccountID) bool { return slices.Contains(conv.Members, id) })
	return kept, len(kept) != len(ousted)
}

// admins returns a group's admins (empty if unknown).
func (c *Client) admins(ctx context.Context, chat ChatID) []identity.AccountID {
	v, ok, err := c.st.Setting(ctx, adminsKey(chat))
	if err != nil || !ok || v == "" {
		return nil
	}
	return parseAccounts(v)
}

// parseAccounts parses a comma-separated account list (joinAccounts),
// skipping malformed entries.
func parseAccounts(v string) []identity.AccountID {
	var out []identity.AccountID
	for _, s := range strings.Split(v, ",") {
		if id, err := identity.ParseAccountID(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// isAdmin reports whether account may add and remove members of conv,
// rename it and set its admins and timer. Everyone in a 1:1 chat may; in
// a group, its effective admins (effectiveAdmins) may.
func (c *Client) isAdmin(ctx context.Context, conv *store.Conversation, account identity.AccountID) bool {
	return c.isAdminIn(ctx, nil, conv, account)
}

// Per-chat account lists kept as settings (ousted admins, leaving
// members) are read through the batch being applied, which may have
// changed them, and written with it.

// accountListIn returns chat's account list under key: batch's value if
// it holds one (batch may be nil), else the stored one.
func (c *Client) accountListIn(ctx context.Context, batch map[ChatID][]identity.AccountID, chat ChatID, key string) []identity.AccountID {
	if l, ok := batch[chat]; ok {
		return l
	}
	v, ok, err := c.st.Setting(ctx, key)
	if err != nil || !ok || v == "" {
		return nil
	}
	return parseAccounts(v)
}

// setAccountList records ids as chat's account list under key, in batch
// (one of a's maps) and in the store when a commits.
func setAccountList(a *applySet, batch map[ChatID][]identity.AccountID, chat ChatID, key string, ids []identity.AccountID) {
	batch[chat] = ids
	a.ops = append(a.ops, func(tx *store.Tx) error { return putAccountList(tx, key, ids) })
}

// putAccountList stores ids under key, or deletes the setting if there
// are none.
func putAccountList(tx *store.Tx, key string, ids []identity.AccountID) error {
	if len(ids) == 0 {
		return tx.DeleteSetting(key)
	}
	return tx.SetSetting(key, joinAccounts(ids))
}

func joinAccounts(ids []identity.AccountID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ",")
}

// applyGroupInfo takes a group's name and admins from an effective admin
// (isAdmin; or, for a member who has no admin list yet, or only one from
// before it joined, from the first member who sends it). Earlier changes of the same batch
// count: an admin appointed a moment ago may rename the group.
func (c *Client) applyGroupInfo(ctx context.Context, a *applySet, conv *store.Conversation, who *memberID, seq uint64, ct *content.Content) {
	if conv.Kind != store.ChatGroup {
		return
	}
	cur := c.adminsIn(ctx, a, conv.ID)
	unconfirmed := c.unconfirmedIn(ctx, a, conv.ID)
	var admins []identity.AccountID
	for _, s := range ct.Admins {
		if id, err := identity.ParseAccountID(s); err == nil && !slices.Contains(admins, id) {
			admins = append(admins, id)
		}
	}
	if len(admins) == 0 {
		return
	}
	if len(cur) > 0 && ct.Name == conv.Name && slices.Equal(admins, cur) {
		// Any member re-sends the current info after adding a device
		// (commitChange): nothing changes, nothing to report.
		if unconfirmed {
			c.setUnconfirmed(a, conv.ID, false)
		}
		return
	}
	if unconfirmed {
		// What this device held from before it joined is no measure of
		// the group's current info: learn it, as a new member does.
		cur = nil
		c.setUnconfirmed(a, conv.ID, false)
	}
	if len(cur) > 0 && !c.isAdminIn(ctx, a, conv, who.Account) {
		c.policy(a, conv, who.Account, "a non-admin tried to rename the group or change its admins")
		return
	}
	note := ""
	if len(cur) > 0 {
		// A change, not a new device learning the group's info.
		note = groupInfoNote(conv.Name, ct.Name, cur, admins)
	}
	conv.Name = ct.Name
	a.admins[conv.ID] = admins
	key, val := adminsKey(conv.ID), joinAccounts(admins)
	a.ops = append(a.ops, func(tx *store.Tx) error { return tx.SetSetting(key, val) })
	if note == "" {
		a.evs = append(a.evs, Event{Kind: EventMembership, Chat: conv.ID, Sender: who.Account, Text: "group info: " + ct.Name})
		return
	}
	c.addNote(a, conv, who, seq, ct, note)
}

// addNote stores the system message for a group info or timer change
// received from who, dated by the content's own time and under its id, as
// the sending device stored it (queueControlNote).
func (c *Client) addNote(a *applySet, conv *store.Conversation, who *memberID, seq uint64, ct *content.Content, note string) {
	m := &store.Message{
		ID: store.MessageID(ct.ID), Chat: conv.ID, Seq: seq, Sender: who.Account, SenderDevice: who.Device, Mine: who.Account == c.account(),
		Kind: store.KindSystem, Body: []byte(note), SentAt: time.UnixMilli(int64(ct.SentAtMilli)), ReceivedAt: c.now(), State: store.StateReceived,
	}
	if m.Mine {
		m.State = store.StateSent
	}
	a.addMessage(m, Event{Kind: EventMembership, Chat: conv.ID, Sender: who.Account, Text: note})
}

// enforce checks a commit against the group's rules, judging the committer
// by the members before the commit (old): removing the last admin does
// not make the remover one. Receivers cannot undo an accepted commit
// without splitting the group, so a broken rule is reported
// (EventPolicy), and an admin device removes accounts a non-admin added
// and adds back accounts a non-admin removed. A recorded admin a non-admin
// removed is ousted (see effectiveAdmins) until it is back; when no other
// admin is left to add it back, every remaining member does, and adding it
// back is no breach whoever commits it.
func (c *Client) enforce(ctx context.Context, a *applySet, conv *store.Conversation, committer identity.AccountID, old, added, removed []identity.AccountID) {
	admin := c.isAdminAmong(ctx, a, conv, old, committer)
	for _, acct := range added {
		if slices.Contains(old, acct) {
			continue // a new device of a member
		}
		if conv.Kind == store.ChatGroup && slices.Contains(c.oustedIn(ctx, a, conv.ID), acct) {
			continue // an ousted admin back (keepOusted clears it)
		}
		if conv.Kind == store.ChatDirect || !admin {
			c.policy(a, conv, committer, "a member who may not add people added "+string(acct))
			if conv.Kind == store.ChatGroup && c.isAdminIn(ctx, a, conv, c.account()) {
				c.tasks.removeAccount(conv.Group, acct)
			}
		}
	}
	for _, acct := range removed {
		if admin || acct == committer || slices.Contains(conv.Members, acct) || c.isLeaving(ctx, a, conv, acct) {
			continue
		}
		c.policy(a, conv, committer, "a member who may not remove people removed "+string(acct))
		if conv.Kind != store.ChatGroup {
			continue
		}
		recorded := c.adminsIn(ctx, a, conv.ID)
		ousted := c.oustedIn(ctx, a, conv.ID)
		if slices.Contains(recorded, acct) && !slices.Contains(ousted, acct) {
			c.setOusted(a, conv.ID, append(slices.Clone(ousted), acct))
		}
		adminLeft := slices.ContainsFunc(recorded, func(id identity.AccountID) bool { return slices.Contains(conv.Members, id) })
		if c.isAdminIn(ctx, a, conv, c.account()) || (slices.Contains(recorded, acct) && !adminLeft) {
			c.tasks.readdAccount(conv.Group, acct)
		}
	}
}
