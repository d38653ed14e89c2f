package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/blob/devtoken"
)

// Account data names of the history archive ([Client.ShareAccountData]).
// Put [AccountDataArchiveKeyring] in [Options.LinkData] so a linked device
// receives the keyring in the link bundle.
const (
	// AccountDataArchiveKeyring holds the account's archive keyring.
	AccountDataArchiveKeyring = "archive.keyring"
	// AccountDataRecoveryKey holds the recovery key once it was made, so
	// every device can re-seal the recovery bundle after a key rotation.
	AccountDataRecoveryKey = "archive.recovery"
)

// archiveTokenLifetime is how long a minted archive token is valid.
const archiveTokenLifetime = time.Hour

// ErrRecoveryShown means the recovery words were made and shown before;
// they are shown only once.
var ErrRecoveryShown = errors.New("client: the recovery words were already shown once")

// httpBaseURL turns the ws(s) URL of /v1/ws into the server's http(s) base.
func httpBaseURL(wsURL string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: server URL %q", ErrBadAddress, wsURL)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return "", fmt.Errorf("%w: server URL %q", ErrBadAddress, wsURL)
	}
	u.Path, u.RawQuery, u.Fragment = "", "", ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

// ArchiveToken mints a bearer token for the server's blob and archive
// storage, signed by this device's key.
func (c *Client) ArchiveToken(_ context.Context) (string, error) {
	tok, err := devtoken.Mint(c.devKey, devtoken.Claims{Account: c.account(), Device: c.id.Device,
		Expires: c.now().Add(archiveTokenLifetime)}, c.opts.Rand)
	if err != nil {
		return "", fmt.Errorf("failed to mint archive token: %w", err)
	}
	return string(tok), nil
}

// HistoryRemote returns the account's archive storage on its homeserver.
func (c *Client) HistoryRemote() (*ArchiveRemote, error) {
	base, err := httpBaseURL(c.id.ServerURL)
	if err != nil {
		return nil, err
	}
	return NewArchiveRemote(base, nil, c.ArchiveToken), nil
}

// ArchiveKeyring returns the account's archive keyring; the first call on
// an account without one creates it and shares it with the account's other
// devices.
func (c *Client) ArchiveKeyring(ctx context.Context) (*archive.Keyring, error) {
	v, ok, err := c.AccountData(ctx, AccountDataArchiveKeyring)
	if err != nil {
		return nil, err
	}
	if ok {
		ring, err := archive.ParseKeyring(v)
		if err != nil {
			return nil, fmt.Errorf("failed to read archive keyring: %w", err)
		}
		return ring, nil
	}
	ring, err := archive.NewKeyring(c.opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("failed to create archive keyring: %w", err)
	}
	// This device starts the archive: it has nothing to restore.
	if err := c.markRestored(ctx); err != nil {
		return nil, err
	}
	if err := c.shareKeyring(ctx, ring); err != nil {
		return nil, err
	}
	return ring, nil
}

func (c *Client) shareKeyring(ctx context.Context, ring *archive.Keyring) error {
	b, err := ring.MarshalBinary()
	if err != nil {
		return fmt.Errorf("failed to encode archive keyring: %w", err)
	}
	if err := c.ShareAccountData(ctx, AccountDataArchiveKeyring, b); err != nil {
		return fmt.Errorf("failed to share archive keyring: %w", err)
	}
	return nil
}

// historyArchiver builds an Archiver over the account's remote; devices
// are the account's current devices (for the one-uploader rule), or only
// this one when the list cannot be fetched.
func (c *Client) historyArchiver(ctx context.Context, ring *archive.Keyring) (*archive.Archiver, error) {
	remote, err := c.HistoryRemote()
	if err != nil {
		return nil, err
	}
	// The recovery device is asleep until the words are used: it is left
	// out of the upload rule (unless it is this device).
	var sleeper identity.DeviceID
	if rk, ok, err := c.recoveryKey(ctx); err == nil && ok {
		if d, _, err := recoveryDevice(rk); err == nil && d != c.id.Device {
			sleeper = d
		}
	}
	var ids []identity.DeviceID
	if devs, err := c.Devices(ctx); err == nil {
		for _, d := range devs {
			if d.ID != sleeper {
				ids = append(ids, d.ID)
			}
		}
	}
	a, err := archive.New(archive.Config{Store: c.st, Remote: remote, Keyring: ring, Device: c.id.Device,
		Devices: func() []identity.DeviceID { return ids }, Rand: c.opts.Rand, Now: c.opts.Now})
	if err != nil {
		return nil, fmt.Errorf("failed to set up history archive: %w", err)
	}
	return a, nil
}

// ArchiveHistory uploads this device's share of the history changed since
// the last call and compacts the archive so deleted and expired messages
// leave it.
func (c *Client) ArchiveHistory(ctx context.Context) (*archive.UploadResult, error) {
	mu := c.archiveLock()
	mu.Lock()
	defer mu.Unlock()
	ring, err := c.ArchiveKeyring(ctx)
	if err != nil {
		return nil, err
	}
	a, err := c.historyArchiver(ctx, ring)
	if err != nil {
		return nil, err
	}
	res, err := a.Upload(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to upload history: %w", err)
	}
	if _, err := a.Compact(ctx, c.now()); err != nil {
		return res, fmt.Errorf("failed to compact history: %w", err)
	}
	return res, nil
}

// RestoreHistory downloads the account's whole archive and merges it into
// this device's store; progress (may be nil) is called after each segment
// and batch. Messages that arrive meanwhile are kept.
func (c *Client) RestoreHistory(ctx context.Context, progress func(archive.Progress)) (*archive.RestoreResult, error) {
	v, ok, err := c.AccountData(ctx, AccountDataArchiveKeyring)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &archive.RestoreResult{}, nil
	}
	ring, err := archive.ParseKeyring(v)
	if err != nil {
		return nil, fmt.Errorf("failed to read archive keyring: %w", err)
	}
	remote, err := c.HistoryRemote()
	if err != nil {
		return nil, err
	}
	res, err := archive.Restore(ctx, c.st, remote, ring, archive.RestoreOptions{Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("failed to restore history: %w", err)
	}
	return res, nil
}

// RotateArchiveKey follows a device revocation: a new archive key
// generation, shared with the remaining devices, the key records re-wrapped
// under it, older generations dropped, and the recovery bundle re-sealed if
// there is one.
func (c *Client) RotateArchiveKey(ctx context.Context) error {
	ring, err := c.ArchiveKeyring(ctx)
	if err != nil {
		return err
	}
	gen, err := ring.Rotate(c.opts.Rand)
	if err != nil {
		return fmt.Errorf("failed to rotate archive key: %w", err)
	}
	if err := c.shareKeyring(ctx, ring); err != nil {
		return err
	}
	a, err := c.historyArchiver(ctx, ring)
	if err != nil {
		return err
	}
	if _, err := a.Rewrap(ctx); err != nil {
		return fmt.Errorf("failed to re-wrap history keys: %w", err)
	}
	ring.Prune(gen)
	if err := c.shareKeyring(ctx, ring); err != nil {
		return err
	}
	rk, ok, err := c.recoveryKey(ctx)
	if err != nil || !ok {
		return err
	}
	return c.sealRecovery(ctx, rk, ring)
}

func (c *Client) recoveryKey(ctx context.Context) (identity.RecoveryKey, bool, error) {
	var rk identity.RecoveryKey
	v, ok, err := c.AccountData(ctx, AccountDataRecoveryKey)
	if err != nil || !ok {
		return rk, false, err
	}
	if len(v) != len(rk) {
		return rk, false, fmt.Errorf("failed to read recovery key: %d bytes", len(v))
	}
	copy(rk[:], v)
	return rk, true, nil
}

func (c *Client) sealRecovery(ctx context.Context, rk identity.RecoveryKey, ring *archive.Keyring) error {
	sealed, err := archive.SealRecoveryBundle(rk, &archive.RecoveryBundle{AccountKey: c.id.AccountKey, Keyring: ring}, c.opts.Rand)
	if err != nil {
		return fmt.Errorf("failed to seal recovery bundle: %w", err)
	}
	remote, err := c.HistoryRemote()
	if err != nil {
		return err
	}
	return remote.PutRecoveryBundle(ctx, rk, sealed)
}

// RecoveryWords makes the account's recovery key, seals the recovery bundle
// (account key and archive keyring) under it, stores the bundle on the
// server and returns the key as words. It works once per account: the words
// are shown once, later calls give [ErrRecoveryShown].
func (c *Client) RecoveryWords(ctx context.Context) ([]string, error) {
	if _, ok, err := c.recoveryKey(ctx); err != nil {
		return nil, err
	} else if ok {
		return nil, ErrRecoveryShown
	}
	ring, err := c.ArchiveKeyring(ctx)
	if err != nil {
		return nil, err
	}
	rk, err := identity.NewRecoveryKey(c.opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("failed to make recovery key: %w", err)
	}
	if err := c.registerRecoveryDevice(ctx, rk); err != nil {
		return nil, err
	}
	if err := c.sealRecovery(ctx, rk, ring); err != nil {
		return nil, err
	}
	if err := c.ShareAccountData(ctx, AccountDataRecoveryKey, rk[:]); err != nil {
		return nil, fmt.Errorf("failed to share recovery key: %w", err)
	}
	return identity.RecoveryWords(rk), nil
}

// afterRevoke rotates the archive key once a revoked device is out of the
// account's groups, if the account has an archive. A failure is logged,
// not returned: the revocation itself is done.
func (c *Client) afterRevoke(ctx context.Context) {
	if _, ok, err := c.AccountData(ctx, AccountDataArchiveKeyring); err != nil || !ok {
		return
	}
	if err := c.RotateArchiveKey(ctx); err != nil {
		c.log.Warn("failed to rotate the history archive key after a revocation", "err", err)
	}
}
