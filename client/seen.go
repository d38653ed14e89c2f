package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/parley-im/parley/client/store"
)

// ChangeSeq numbers the changes to stored messages (see [Message].Change).
type ChangeSeq = store.ChangeSeq

// ErrBadReader means a reader name for [Client.Unseen] is malformed.
var ErrBadReader = errors.New("client: a reader name is 1 to 32 characters of a-z, 0-9 and '-'")

func seenKey(reader string) (string, error) {
	if len(reader) == 0 || len(reader) > 32 {
		return "", ErrBadReader
	}
	for _, r := range reader {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return "", ErrBadReader
		}
	}
	return "seen." + reader, nil
}

// Unseen returns up to limit (1 to store.MaxPageSize) messages stored or
// changed (edited, deleted, sent, read) since the position reader last
// recorded with [Client.MarkSeen], oldest change first, each in its current
// form. reader names the front end ("recv", "tui"), so each keeps its own
// place; the places are local to this device.
func (c *Client) Unseen(ctx context.Context, reader string, limit int) ([]*Message, error) {
	key, err := seenKey(reader)
	if err != nil {
		return nil, err
	}
	after, err := c.seen(ctx, key)
	if err != nil {
		return nil, err
	}
	return c.st.Changes(ctx, after, limit)
}

// MarkSeen records that reader has shown every change up to and including
// upTo (the Change of the last message it showed). A place never moves
// backwards.
func (c *Client) MarkSeen(ctx context.Context, reader string, upTo ChangeSeq) error {
	key, err := seenKey(reader)
	if err != nil {
		return err
	}
	if upTo < 0 {
		return fmt.Errorf("%w: negative change number", store.ErrInvalid)
	}
	c.mu.Lock() // orders concurrent MarkSeen calls
	defer c.mu.Unlock()
	cur, err := c.seen(ctx, key)
	if err != nil || cur >= upTo {
		return err
	}
	return c.st.Update(ctx, func(tx *store.Tx) error {
		return tx.SetSetting(key, strconv.FormatInt(int64(upTo), 10))
	})
}

func (c *Client) seen(ctx context.Context, key string) (ChangeSeq, error) {
	v, ok, err := c.st.Setting(ctx, key)
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, nil
	}
	return ChangeSeq(n), nil
}
