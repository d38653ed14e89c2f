package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-im/parley/client/content"
	"github.com/parley-im/parley/client/store"
)

// Account data is the extension point for secrets and state every device
// of the account must hold (the history archive's keyring, for example):
// [Client.ShareAccountData] stores a named value on this device and sends
// it through the self group to the others, which store it and emit
// [EventAccountData]; [Options.LinkData] hands values to a newly linked
// device inside the sealed link bundle.

// MaxAccountData is the largest account data value.
const MaxAccountData = 32 << 10

// validAccountDataName accepts 1..32 characters of a-z, 0-9, '-', '.'.
func validAccountDataName(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func accountDataKey(name string) string { return "acct." + name }

// ShareAccountData stores value under name on this device and sends it to
// every other device of the account through the self group.
func (c *Client) ShareAccountData(ctx context.Context, name string, value []byte) error {
	if err := c.putAccountData(ctx, name, value); err != nil {
		return err
	}
	self, err := c.SelfChat(ctx)
	if errors.Is(err, ErrUnknownChat) {
		// A device linked a moment ago may not have processed its
		// Welcome to the self group yet: fetch what is waiting, then look
		// again.
		if serr := c.Sync(ctx); serr == nil {
			self, err = c.SelfChat(ctx)
		}
	}
	if err != nil {
		return err
	}
	return c.queueControl(ctx, self, &content.Content{Kind: content.KindAccount, Name: name, Body: value})
}

func (c *Client) putAccountData(ctx context.Context, name string, value []byte) error {
	if !validAccountDataName(name) || len(value) > MaxAccountData {
		return fmt.Errorf("%w: account data %q (names: 1..32 of a-z 0-9 - .; values up to %d bytes)", store.ErrInvalid, name, MaxAccountData)
	}
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSetting(accountDataKey(name), string(value)) })
}

// AccountData returns the value stored under name, and whether there is
// one.
func (c *Client) AccountData(ctx context.Context, name string) ([]byte, bool, error) {
	if !validAccountDataName(name) {
		return nil, false, fmt.Errorf("%w: account data name %q", store.ErrInvalid, name)
	}
	v, ok, err := c.st.Setting(ctx, accountDataKey(name))
	if err != nil || !ok {
		return nil, false, err
	}
	return []byte(v), true, nil
}
