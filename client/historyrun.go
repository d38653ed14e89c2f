package client

import (
	"context"
	"sync"
	"time"

	"github.com/parley-im/parley/client/store"
)

// historyDebounce is how long the background archiver waits after the last
// event before uploading.
const historyDebounce = 2 * time.Second

// historyRetryMax caps the backoff between failed background uploads.
const historyRetryMax = 5 * time.Minute

// settingHistoryRestored marks a device that has restored (or started) the
// account's archive, so [Client.Run] restores a newly linked device once.
const settingHistoryRestored = "history.restored"

// archiveLocks serialises archive uploads of one client (the background
// loop and explicit calls), keyed by *Client.
var archiveLocks sync.Map

func (c *Client) archiveLock() *sync.Mutex {
	m, _ := archiveLocks.LoadOrStore(c, &sync.Mutex{})
	return m.(*sync.Mutex)
}

func (c *Client) hasArchive(ctx context.Context) bool {
	_, ok, err := c.AccountData(ctx, AccountDataArchiveKeyring)
	return err == nil && ok
}

// HasArchive reports whether the account has a cloud history archive (made
// with the account by [Init] when its server has archive storage).
func (c *Client) HasArchive(ctx context.Context) bool { return c.hasArchive(ctx) }

func (c *Client) markRestored(ctx context.Context) error {
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSetting(settingHistoryRestored, store.On) })
}

// runHistory is the background half of cloud history, started by Run: on
// an account with an archive, a device that has not restored it yet (a
// newly linked one) restores it once, and new history is uploaded a short
// while after activity settles. Accounts without an archive (created
// before archives started with the account, or on a server without archive
// storage, and no `recovery` use since) are left alone.
func (c *Client) runHistory(ctx context.Context) {
	events, cancel := c.Subscribe(256)
	defer cancel()
	go func() {
		if !c.hasArchive(ctx) {
			return
		}
		if done, err := c.st.SettingOn(ctx, settingHistoryRestored); err != nil || done {
			return
		}
		res, err := c.RestoreHistory(ctx, nil)
		if err != nil {
			c.log.Warn("failed to restore history", "err", err)
			return
		}
		c.log.Info("restored history", "messages", res.Inserted)
		if err := c.markRestored(ctx); err != nil {
			c.log.Warn("failed to record history restore", "err", err)
		}
	}()
	// History changed while the client was not running is uploaded soon
	// after start.
	timer := time.NewTimer(historyDebounce)
	armed := true
	var retry time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.closed:
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			if !armed {
				timer.Reset(historyDebounce)
				armed = true
			}
		case <-timer.C:
			armed = false
			if !c.hasArchive(ctx) {
				continue
			}
			_, err := c.ArchivePending(ctx)
			if err != nil && ctx.Err() == nil {
				c.log.Warn("failed to archive history", "err", err)
			}
			// Retry a failure with backoff; changes made while uploading
			// (a sent message's sequence number arriving, which emits no
			// event) are picked up at once.
			switch pending, perr := c.historyPending(ctx); {
			case err != nil:
				retry = min(max(2*retry, historyDebounce), historyRetryMax)
			case perr == nil && pending:
				retry = 0
			default:
				retry = 0
				continue
			}
			timer.Reset(max(retry, historyDebounce))
			armed = true
		}
	}
}

// archiveAfterSync uploads what changed since the last upload, so
// short-lived programs archive without running [Client.Run]. Failures are
// logged: the changes stay pending and the next call retries.
func (c *Client) archiveAfterSync(ctx context.Context) {
	if _, err := c.ArchivePending(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("failed to archive history", "err", err)
	}
	if err := c.retirePending(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("failed to retire replaced recovery words", "err", err)
	}
}
