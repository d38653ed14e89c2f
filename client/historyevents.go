package client

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-im/parley/client/archive"
)

// EventHistoryRestore reports the progress of a history restore (Restore
// set): after the archive is listed, after each segment is downloaded and
// decrypted, and after each batch of messages is merged, at most every
// [restoreEventInterval] except the first and the last. A restore is done
// when Restore.SegmentsDone == Restore.SegmentsTotal and
// Restore.MessagesMerged == Restore.MessagesTotal. Its value is fixed, apart
// from the other kinds, so kinds added to the list above never collide.
const EventHistoryRestore EventKind = 64

// restoreEventInterval throttles [EventHistoryRestore] events.
const restoreEventInterval = 100 * time.Millisecond

// restoreHistory is [Client.RestoreHistory]; it emits EventHistoryRestore
// to subscribers and also calls progress (may be nil).
func (c *Client) restoreHistory(ctx context.Context, progress func(archive.Progress)) (*archive.RestoreResult, error) {
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
	var last time.Time
	throttled := false
	report := func(p archive.Progress) {
		if progress != nil {
			progress(p)
		}
		now := time.Now()
		if !last.IsZero() && now.Sub(last) < restoreEventInterval {
			throttled = true
			return
		}
		last, throttled = now, false
		c.emitRestore(p)
	}
	res, err := archive.Restore(ctx, c.st, remote, ring, archive.RestoreOptions{Progress: report})
	if err != nil {
		return nil, fmt.Errorf("failed to restore history: %w", err)
	}
	if throttled { // the final state is always sent
		c.emitRestore(res.Progress)
	}
	// Run need not restore this device again.
	if err := c.markRestored(ctx); err != nil {
		return res, err
	}
	return res, nil
}

func (c *Client) emitRestore(p archive.Progress) {
	c.emit(Event{Kind: EventHistoryRestore, Restore: &p})
}
