package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// Rejoining after a recovery (docs/protocol.md, "Rejoining after a
// recovery").
//
// A device restored from the recovery words when no other device of its
// account survives holds the account's conversations (from the archive)
// but is in none of their MLS groups, and no device of its own account is
// left to add it. It asks the other members instead: a rejoin request,
// signed by the account key, names the requesting device (its certificate)
// and the groups, and the account's devices that are gone. A member device
// that verifies the signature, finds the requesting account among the
// group's members and the device in the directory commits an Add of the
// device (with a KeyPackage the device signed) and a Remove of the gone
// devices. Every member accepts that commit by the rule it already applies
// to a member's newly linked device: a device certified by the key of an
// account that is already a member. When several members react, the
// first commit wins the epoch and the others find nothing left to do.

// ErrNotRejoined means the chat came back from the archive but this device
// is not in its group yet: a member adds it once it sees the rejoin
// request ([Recover] sends them).
var ErrNotRejoined = errors.New("client: this device is not back in the chat yet; it was restored from the archive and waits for a member to add it")

// domainRejoin labels the account-key signature of a rejoin request.
const domainRejoin identity.Domain = "rejoin-request"

// rejoinMagic starts a rejoin request in a mailbox item (kind OTHER).
const rejoinMagic = "parley/rejoin/v1\x00"

// Bounds of a rejoin request.
const (
	rejoinMaxGroups = 1024
	rejoinMaxGone   = 64
	// rejoinMaxAge is how old (or how far ahead) a request may be: a
	// replay of an old request cannot put back a device the account has
	// revoked since.
	rejoinMaxAge = 24 * time.Hour
	// rejoinMaxQueued bounds the requests waiting for runTasks.
	rejoinMaxQueued = 64
)

// rejoinRequest is a verified rejoin request.
type rejoinRequest struct {
	cert   *identity.DeviceCertificate
	at     time.Time
	groups []store.GroupID
	gone   []identity.DeviceID
	// tries counts failed attempts to answer it.
	tries int
}

// account is the requesting account.
func (r *rejoinRequest) account() identity.AccountID { return r.cert.AccountID() }

// rejoinTBS is the signed part of a request.
func rejoinTBS(cert []byte, at int64, groups []store.GroupID, gone []identity.DeviceID) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes([]byte(rejoinMagic))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(cert) })
	b.AddUint64(uint64(at))
	b.AddUint16(uint16(len(groups)))
	for _, g := range groups {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(g)) })
	}
	b.AddUint8(uint8(len(gone)))
	for _, d := range gone {
		b.AddBytes(d[:])
	}
	return b.Bytes()
}

// marshalRejoin builds and signs a request with the account key.
func marshalRejoin(key *identity.AccountKey, cert *identity.DeviceCertificate, at time.Time, groups []store.GroupID, gone []identity.DeviceID) ([]byte, error) {
	if len(groups) == 0 || len(groups) > rejoinMaxGroups || len(gone) > rejoinMaxGone {
		return nil, fmt.Errorf("%w: rejoin request with %d groups and %d gone devices", store.ErrInvalid, len(groups), len(gone))
	}
	tbs, err := rejoinTBS(cert.Marshal(), at.Unix(), groups, gone)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(domainRejoin, tbs)
	if err != nil {
		return nil, fmt.Errorf("failed to sign rejoin request: %w", err)
	}
	var b cryptobyte.Builder
	b.AddBytes(tbs)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	return b.Bytes()
}

// parseRejoin decodes and verifies a request strictly: the certificate
// verifies, the account key of the certificate signed the request, it is
// at most rejoinMaxAge from now, and the requesting device is not among
// the gone ones.
func parseRejoin(data []byte, now time.Time) (*rejoinRequest, error) {
	s := cryptobyte.String(data)
	var magic []byte
	var certRaw, sig cryptobyte.String
	var at uint64
	var ng uint16
	if !s.ReadBytes(&magic, len(rejoinMagic)) || string(magic) != rejoinMagic || !s.ReadUint16LengthPrefixed(&certRaw) ||
		!s.ReadUint64(&at) || !s.ReadUint16(&ng) {
		return nil, fmt.Errorf("%w: rejoin request truncated", errEnvelope)
	}
	if ng == 0 || ng > rejoinMaxGroups {
		return nil, fmt.Errorf("%w: rejoin request with %d groups", errEnvelope, ng)
	}
	r := &rejoinRequest{}
	for range ng {
		var g cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&g) || !store.GroupID(g).Valid() {
			return nil, fmt.Errorf("%w: bad group in a rejoin request", errEnvelope)
		}
		if !slices.Contains(r.groups, store.GroupID(g)) {
			r.groups = append(r.groups, store.GroupID(g))
		}
	}
	var nd uint8
	if !s.ReadUint8(&nd) || nd > rejoinMaxGone {
		return nil, fmt.Errorf("%w: bad gone devices in a rejoin request", errEnvelope)
	}
	for range nd {
		var raw []byte
		if !s.ReadBytes(&raw, identity.DeviceIDSize) {
			return nil, fmt.Errorf("%w: rejoin request truncated", errEnvelope)
		}
		d, err := identity.DeviceIDFromBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errEnvelope, err)
		}
		r.gone = append(r.gone, d)
	}
	tbs := data[:len(data)-len(s)]
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, fmt.Errorf("%w: rejoin request truncated", errEnvelope)
	}
	cert, err := identity.ParseDeviceCertificate(certRaw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMember, err)
	}
	if err := cert.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMember, err)
	}
	if err := identity.VerifyAccountSignature(cert.AccountKey(), domainRejoin, tbs, sig); err != nil {
		return nil, fmt.Errorf("%w: rejoin request signature: %v", errBadMember, err)
	}
	r.cert, r.at = cert, time.Unix(int64(at), 0)
	if int64(at) < 0 || r.at.Before(now.Add(-rejoinMaxAge)) || r.at.After(now.Add(rejoinMaxAge)) {
		return nil, fmt.Errorf("%w: rejoin request from %s", errEnvelope, r.at.UTC().Format(time.RFC3339))
	}
	if slices.Contains(r.gone, cert.DeviceID()) {
		return nil, fmt.Errorf("%w: a rejoin request names its own device as gone", errEnvelope)
	}
	return r, nil
}

// processRejoin takes a rejoin request from the mailbox and queues it for
// runTasks; requests that do not verify are dropped. Caller holds c.mu.
func (c *Client) processRejoin(d *wire.Delivery) {
	data := d.GetData()
	if !bytes.HasPrefix(data, []byte(rejoinMagic)) {
		return
	}
	r, err := parseRejoin(data, c.now())
	if err != nil {
		c.log.Warn("ignoring a rejoin request", "err", err)
		return
	}
	if r.account() == c.account() {
		return // our own devices are reconciled from the directory
	}
	if len(c.tasks.rejoins) >= rejoinMaxQueued {
		c.log.Warn("too many rejoin requests queued; dropping one", "account", r.account())
		return
	}
	c.tasks.rejoins = append(c.tasks.rejoins, r)
}

// runRejoins answers the queued rejoin requests: in every listed group
// this device is in and the requesting account is a member of, it adds
// the requesting device and removes the account's gone devices (and an
// older leaf of the same device, from an earlier recovery). A request
// whose device the directory does not list is dropped. Caller holds c.mu.
func (c *Client) runRejoins(ctx context.Context, conn *wireclient.Client) error {
	for len(c.tasks.rejoins) > 0 {
		r := c.tasks.rejoins[0]
		if err := c.answerRejoin(ctx, conn, r); err != nil {
			r.tries++
			if r.tries < 3 && wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED && !errors.Is(err, ErrNoKeyPackages) &&
				!errors.Is(err, ErrUnknownAccount) && !errors.Is(err, errBadMember) {
				return err // perhaps the connection failed: try again on the next sync
			}
			c.log.Warn("failed to answer a rejoin request", "account", r.account(), "err", err)
		}
		c.tasks.rejoins = c.tasks.rejoins[1:]
	}
	return nil
}

func (c *Client) answerRejoin(ctx context.Context, conn *wireclient.Client, r *rejoinRequest) error {
	acct := r.account()
	dev := r.cert.DeviceID()
	stale := func(m *memberID) bool {
		if m.Account != acct {
			return false
		}
		if slices.Contains(r.gone, m.Device) {
			return true
		}
		// The same device id from an earlier recovery, under another
		// certificate that is not newer: its keys are lost with the
		// wiped profile.
		return m.Device == dev && !m.cert.Created().After(r.cert.Created()) &&
			!bytes.Equal(m.cert.Marshal(), r.cert.Marshal())
	}
	// First what this device's own state says, so a request that concerns
	// none of its groups costs no look-up.
	type work struct {
		g    store.GroupID
		chat ChatID
		add  bool
	}
	var todo []work
	for _, g := range r.groups {
		conv, err := c.st.ConversationByGroup(ctx, g)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		grp, err := c.group(ctx, g)
		if err != nil {
			return err
		}
		if conv.Left || grp == nil || !grp.Active() || conv.Kind == store.ChatSelf {
			continue
		}
		members, err := c.groupMembers(grp)
		if err != nil {
			return err
		}
		if !slices.Contains(accountsOf(members), acct) {
			c.log.Warn("ignoring a rejoin request for a group the account is not in", "chat", conv.ID, "account", acct)
			continue
		}
		add, drop := true, false
		for _, m := range members {
			if stale(m) {
				drop = true
			} else if m.Device == dev {
				add = false
			}
		}
		if add || drop {
			todo = append(todo, work{g: g, chat: conv.ID, add: add})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	listed, err := c.resolveOn(ctx, conn, string(acct))
	if err != nil {
		return err
	}
	found := false
	for _, cert := range listed.Devices {
		found = found || cert.DeviceID() == dev && bytes.Equal(cert.SignatureKey(), r.cert.SignatureKey())
	}
	if !found {
		return fmt.Errorf("%w: the directory does not list the requesting device", errBadMember)
	}
	for _, w := range todo {
		var kps []*mls.KeyPackage
		if w.add {
			all, err := c.claimKeyPackages(ctx, conn, acct)
			if err != nil {
				return err
			}
			for _, kp := range all {
				// The exact certificate: a stale KeyPackage of the same
				// device id from an earlier recovery has an older one.
				if bytes.Equal(kp.Credential().Identity, r.cert.Marshal()) {
					kps = append(kps, kp)
					break
				}
			}
			if len(kps) == 0 {
				return fmt.Errorf("%w: the requesting device", ErrNoKeyPackages)
			}
		}
		if err := c.commitChange(ctx, conn, w.g, kps, stale); err != nil && !errors.Is(err, ErrNotMember) {
			return err
		}
		c.log.Info("answered a rejoin request", "chat", w.chat, "account", acct)
	}
	return nil
}

// RejoinResult says what [Client.Rejoin] did.
type RejoinResult struct {
	// Chats is the number of conversations asked for.
	Chats int
	// Devices is the number of member devices the requests went to.
	Devices int
}

// Rejoin asks the other members of every conversation this device holds
// without being in its group (conversations restored from the archive)
// to add this device back, naming gone as the account's devices to remove
// in the same commit. Members react when they sync; the device joins by
// the Welcome their commit sends. Self groups are skipped: only a device
// of the account could add this one, and there is none.
//
// While some conversation is still waiting, the requests are sent again
// every 12 hours (a member offline longer than a request's 24-hour window
// drops it), for at most 30 days.
func (c *Client) Rejoin(ctx context.Context, gone []identity.DeviceID) (*RejoinResult, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.rejoinOn(ctx, conn, gone)
	if err != nil || res.Chats == 0 {
		return res, err
	}
	now := strconv.FormatInt(c.now().Unix(), 10)
	ids := make([]string, len(gone))
	for i, d := range gone {
		ids[i] = hex.EncodeToString(d[:])
	}
	err = c.st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.SetSetting(settingRejoinSince, now); err != nil {
			return err
		}
		if err := tx.SetSetting(settingRejoinSent, now); err != nil {
			return err
		}
		return tx.SetSetting(settingRejoinGone, strings.Join(ids, ","))
	})
	return res, err
}

// Settings of a recovered device whose rejoin requests are not all answered.
const (
	settingRejoinSince = "rejoin.since" // unix seconds of the first requests
	settingRejoinSent  = "rejoin.sent"  // unix seconds of the last ones
	settingRejoinGone  = "rejoin.gone"  // the gone devices, hex, comma-separated
)

// Resending rejoin requests.
const (
	rejoinResendAfter = 12 * time.Hour
	rejoinGiveUp      = 30 * 24 * time.Hour
)

// resendRejoins sends the rejoin requests again when they are due (see
// [Client.Rejoin]) and forgets them once every conversation is rejoined or
// after rejoinGiveUp. Caller holds c.mu.
func (c *Client) resendRejoins(ctx context.Context, conn *wireclient.Client) error {
	sent, ok, err := c.st.Setting(ctx, settingRejoinSent)
	if err != nil || !ok {
		return err
	}
	since, _, err := c.st.Setting(ctx, settingRejoinSince)
	if err != nil {
		return err
	}
	unix := func(s string) time.Time {
		n, _ := strconv.ParseInt(s, 10, 64)
		return time.Unix(n, 0)
	}
	now := c.now()
	forget := func() error {
		return c.st.Update(ctx, func(tx *store.Tx) error {
			for _, name := range []string{settingRejoinSince, settingRejoinSent, settingRejoinGone} {
				if err := tx.DeleteSetting(name); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if now.Sub(unix(since)) > rejoinGiveUp {
		return forget()
	}
	if now.Sub(unix(sent)) < rejoinResendAfter {
		return nil
	}
	v, _, err := c.st.Setting(ctx, settingRejoinGone)
	if err != nil {
		return err
	}
	var gone []identity.DeviceID
	for _, s := range strings.Split(v, ",") {
		if raw, err := hex.DecodeString(s); err == nil {
			if d, err := identity.DeviceIDFromBytes(raw); err == nil {
				gone = append(gone, d)
			}
		}
	}
	res, err := c.rejoinOn(ctx, conn, gone)
	if err != nil {
		return err
	}
	if res.Chats == 0 {
		return forget()
	}
	c.log.Info("asked again to be added back", "chats", res.Chats, "devices", res.Devices)
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSetting(settingRejoinSent, strconv.FormatInt(now.Unix(), 10)) })
}

// rejoinOn sends the rejoin requests of Rejoin over conn.
func (c *Client) rejoinOn(ctx context.Context, conn *wireclient.Client, gone []identity.DeviceID) (*RejoinResult, error) {
	convs, err := c.st.Conversations(ctx)
	if err != nil {
		return nil, err
	}
	byAccount := map[identity.AccountID][]store.GroupID{}
	res := &RejoinResult{}
	for _, conv := range convs {
		if conv.Left || conv.Kind == store.ChatSelf {
			continue
		}
		if _, err := c.st.GroupState(ctx, conv.Group); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		res.Chats++
		for _, a := range conv.Members {
			if a != c.account() {
				byAccount[a] = append(byAccount[a], conv.Group)
			}
		}
	}
	for acct, groups := range byAccount {
		listed, err := c.resolveOn(ctx, conn, string(acct))
		if err != nil {
			c.log.Warn("cannot ask a member to add this device back", "account", acct, "err", err)
			continue
		}
		for len(groups) > 0 {
			part := groups[:min(len(groups), rejoinMaxGroups)]
			groups = groups[len(part):]
			data, err := marshalRejoin(c.id.AccountKey, c.id.Certificate, c.now(), part, gone)
			if err != nil {
				return nil, err
			}
			var items []*wire.MailboxItem
			for _, cert := range listed.Devices {
				id, err := store.NewMessageID(c.opts.Rand)
				if err != nil {
					return nil, err
				}
				d := cert.DeviceID()
				items = append(items, &wire.MailboxItem{To: &wire.DeviceRef{AccountId: string(acct), DeviceId: d[:]},
					MessageId: id[:], Kind: wire.MessageKind_MESSAGE_KIND_OTHER, Data: data})
			}
			if len(items) == 0 {
				continue
			}
			if _, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: items}}}); err != nil {
				return nil, fmt.Errorf("failed to send rejoin requests: %w", err)
			}
			res.Devices += len(items)
		}
	}
	return res, nil
}

// afterRecover makes a recovered device the account's only one and brings
// it back into its conversations: every other device of the account is
// revoked (the words are used when they are lost; a surviving device can
// be linked again), a new self group is made, the other members are asked
// to add this device back (Rejoin), and the archive key is rotated so the
// lost devices cannot read what is archived from now on.
func (c *Client) afterRecover(ctx context.Context) error {
	// Each step runs with withConn's retries: the profile exists, so a
	// recovery failed by a cut connection cannot simply be run again.
	var me *Account
	err := c.withConn(ctx, func(conn *wireclient.Client) (err error) {
		me, err = c.resolveOn(ctx, conn, string(c.account()))
		return err
	})
	if err != nil {
		return err
	}
	if c.id.Username == "" && me.Username != "" {
		// The username is the server directory's (its claim is signed by
		// the account key, checked by resolveOn): restore it so whoami
		// and the address show it again.
		c.id.Username = me.Username
		c.id.Address = me.Username + "@" + c.host
		if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.PutIdentity(c.id) }); err != nil {
			return fmt.Errorf("failed to store identity: %w", err)
		}
	}
	// Every other device is lost, except the recovery device: it sleeps
	// on, for the next recovery.
	info, err := c.recoveryInfo(ctx)
	if err != nil {
		return err
	}
	var gone []identity.DeviceID
	for _, cert := range me.Devices {
		d := cert.DeviceID()
		if d == c.id.Device || (info != nil && d == info.Device) {
			continue
		}
		if err := c.revokeOnServer(ctx, d); err != nil {
			return err
		}
		if len(gone) < rejoinMaxGone {
			gone = append(gone, d)
		}
	}
	// Claiming and uploading key packages again is safe: the drain stops
	// at this profile's own.
	if err := c.withConn(ctx, func(conn *wireclient.Client) error { return c.drainStaleKeyPackages(ctx, conn) }); err != nil {
		return err
	}
	if _, err := c.SelfChat(ctx); errors.Is(err, ErrUnknownChat) {
		// No connection given: the group's registration is retried (an
		// answer lost after it was stored reads as done).
		if _, err := c.createGroupOn(ctx, nil, store.ChatSelf, "", nil); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := c.Rejoin(ctx, gone); err != nil {
		return err
	}
	if len(gone) > 0 {
		c.afterRevoke(ctx)
	}
	return nil
}

// leaveRestored leaves a chat restored from the archive that this device
// is not back in: there is no group to tell, so it is only marked as left
// (and no longer asked for). A Welcome from a member who answers an
// earlier request brings it back; it can be left again then.
func (c *Client) leaveRestored(ctx context.Context, chat ChatID) error {
	err := c.st.Update(ctx, func(tx *store.Tx) error {
		conv, err := tx.Conversation(chat)
		if err != nil {
			return err
		}
		conv.Left = true
		return tx.PutConversation(conv)
	})
	if err != nil {
		return err
	}
	c.emit(Event{Kind: EventMembership, Chat: chat, Sender: c.account(), Text: "left"})
	return nil
}

// drainStaleKeyPackages claims away the one-time KeyPackages of this
// device id that an earlier profile restored from the same words left on
// the server: their private keys are lost with that profile, and a member
// adding this device with one would send a Welcome nobody can open. The
// server hands out the oldest first, so it stops at the first one this
// profile made, and tops the stock up again. Call it once the account's
// other devices are revoked (a claim takes one of each device's).
func (c *Client) drainStaleKeyPackages(ctx context.Context, conn *wireclient.Client) error {
	for range c.opts.KeyPackageStock + 8 {
		r, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimKeyPackages{ClaimKeyPackages: &wire.ClaimKeyPackages{AccountId: string(c.account())}}})
		if err != nil {
			return fmt.Errorf("failed to clear stale key packages: %w", err)
		}
		var mine *wire.ClaimedKeyPackage
		for _, ck := range r.GetClaimKeyPackages().GetKeyPackages() {
			if bytes.Equal(ck.GetDeviceId(), c.id.Device[:]) {
				mine = ck
			}
		}
		if mine == nil || mine.GetLastResort() {
			break
		}
		kp, err := mls.ParseKeyPackage(c.cfg, mine.GetData())
		if err != nil {
			continue // not ours to use anyway
		}
		if _, err := c.st.KeyPackage(ctx, store.KeyPackageRef(kp.Ref())); err == nil {
			break // this profile's own: the stale ones are gone
		}
	}
	return c.refillKeyPackages(ctx, conn, false)
}

// revokeOnServer revokes one of this account's devices on the server,
// signed by the account key. Like [Client.RevokeDevice], a revocation
// whose connection breaks is sent again, signed anew, on a new connection
// (the server accepts repeating one): a recovery cut off here otherwise
// failed with the lost devices it had not reached still served, and its
// profile, already created, is not recovered into again.
func (c *Client) revokeOnServer(ctx context.Context, dev identity.DeviceID) error {
	err := c.withConn(ctx, func(conn *wireclient.Client) error { return c.sendRevocation(ctx, conn, dev) })
	if err != nil && wireCode(err) != wire.ErrorCode_NOT_FOUND {
		return fmt.Errorf("failed to revoke a lost device: %w", err)
	}
	return nil
}
