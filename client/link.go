package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// Device linking.
//
// The new device cannot receive anything before it belongs to the account,
// so it registers a throwaway mailbox account first. Its link code carries
// the server URL, an ephemeral X25519 HPKE public key, the throwaway
// mailbox, and the new device's id and signature key. An existing device
// that approves the code issues the new device's certificate, registers it
// on the server (AddDevice), and sends the account key HPKE-sealed to the
// throwaway mailbox. The new device opens it, connects as itself, uploads
// KeyPackages and signals the approver, which adds it to every group of
// the account by commit. Both show [LinkRequest.Comparison], a short code
// derived from the whole link code, to catch a swapped code.

var (
	linkKEM  = hpke.DHKEM(ecdh.X25519())
	linkKDF  = hpke.HKDFSHA256()
	linkAEAD = hpke.ChaCha20Poly1305()
)

const (
	linkVersion   = 1
	linkInfo      = "parley/link/v1"
	linkBundleTag = 1 // mailbox payload: the sealed account bundle
	linkReadyTag  = 2 // mailbox payload: the new device is ready to be added
	// linkRefusedTag is the mailbox payload (this byte alone) telling the
	// new device that the link was refused.
	linkRefusedTag = 3
)

// ErrLinkRefused is returned by [PendingLink.Wait] when the link was
// refused on the approving device (see [Client.RefuseLink]).
var ErrLinkRefused = errors.New("client: the link was refused on the approving device")

var linkB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// LinkRequest is a parsed link code.
type LinkRequest struct {
	ServerURL string
	hpkePub   []byte
	mailbox   identity.AccountID
	mailDev   identity.DeviceID
	device    identity.DeviceID
	devPub    ed25519.PublicKey
	raw       []byte
}

// Comparison is the short code both devices show; the user checks that
// they match before approving.
func (r *LinkRequest) Comparison() string {
	h := sha256.Sum256(append([]byte("parley/link-sas/v1\x00"), r.raw...))
	return fmt.Sprintf("%03d %03d", binary.BigEndian.Uint32(h[:4])%1000, binary.BigEndian.Uint32(h[4:8])%1000)
}

// Code is the text form of the request.
func (r *LinkRequest) Code() string { return linkB32.EncodeToString(r.raw) }

func (r *LinkRequest) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(linkVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.ServerURL)) })
	b.AddBytes(r.hpkePub)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.mailbox)) })
	b.AddBytes(r.mailDev[:])
	b.AddBytes(r.device[:])
	b.AddBytes(r.devPub)
	return b.BytesOrPanic()
}

// ParseLinkCode parses the code a new device shows.
func ParseLinkCode(code string) (*LinkRequest, error) {
	raw, err := linkB32.DecodeString(strings.ToLower(strings.Join(strings.Fields(code), "")))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkCode, err)
	}
	s := cryptobyte.String(raw)
	var version uint8
	var url, mailbox cryptobyte.String
	r := &LinkRequest{raw: raw}
	var pub, mdev, dev, dpub []byte
	if !s.ReadUint8(&version) || version != linkVersion || !s.ReadUint8LengthPrefixed(&url) ||
		!s.ReadBytes(&pub, 32) || !s.ReadUint8LengthPrefixed(&mailbox) || !s.ReadBytes(&mdev, identity.DeviceIDSize) ||
		!s.ReadBytes(&dev, identity.DeviceIDSize) || !s.ReadBytes(&dpub, ed25519.PublicKeySize) || !s.Empty() {
		return nil, ErrBadLinkCode
	}
	r.ServerURL, r.hpkePub, r.devPub = string(url), pub, ed25519.PublicKey(dpub)
	if r.mailbox, err = identity.ParseAccountID(string(mailbox)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkCode, err)
	}
	copy(r.mailDev[:], mdev)
	copy(r.device[:], dev)
	if _, err := linkKEM.NewPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkCode, err)
	}
	return r, nil
}

// PendingLink is a new device waiting for approval. It survives dropped
// connections: [PendingLink.Wait] reconnects to the throwaway mailbox with
// backoff and keeps waiting, and once the account bundle has arrived it
// keeps trying to announce the new device; a Wait that ended (for example
// on ctx) can be called again and resumes where the last one stopped.
type PendingLink struct {
	req     *LinkRequest
	dir     string
	opts    Options
	hpkeKey hpke.PrivateKey
	devKey  ed25519.PrivateKey
	temp    *identity.AccountKey
	mailKey ed25519.PrivateKey
	// serverName is the server's name, signed in the mailbox deletion.
	serverName string

	mu     sync.Mutex
	conn   *wireclient.Client // the mailbox connection; nil once dropped
	closed bool

	// Progress of Wait, kept so that a later Wait resumes: the new
	// device's client once the bundle was opened and the profile created,
	// where to signal readiness, and whether that signal went through.
	linked      *Client
	approver    identity.AccountID
	approverDev identity.DeviceID
	readyID     store.MessageID
	announced   bool
	handedOver  bool
}

// NewLink starts linking a new device: it prepares the profile folder dir
// (which must not hold a profile), registers a throwaway mailbox on the
// server and returns the request whose Code and Comparison to show. Call
// [PendingLink.Wait] to finish.
func NewLink(ctx context.Context, dir, serverURL string, opts Options) (*PendingLink, error) {
	opts.fill()
	wsURL, err := normalizeServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	// Before the code is shown: a profile already in dir would only be
	// found once another device had approved the link.
	if err := store.CheckFree(dir); err != nil {
		return nil, err
	}
	hk, err := linkKEM.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("failed to make link key: %w", err)
	}
	temp, err := identity.GenerateAccountKey(opts.Rand)
	if err != nil {
		return nil, err
	}
	mailDev, mailKey, mailCert, err := newDevice(temp, opts)
	if err != nil {
		return nil, err
	}
	dev, err := identity.NewDeviceID(opts.Rand)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(opts.Rand)
	if err != nil {
		return nil, err
	}
	conn, hello, err := dialServer(ctx, wsURL)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Register(ctx, temp.Public(), mailCert, opts.Invite); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("failed to register link mailbox: %w", err)
	}
	if err := conn.Authenticate(ctx, temp.ID(), mailDev, mailKey); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("failed to open link mailbox: %w", err)
	}
	req := &LinkRequest{ServerURL: wsURL, hpkePub: hk.PublicKey().Bytes(), mailbox: temp.ID(), mailDev: mailDev, device: dev, devPub: pub}
	req.raw = req.marshal()
	return &PendingLink{
		req: req, dir: dir, opts: opts, hpkeKey: hk, devKey: priv, temp: temp, mailKey: mailKey,
		conn: conn, serverName: hello.GetServerName(),
	}, nil
}

// Request returns the link request (Code, Comparison).
func (p *PendingLink) Request() *LinkRequest { return p.req }

// Close abandons the link: it drops the mailbox connection and, unless
// Wait has returned it, closes the new device's client.
func (p *PendingLink) Close() {
	p.mu.Lock()
	p.closed = true
	conn := p.conn
	p.conn = nil
	var orphan *Client
	if p.linked != nil && !p.handedOver {
		orphan = p.linked
	}
	p.mu.Unlock()
	if conn != nil {
		conn.CloseNow()
	}
	if orphan != nil {
		orphan.Close()
	}
}

// Wait waits until an existing device approves the link, then creates the
// profile and returns the new device's client. The device is added to the
// account's conversations by the approving device; run or sync the client
// to receive them. A lost connection is retried with backoff (capped by
// Options.MaxBackoff) until ctx ends; the account bundle, delivered at
// least once, is used once.
func (p *PendingLink) Wait(ctx context.Context) (*Client, error) {
	backoff := 100 * time.Millisecond
	refused := 0
	for {
		err := p.step(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrLinkRefused) {
			p.deleteMailbox(ctx)
			return nil, err
		}
		if !errors.Is(err, ErrOffline) {
			// A protocol error can be an artefact of a bad network (the
			// answer to a duplicated request overtaking the first one):
			// try again, a few times.
			if wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED {
				return nil, err
			}
			if refused++; refused > maxLinkRefusals {
				return nil, fmt.Errorf("%w (refused %d times)", err, refused)
			}
		}
		p.opts.Logger.Info("link: connection lost or request refused, retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff/2 + time.Duration(mrand.Int64N(int64(backoff/2)+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, p.opts.MaxBackoff)
	}
	p.deleteMailbox(ctx)
	p.mu.Lock()
	p.handedOver = true
	p.mu.Unlock()
	p.Close()
	return p.linked, nil
}

// maxLinkRefusals bounds how often linking tries again after the server
// refused a request.
const maxLinkRefusals = 8

// step takes the link as far as the current connections allow. Errors of
// a lost connection wrap ErrOffline.
func (p *PendingLink) step(ctx context.Context) error {
	if p.linked == nil {
		sealed, err := p.awaitBundle(ctx)
		if err != nil {
			return err
		}
		if err := p.finish(ctx, sealed); err != nil {
			return err
		}
	}
	if !p.announced {
		if err := p.announce(ctx); err != nil {
			return err
		}
		p.announced = true
	}
	return nil
}

// mailbox returns the mailbox connection, dialling and authenticating a
// new one if the last one dropped.
func (p *PendingLink) mailbox(ctx context.Context) (*wireclient.Client, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if p.conn != nil {
		select {
		case <-p.conn.Done():
			p.conn = nil
		default:
			conn := p.conn
			p.mu.Unlock()
			return conn, nil
		}
	}
	p.mu.Unlock()
	conn, _, err := dialServer(ctx, p.req.ServerURL)
	if err != nil {
		return nil, err
	}
	if err := authenticate(ctx, conn, p.temp.ID(), p.req.mailDev, p.mailKey); err != nil {
		return nil, offline(conn, "failed to open link mailbox", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		conn.CloseNow()
		return nil, ErrClosed
	}
	p.conn = conn
	return conn, nil
}

// offline closes conn and wraps err: in ErrOffline if it means the
// connection is gone, so that the caller retries, as is otherwise.
func offline(conn *wireclient.Client, what string, err error) error {
	// Without an answer from the server (and before ctx ends), the
	// connection broke: the read loop may not have noticed yet.
	gone := isConnErr(conn, err) || (wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded))
	if gone || wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED {
		conn.CloseNow()
	}
	if gone {
		return fmt.Errorf("%w: %s: %v", ErrOffline, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// awaitBundle waits on the mailbox for the sealed account bundle. It does
// not acknowledge the bundle: if anything after fails, a reconnect finds
// it again.
func (p *PendingLink) awaitBundle(ctx context.Context) ([]byte, error) {
	conn, err := p.mailbox(ctx)
	if err != nil {
		return nil, err
	}
	for {
		resp, err := conn.Fetch(ctx, 16)
		if err != nil {
			return nil, offline(conn, "failed to wait for approval", err)
		}
		var refs []*wire.AckRef
		for _, d := range resp.GetDeliveries() {
			data := d.GetData()
			if d.GetKind() == wire.MessageKind_MESSAGE_KIND_LINK && len(data) >= 2 && data[0] == linkBundleTag {
				return data[1:], nil
			}
			if d.GetKind() == wire.MessageKind_MESSAGE_KIND_LINK && len(data) == 1 && data[0] == linkRefusedTag {
				return nil, ErrLinkRefused
			}
			refs = append(refs, wireclient.RefOf(d))
		}
		if len(refs) > 0 {
			_ = conn.Ack(ctx, refs, false)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-conn.Done():
			return nil, fmt.Errorf("%w: %v", ErrOffline, conn.Err())
		case <-conn.Events():
		case <-time.After(2 * time.Second):
		}
	}
}

// deleteMailbox deletes the throwaway mailbox account (best effort: the
// server expires it otherwise).
func (p *PendingLink) deleteMailbox(ctx context.Context) {
	conn, err := p.mailbox(ctx)
	if err != nil {
		return
	}
	now := p.opts.Now().Unix()
	sig, err := p.temp.Sign(wire.DomainAccountDelete, wire.DeleteAccountMessage(p.serverName, p.temp.ID(), now))
	if err != nil {
		return
	}
	_, _ = conn.Do(ctx, &wire.Request{Kind: &wire.Request_DeleteAccount{DeleteAccount: &wire.DeleteAccount{UnixTime: now, Signature: sig}}})
}

// finish opens the sealed bundle and creates the profile and the new
// device's client (p.linked). It needs no connection.
func (p *PendingLink) finish(ctx context.Context, sealed []byte) error {
	plain, err := hpke.Open(p.hpkeKey, linkKDF, linkAEAD, []byte(linkInfo), sealed)
	if err != nil {
		return fmt.Errorf("failed to open the link bundle: %w", err)
	}
	s := cryptobyte.String(plain)
	var keyBytes, certBytes, approver, extra cryptobyte.String
	var approverDev []byte
	if !s.ReadUint8LengthPrefixed(&keyBytes) || !s.ReadUint16LengthPrefixed(&certBytes) ||
		!s.ReadUint8LengthPrefixed(&approver) || !s.ReadBytes(&approverDev, identity.DeviceIDSize) ||
		!s.ReadUint24LengthPrefixed(&extra) || !s.Empty() {
		return fmt.Errorf("failed to open the link bundle: %w", errEnvelope)
	}
	data := make(map[string][]byte)
	for !extra.Empty() {
		var name, value cryptobyte.String
		if !extra.ReadUint8LengthPrefixed(&name) || !extra.ReadUint24LengthPrefixed(&value) ||
			!validAccountDataName(string(name)) || len(value) > MaxAccountData || len(data) >= 64 {
			return fmt.Errorf("failed to open the link bundle: %w", errEnvelope)
		}
		data[string(name)] = []byte(value)
	}
	account, err := identity.ParseAccountKey(keyBytes)
	if err != nil {
		return fmt.Errorf("failed to read the account key: %w", err)
	}
	cert, err := identity.ParseDeviceCertificate(certBytes)
	if err != nil || cert.Verify() != nil || cert.AccountID() != account.ID() || cert.DeviceID() != p.req.device ||
		!bytes.Equal(cert.SignatureKey(), p.devKey.Public().(ed25519.PublicKey)) {
		return fmt.Errorf("failed to link: the device certificate does not match this device")
	}
	readyID, err := store.NewMessageID(p.opts.Rand)
	if err != nil {
		return err
	}
	st, err := store.Create(ctx, p.dir, store.Options{Passphrase: p.opts.Passphrase, Rand: p.opts.Rand})
	if err != nil {
		return fmt.Errorf("failed to create profile: %w", err)
	}
	host := serverHost(p.serverName, p.req.ServerURL)
	sid := &store.Identity{
		AccountKey: account, Device: p.req.device, DeviceSigner: store.DeviceSignerKey(p.devKey.Seed()), Certificate: cert,
		ServerURL: p.req.ServerURL, Address: string(account.ID()) + "@" + host, CreatedAt: p.opts.Now(),
	}
	if err := st.Update(ctx, func(tx *store.Tx) error {
		for name, v := range data {
			if err := tx.SetSetting(accountDataKey(name), string(v)); err != nil {
				return err
			}
		}
		return tx.PutIdentity(sid)
	}); err != nil {
		st.Close()
		return err
	}
	c, err := newClient(st, sid, p.opts)
	if err != nil {
		st.Close()
		return err
	}
	p.approver = identity.AccountID(approver)
	copy(p.approverDev[:], approverDev)
	p.readyID = readyID
	p.mu.Lock()
	p.linked = c
	p.mu.Unlock()
	return nil
}

// announce connects as the new device, learns its username, uploads
// KeyPackages and signals the approving device that it can be added. It
// is safe to repeat: the KeyPackage refill counts what the server holds,
// and the signal keeps its message id, which the server de-duplicates.
func (p *PendingLink) announce(ctx context.Context) error {
	c := p.linked
	conn, err := c.connect(ctx)
	if err != nil {
		if errors.Is(err, ErrOffline) || !isConnErr(nil, err) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrOffline, err)
	}
	fail := func(what string, err error) error {
		if wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED && ctx.Err() == nil && !isConnErr(conn, err) {
			// A failed write can precede the reader noticing the
			// connection is gone: give it a moment.
			select {
			case <-conn.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		if isConnErr(conn, err) {
			c.dropIf(conn)
			return fmt.Errorf("%w: %s: %v", ErrOffline, what, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if c.id.Username == "" {
		acct, err := c.resolveOn(ctx, conn, string(c.account()))
		if err != nil && isConnErr(conn, err) {
			return fail("failed to look up the account", err)
		}
		if err == nil && acct.Username != "" {
			host := serverHost(p.serverName, p.req.ServerURL)
			c.id.Username = acct.Username
			c.id.Address = acct.Username + "@" + host
			_ = c.st.Update(ctx, func(tx *store.Tx) error { return tx.PutIdentity(c.id) })
		}
	}
	if err := c.refillKeyPackages(ctx, conn, true); err != nil {
		return fail("failed to upload key packages", err)
	}
	_, err = conn.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
		To: &wire.DeviceRef{AccountId: string(p.approver), DeviceId: p.approverDev[:]}, MessageId: p.readyID[:],
		Kind: wire.MessageKind_MESSAGE_KIND_LINK, Data: []byte{linkReadyTag},
	}}}}})
	if err != nil {
		return fail("failed to signal the approving device", err)
	}
	return nil
}

// ApproveLink approves a new device of this account: it certifies and
// registers the device, sends it the account key sealed to its link key,
// and, once the device is ready, adds it to every conversation by commit.
// It returns when the device is in the self group, or when ctx ends. Show
// req.Comparison() and let the user confirm it first. Lost connections
// are retried until ctx ends: registering the device again is accepted,
// and the sealed bundle keeps its message id, so the new device's mailbox
// holds it once.
func (c *Client) ApproveLink(ctx context.Context, req *LinkRequest) error {
	// The new device gets the history from before it existed from the
	// archive: upload what is not there yet.
	c.archiveAfterSync(ctx)
	cert, err := identity.IssueDeviceCertificate(c.id.AccountKey, req.device, req.devPub, uint16(mls.X25519AES128GCM), c.now())
	if err != nil {
		return fmt.Errorf("failed to certify the new device: %w", err)
	}
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.id.AccountKey.Bytes()) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(cert.Marshal()) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.account())) })
	b.AddBytes(c.id.Device[:])
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, name := range c.opts.LinkData {
			v, ok, err := c.AccountData(ctx, name)
			if err != nil || !ok {
				continue
			}
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(name)) })
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
		}
	})
	plain, err := b.Bytes()
	if err != nil {
		return err
	}
	pk, err := linkKEM.NewPublicKey(req.hpkePub)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadLinkCode, err)
	}
	sealed, err := hpke.Seal(pk, linkKDF, linkAEAD, []byte(linkInfo), plain)
	if err != nil {
		return fmt.Errorf("failed to seal the account key: %w", err)
	}
	id, err := store.NewMessageID(c.opts.Rand)
	if err != nil {
		return err
	}
	err = c.untilOnline(ctx, func(conn *wireclient.Client) error {
		_, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_AddDevice{AddDevice: &wire.AddDevice{DeviceCertificate: cert.Marshal()}}})
		if wireCode(err) == wire.ErrorCode_ALREADY_EXISTS {
			return nil // an earlier attempt registered it before its answer was lost
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to register the new device: %w", err)
	}
	err = c.untilOnline(ctx, func(conn *wireclient.Client) error {
		_, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
			To: &wire.DeviceRef{AccountId: string(req.mailbox), DeviceId: req.mailDev[:]}, MessageId: id[:],
			Kind: wire.MessageKind_MESSAGE_KIND_LINK, Data: append([]byte{linkBundleTag}, sealed...),
		}}}}})
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to send the account key: %w", err)
	}
	refused := 0
	for {
		err := c.untilOnline(ctx, func(conn *wireclient.Client) error { return c.syncConn(ctx, conn) })
		if err != nil {
			// As in Run, a refused request does not end the sync for
			// good (a duplicated frame's answer can overtake the first).
			if wireCode(err) == wire.ErrorCode_ERROR_CODE_UNSPECIFIED || refused >= maxLinkRefusals {
				return err
			}
			refused++
			c.log.Warn("link: sync failed, retrying", "err", err)
		}
		if c.selfHas(ctx, req.device) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to add the new device: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RefuseLink tells the new device of req that the link was refused (the
// comparison codes differ, or the user does not want it), so that its
// [PendingLink.Wait] ends at once with ErrLinkRefused rather than at its
// timeout. The signal carries nothing secret and nothing is registered.
// Whoever holds the link code could send it too; the code is the
// capability, as it is for approving.
func (c *Client) RefuseLink(ctx context.Context, req *LinkRequest) error {
	id, err := store.NewMessageID(c.opts.Rand)
	if err != nil {
		return err
	}
	err = c.untilOnline(ctx, func(conn *wireclient.Client) error {
		_, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
			To: &wire.DeviceRef{AccountId: string(req.mailbox), DeviceId: req.mailDev[:]}, MessageId: id[:],
			Kind: wire.MessageKind_MESSAGE_KIND_LINK, Data: []byte{linkRefusedTag},
		}}}}})
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to tell the new device: %w", err)
	}
	return nil
}

// untilOnline runs fn with a live connection and, while it fails because
// the connection is lost or the server is unreachable, reconnects with
// backoff (capped by Options.MaxBackoff) and runs it again until ctx ends.
// fn must be safe to repeat.
func (c *Client) untilOnline(ctx context.Context, fn func(conn *wireclient.Client) error) error {
	backoff := 50 * time.Millisecond
	for {
		out, err := c.tryOn(ctx, fn)
		if out == attemptFinal {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !c.sleep(ctx, reconnectWait(backoff, err)) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrClosed
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

// selfHas reports whether the self group holds the device.
func (c *Client) selfHas(ctx context.Context, dev identity.DeviceID) bool {
	self, err := c.SelfChat(ctx)
	if err != nil {
		return false
	}
	return c.groupHolds(ctx, self, dev)
}

// groupHolds reports whether this device's MLS group of chat holds the
// device dev.
func (c *Client) groupHolds(ctx context.Context, chat ChatID, dev identity.DeviceID) bool {
	conv, err := c.st.Conversation(ctx, chat)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	grp, err := c.group(ctx, conv.Group)
	if err != nil || grp == nil {
		return false
	}
	ms, err := c.groupMembers(grp)
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Device == dev {
			return true
		}
	}
	return false
}

// processLinkSignal handles a link message in our mailbox: a new device of
// ours is ready to be added. Anyone can send one; it only makes us compare
// our groups with the directory. Caller holds c.mu.
func (c *Client) processLinkSignal(d *wire.Delivery) {
	if bytes.Equal(d.GetData(), []byte{linkReadyTag}) {
		c.tasks.reconcile = true
	}
}
