package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// Device is one device of this account, as the directory lists it.
type Device struct {
	ID      identity.DeviceID
	Created time.Time
	// Current marks this device.
	Current bool
}

// Devices lists this account's devices (revoked ones are not listed, nor
// the recovery device while its words are unused).
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	acct, err := c.Resolve(ctx, string(c.account()))
	if err != nil {
		return nil, err
	}
	sleeper, sleeping := c.sleepingRecoveryDevice(ctx)
	out := make([]Device, 0, len(acct.Devices))
	for _, cert := range acct.Devices {
		if sleeping && cert.DeviceID() == sleeper {
			continue
		}
		out = append(out, Device{ID: cert.DeviceID(), Created: cert.Created(), Current: cert.DeviceID() == c.id.Device})
	}
	return out, nil
}

// RevokeDevice revokes another device of this account: the server stops
// serving it, and this device removes it from every group by commit, so it
// cannot decrypt anything sent afterwards. A revocation whose connection
// breaks is sent again, signed anew, on a new connection: the server
// accepts the revocation of a device it already revoked, so a revocation
// it carried out before the answer was lost succeeds too, and so does
// revoking a device again.
func (c *Client) RevokeDevice(ctx context.Context, dev identity.DeviceID) error {
	if dev == c.id.Device {
		return fmt.Errorf("client: a device cannot revoke itself; revoke it from another device")
	}
	if err := c.reachable(ctx); err != nil {
		return err
	}
	err := c.withConn(ctx, func(conn *wireclient.Client) error { return c.sendRevocation(ctx, conn, dev) })
	if err != nil {
		return fmt.Errorf("failed to revoke device: %w", err)
	}
	err = c.withConn(ctx, func(conn *wireclient.Client) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.reconcileDevices(ctx, conn)
	})
	if err != nil {
		return err
	}
	c.afterRevoke(ctx)
	return nil
}

// sendRevocation asks the server to revoke one of this account's devices,
// signed by the account key.
func (c *Client) sendRevocation(ctx context.Context, conn *wireclient.Client, dev identity.DeviceID) error {
	c.connMu.Lock()
	name := c.serverName
	c.connMu.Unlock()
	now := c.now().Unix()
	sig, err := c.id.AccountKey.Sign(wire.DomainDeviceRevoke, wire.RevokeMessage(name, c.account(), dev, now))
	if err != nil {
		return fmt.Errorf("failed to sign revocation: %w", err)
	}
	_, err = conn.Do(ctx, &wire.Request{Kind: &wire.Request_RevokeDevice{RevokeDevice: &wire.RevokeDevice{
		DeviceId: dev[:], UnixTime: now, Signature: sig,
	}}})
	return err
}

// reconcileDevices makes every group this device is in hold exactly this
// account's current devices: new (linked) devices are added, revoked ones
// removed. Caller holds c.mu.
func (c *Client) reconcileDevices(ctx context.Context, conn *wireclient.Client) error {
	convs, err := c.st.Conversations(ctx)
	if err != nil {
		return err
	}
	acct, err := c.resolveOn(ctx, conn, string(c.account()))
	if err != nil {
		return err
	}
	for _, conv := range convs {
		if conv.Left {
			continue
		}
		if err := c.syncOwnDevices(ctx, conn, conv, acct); err != nil && !errors.Is(err, ErrNotMember) {
			return err
		}
	}
	return nil
}

// syncOwnDevices adds this account's devices missing from conv and removes
// those no longer listed. acct is the directory entry (nil: look it up).
// Caller holds c.mu.
func (c *Client) syncOwnDevices(ctx context.Context, conn *wireclient.Client, conv *store.Conversation, acct *Account) error {
	if acct == nil {
		var err error
		if acct, err = c.resolveOn(ctx, conn, string(c.account())); err != nil {
			return err
		}
	}
	current := make([]identity.DeviceID, 0, len(acct.Devices))
	for _, cert := range acct.Devices {
		current = append(current, cert.DeviceID())
	}
	grp, err := c.group(ctx, conv.Group)
	if err != nil || grp == nil {
		return err
	}
	members, err := c.groupMembers(grp)
	if err != nil {
		return err
	}
	// The sleeping recovery device has no key packages to add it with.
	sleeper, sleeping := c.sleepingRecoveryDevice(ctx)
	missing := false
	for _, d := range current {
		found := false
		for _, m := range members {
			found = found || m.Device == d
		}
		if sleeping && d == sleeper {
			if found { // another device saw it awake and added it
				if err := c.wakeRecoveryDevice(ctx, d); err != nil {
					return err
				}
				sleeping = false
			}
			continue
		}
		missing = missing || !found
	}
	var kps []*mls.KeyPackage
	if missing {
		if kps, err = c.claimKeyPackages(ctx, conn, c.account()); err != nil {
			return err
		}
	}
	me := c.account()
	return c.commitChange(ctx, conn, conv.Group, kps, func(m *memberID) bool {
		return m.Account == me && !slices.Contains(current, m.Device)
	})
}
