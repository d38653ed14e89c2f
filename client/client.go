package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// Re-exported store types, so front ends need not import client/store.
type (
	// ChatID names a conversation.
	ChatID = store.ChatID
	// MessageID is a message's unique 16-byte id.
	MessageID = store.MessageID
	// Message is one stored message.
	Message = store.Message
	// Conversation is one stored conversation.
	Conversation = store.Conversation
)

// Sentinel errors callers branch on.
var (
	// ErrNotMember means this device is not (or no longer) in the chat.
	ErrNotMember = errors.New("client: not a member of this chat")
	// ErrNotAdmin means the action needs a group admin.
	ErrNotAdmin = errors.New("client: only a group admin may do this")
	// ErrUnknownChat means no chat has that id.
	ErrUnknownChat = errors.New("client: unknown chat")
	// ErrBadAddress means an address is not ACCOUNTID@server or
	// username@server.
	ErrBadAddress = errors.New("client: malformed address")
	// ErrOwnAddress means an address names this account, where another
	// account is needed (a 1:1 chat). It wraps ErrBadAddress.
	ErrOwnAddress = fmt.Errorf("%w: that is this account's own address", ErrBadAddress)
	// ErrUnknownAccount means the server knows no such account or username.
	ErrUnknownAccount = errors.New("client: no such account")
	// ErrNoKeyPackages means an account has no device that can be added.
	ErrNoKeyPackages = errors.New("client: the account has no device that can be added")
	// ErrOffline means the server could not be reached.
	ErrOffline = errors.New("client: server unreachable")
	// ErrClosed means the client has been closed.
	ErrClosed = errors.New("client: closed")
	// ErrBadLinkCode means a device-link code is malformed.
	ErrBadLinkCode = errors.New("client: malformed link code")
)

// Options configure [Init], [Open] and [NewLink]. The zero value is usable.
type Options struct {
	// Passphrase protects the profile key (nil: a 0600 key file).
	Passphrase []byte
	// Username is claimed on the server by Init (optional).
	Username string
	// Invite is the server's invite token, if it is invite-only.
	Invite string
	// Rand is the randomness source (default crypto/rand).
	Rand io.Reader
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives diagnostics, never message content (default discard).
	Logger *slog.Logger
	// KeyPackageStock is how many one-time KeyPackages to keep on the
	// server (default 20); the stock is refilled below half.
	KeyPackageStock int
	// MaxBackoff caps the reconnect and retry backoff (default 30 s).
	MaxBackoff time.Duration
	// LinkData names the account data ([Client.ShareAccountData]) that an
	// approving device puts in the sealed link bundle for a new device
	// (nil: the history archive's keyring and recovery info).
	LinkData []string
}

func (o *Options) fill() {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.KeyPackageStock <= 0 {
		o.KeyPackageStock = 20
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.LinkData == nil {
		o.LinkData = []string{AccountDataArchiveKeyring, AccountDataRecoveryInfo}
	}
}

// Me describes this profile.
type Me struct {
	// Address is ACCOUNTID@server, or username@server when a username was
	// claimed.
	Address   string
	AccountID identity.AccountID
	DeviceID  identity.DeviceID
	ServerURL string
	Username  string
}

// Client is an open profile. Its methods are safe for concurrent use.
type Client struct {
	st     *store.Store
	id     *store.Identity
	signer *mls.Signer
	devKey ed25519.PrivateKey
	cfg    *mls.Config
	opts   Options
	log    *slog.Logger
	host   string // server host for addresses

	// mu serialises everything that touches MLS group state and the sync
	// position. Lock order: mu, then connMu, then subsMu.
	mu      sync.Mutex
	groups  map[store.GroupID]*mls.Group
	cursors map[store.Stream]uint64
	joined  map[store.GroupID]uint64 // epoch joined at, see joinedEpoch
	tasks   taskQueue
	// watched holds the outcome of sends whose caller waits for them
	// (Leave), by message id; flushBatch fills it in.
	watched map[MessageID]*sendOutcome

	connMu     sync.Mutex
	conn       *wireclient.Client
	serverName string
	state      ConnState

	subsMu  sync.Mutex
	subs    map[int]chan Event
	nextSub int

	pushMu sync.Mutex
	pushed []*wire.Delivery // pushed commits, see keepPushedCommit

	members sync.Map // string(credential) -> *memberID, verified

	undecryptable atomic.Int64
	replays       atomic.Int64 // replayed ciphertexts refused, see Replays
	// fresh is set by each new connection: the next sync checks the
	// KeyPackage stock and this account's devices in every group.
	fresh     atomic.Bool
	kick      chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
}

// Init creates a new account in the empty folder dir, registers it and its
// first device on the server at serverURL (ws:// or wss:// URL of /v1/ws,
// or an http(s) base URL), uploads KeyPackages and creates the self group.
func Init(ctx context.Context, dir, serverURL string, opts Options) (*Client, error) {
	opts.fill()
	wsURL, err := normalizeServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	account, err := identity.GenerateAccountKey(opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("failed to generate account key: %w", err)
	}
	dev, devPriv, cert, err := newDevice(account, opts)
	if err != nil {
		return nil, err
	}
	conn, hello, err := dialServer(ctx, wsURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.Register(ctx, account.Public(), cert, opts.Invite); err != nil {
		return nil, fmt.Errorf("failed to register: %w", err)
	}
	st, err := store.Create(ctx, dir, store.Options{Passphrase: opts.Passphrase, Rand: opts.Rand})
	if err != nil {
		return nil, fmt.Errorf("failed to create profile: %w", err)
	}
	host := serverHost(hello.GetServerName(), wsURL)
	sid := &store.Identity{
		AccountKey: account, Device: dev, DeviceSigner: store.DeviceSignerKey(devPriv.Seed()), Certificate: cert,
		ServerURL: wsURL, Address: string(account.ID()) + "@" + host, CreatedAt: opts.Now(),
	}
	if err := st.Update(ctx, func(tx *store.Tx) error { return tx.PutIdentity(sid) }); err != nil {
		st.Close()
		return nil, fmt.Errorf("failed to store identity: %w", err)
	}
	c, err := newClient(st, sid, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	c.serverName = hello.GetServerName()
	if err := c.authenticate(ctx, conn); err != nil {
		c.Close()
		return nil, err
	}
	if opts.Username != "" {
		if err := c.claimUsername(ctx, conn, opts.Username); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.refillKeyPackages(ctx, conn, true); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.createGroupOn(ctx, conn, store.ChatSelf, "", nil); err != nil {
		c.Close()
		return nil, err
	}
	// Cloud history from the first message: the archive key and the
	// recovery key are made now. A server without archive storage leaves
	// the account without one (set up later on demand).
	if err := c.startArchive(ctx, conn); err != nil {
		c.log.Warn("cloud history not set up at account creation", "err", err)
	}
	return c, nil
}

// Open opens the existing profile in dir. It does not connect; call
// [Client.Run] or [Client.Sync].
func Open(ctx context.Context, dir string, opts Options) (*Client, error) {
	opts.fill()
	st, err := store.Open(ctx, dir, store.Options{Passphrase: opts.Passphrase, Rand: opts.Rand})
	if err != nil {
		return nil, fmt.Errorf("failed to open profile: %w", err)
	}
	sid, err := st.Identity(ctx)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("failed to read identity: %w", err)
	}
	c, err := newClient(st, sid, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	return c, nil
}

// newDevice makes a device id, signature key and certificate.
func newDevice(account *identity.AccountKey, opts Options) (identity.DeviceID, ed25519.PrivateKey, *identity.DeviceCertificate, error) {
	dev, err := identity.NewDeviceID(opts.Rand)
	if err != nil {
		return dev, nil, nil, err
	}
	pub, priv, err := ed25519.GenerateKey(opts.Rand)
	if err != nil {
		return dev, nil, nil, fmt.Errorf("failed to generate device key: %w", err)
	}
	cert, err := identity.IssueDeviceCertificate(account, dev, pub, uint16(mls.X25519AES128GCM), opts.Now())
	if err != nil {
		return dev, nil, nil, fmt.Errorf("failed to issue device certificate: %w", err)
	}
	return dev, priv, cert, nil
}

func newClient(st *store.Store, sid *store.Identity, opts Options) (*Client, error) {
	if len(sid.DeviceSigner) != ed25519.SeedSize {
		return nil, fmt.Errorf("failed to load device key: %d bytes", len(sid.DeviceSigner))
	}
	devKey := ed25519.NewKeyFromSeed(sid.DeviceSigner)
	c := &Client{
		st: st, id: sid, devKey: devKey, opts: opts, log: opts.Logger, host: addressHost(sid.Address, sid.ServerURL),
		groups: make(map[store.GroupID]*mls.Group), cursors: make(map[store.Stream]uint64), joined: make(map[store.GroupID]uint64),
		subs: make(map[int]chan Event), kick: make(chan struct{}, 1), closed: make(chan struct{}),
	}
	c.cfg = &mls.Config{
		Suite: mls.X25519AES128GCM, Rand: opts.Rand, Now: opts.Now,
		CredentialValidator: c.validateCredential,
	}
	signer, err := mls.NewSigner(mls.X25519AES128GCM, devKey.Seed())
	if err != nil {
		return nil, fmt.Errorf("failed to load device signer: %w", err)
	}
	c.signer = signer
	return c, nil
}

// Close disconnects and closes the profile. Pending outbox items stay
// queued for the next time the profile is opened.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		c.connMu.Lock()
		if c.conn != nil {
			c.conn.CloseNow()
			c.conn = nil
		}
		c.connMu.Unlock()
		c.mu.Lock()
		err = c.st.Close()
		c.mu.Unlock()
		c.subsMu.Lock()
		for k, ch := range c.subs {
			close(ch)
			delete(c.subs, k)
		}
		c.subsMu.Unlock()
	})
	return err
}

// Me returns this profile's identity.
func (c *Client) Me() Me {
	return Me{
		Address: c.id.Address, AccountID: c.id.AccountKey.ID(), DeviceID: c.id.Device,
		ServerURL: c.id.ServerURL, Username: c.id.Username,
	}
}

// Store gives read access to the local store (history, conversations).
// Front ends must not write to it.
func (c *Client) Store() *store.Store { return c.st }

// Undecryptable returns how many messages this client could not decrypt
// since it was opened. It is a bug if this is ever non-zero.
func (c *Client) Undecryptable() int64 { return c.undecryptable.Load() }

// Replays returns how many replayed messages (a ciphertext whose message
// key was already used, which only a misbehaving server or network sends
// again) this client refused since it was opened. They are dropped as
// duplicates and not counted by [Client.Undecryptable].
func (c *Client) Replays() int64 { return c.replays.Load() }

func (c *Client) account() identity.AccountID { return c.id.AccountKey.ID() }

func (c *Client) now() time.Time { return c.opts.Now() }

// normalizeServerURL accepts ws(s)://host/v1/ws or http(s)://host and
// returns the WebSocket URL.
func normalizeServerURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: server URL %q", ErrBadAddress, s)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("%w: server URL %q must be ws, wss, http or https", ErrBadAddress, s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/ws"
	}
	return u.String(), nil
}

// serverHost is the host part of this server's addresses: the server's
// name, or the URL's host if it gave none.
func serverHost(serverName, wsURL string) string {
	if serverName != "" {
		return serverName
	}
	return hostOf(wsURL)
}

// addressHost returns the part of an address after its '@'.
func addressHost(address, wsURL string) string {
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		return address[i+1:]
	}
	return hostOf(wsURL)
}

func hostOf(wsURL string) string {
	u, err := url.Parse(wsURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// ParseChatID parses the text form of a chat id.
func ParseChatID(s string) (ChatID, error) { return store.ParseChatID(s) }

// ParseMessageID parses the text form (32 hex digits) of a message id.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: message id must be %d hex digits", store.ErrInvalid, 2*len(id))
	}
	copy(id[:], b)
	return id, nil
}
