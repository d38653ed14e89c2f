package client

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/blob/devtoken"
)

// Account data names of the history archive ([Client.ShareAccountData]).
// Put [AccountDataArchiveKeyring] in [Options.LinkData] so a linked device
// receives the keyring in the link bundle.
const (
	// AccountDataArchiveKeyring holds the account's archive keyring.
	AccountDataArchiveKeyring = "archive.keyring"
	// AccountDataRecoveryInfo holds the account's [archive.RecoveryInfo]:
	// the public key that re-seals the recovery bundle after a key
	// rotation, the bundle's slot and the recovery device. It cannot open
	// the bundle.
	AccountDataRecoveryInfo = "archive.recovery.info"
	// AccountDataRecoveryKey held the recovery key itself on every device
	// before [AccountDataRecoveryInfo] replaced it. A device that finds it
	// converts it to the info and erases it on every device.
	AccountDataRecoveryKey = "archive.recovery"
)

// archiveTokenLifetime is how long a minted archive token is valid.
const archiveTokenLifetime = time.Hour

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
	// Devices leaves out the recovery device while it sleeps: it uploads
	// nothing until the words are used.
	var ids []identity.DeviceID
	if devs, err := c.Devices(ctx); err == nil {
		for _, d := range devs {
			ids = append(ids, d.ID)
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
// leave it. An account without an archive gets one.
func (c *Client) ArchiveHistory(ctx context.Context) (*archive.UploadResult, error) {
	return c.archiveHistory(ctx, true)
}

// ArchivePending uploads this device's share of the history changed since
// the last upload, if anything changed, on an account that has an archive
// (every account made by [Init] on a server with archive storage). It
// compacts the archive only when the upload carried deletions. It returns
// nil, nil when there was nothing to do. [Client.Run] calls it a moment
// after activity settles; short-lived programs call it before they exit.
func (c *Client) ArchivePending(ctx context.Context) (*archive.UploadResult, error) {
	if !c.hasArchive(ctx) {
		return nil, nil
	}
	pending, err := c.historyPending(ctx)
	if err != nil || !pending {
		return nil, err
	}
	return c.archiveHistory(ctx, false)
}

// historyPending reports whether the store changed since the last upload:
// a message change past the archive cursor, or a conversation record
// (kind, name, members, admins, timer; a tombstone for a deleted chat) that
// differs from the one last uploaded. Conversation changes leave no entry
// in the store's change feed, so they are looked for separately.
func (c *Client) historyPending(ctx context.Context) (bool, error) {
	var cursor int64
	if v, ok, err := c.st.Setting(ctx, archive.CursorSetting); err != nil {
		return false, err
	} else if ok {
		if cursor, err = strconv.ParseInt(v, 10, 64); err != nil {
			return false, fmt.Errorf("%w: archive cursor %q", archive.ErrMalformed, v)
		}
	}
	page, err := c.st.Changes(ctx, store.ChangeSeq(cursor), 1)
	if err != nil || len(page) > 0 {
		return len(page) > 0, err
	}
	return archive.ConversationsPending(ctx, c.st)
}

func (c *Client) archiveHistory(ctx context.Context, compact bool) (*archive.UploadResult, error) {
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
	if compact || res.Deletions > 0 {
		if _, err := a.Compact(ctx, c.now()); err != nil {
			return res, fmt.Errorf("failed to compact history: %w", err)
		}
	}
	return res, nil
}

// RestoreHistory downloads the account's whole archive and merges it into
// this device's store; progress (may be nil) is called after each segment
// and batch, and subscribers get [EventHistoryRestore] events. Messages
// that arrive meanwhile are kept.
func (c *Client) RestoreHistory(ctx context.Context, progress func(archive.Progress)) (*archive.RestoreResult, error) {
	return c.restoreHistory(ctx, progress)
}

// RotateArchiveKey follows a device revocation: a new archive key
// generation, shared with the remaining devices, the key records re-wrapped
// under it, older generations dropped, and the recovery bundle re-sealed
// (to the recovery public key: no device holds the recovery key) if there
// is one.
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
	info, err := c.recoveryInfo(ctx)
	if err != nil || info == nil {
		return err
	}
	return c.sealRecovery(ctx, info, ring)
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
