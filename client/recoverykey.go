package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// The recovery key's life on a device. [Init] makes the archive keyring and
// the recovery key, seals the recovery bundle to the key's public half,
// stores it on the server and registers the recovery device. The device
// keeps the key itself only until [Client.RecoveryWords] has returned its
// words once; every device keeps the [archive.RecoveryInfo] (public key,
// slot, recovery device), which re-seals the bundle after a key rotation
// but cannot open it.

// Settings of this device only (never shared).
const (
	// settingRecoveryPending holds the recovery key until its words are
	// shown.
	settingRecoveryPending = "recovery.pending"
	// settingRecoveryAwake holds the id (hex) of the recovery device once
	// it was seen in one of this device's groups: its words were used, it
	// is a device like the others.
	settingRecoveryAwake = "recovery.awake"
	// settingRecoveryRetire holds the [archive.RecoveryInfo] of replaced
	// recovery words until their bundle is deleted and their device
	// revoked.
	settingRecoveryRetire = "recovery.retire"
)

var (
	// ErrRecoveryShown means the account's recovery words were shown once
	// already (here or on another device) and are not kept anywhere; if
	// they are lost, [Client.RotateRecovery] makes new ones.
	ErrRecoveryShown = errors.New("client: the recovery words were already shown once")
	// ErrRecoveryDevice means this device is the account's recovery device
	// (a profile restored with the recovery words by a version before
	// 2026-11-26, whose key derives from them; [Recover] now registers a
	// new device instead): it cannot retire those words. Link a new device,
	// revoke this one from it, and rotate the words there.
	ErrRecoveryDevice = errors.New("client: this device was restored with the recovery words and cannot retire them")
)

// startArchive sets up cloud history for a new account on conn: the archive
// keyring, the recovery key with its sealed bundle on the server and its
// recovery device. Only after all of that succeeded does the profile record
// the keyring (so the account then has an archive), the recovery info and
// the key, kept until its words are shown. An error leaves the account
// without an archive; [Client.RecoveryWords] and [Client.ArchiveHistory]
// set it up later.
func (c *Client) startArchive(ctx context.Context, conn *wireclient.Client) error {
	ring, err := archive.NewKeyring(c.opts.Rand)
	if err != nil {
		return fmt.Errorf("failed to create archive keyring: %w", err)
	}
	rk, err := identity.NewRecoveryKey(c.opts.Rand)
	if err != nil {
		return fmt.Errorf("failed to make recovery key: %w", err)
	}
	defer clear(rk[:])
	info, err := newRecoveryInfo(rk)
	if err != nil {
		return err
	}
	if err := c.sealRecovery(ctx, info, ring); err != nil {
		return err
	}
	if err := c.registerRecoveryDevice(ctx, conn, rk); err != nil {
		return err
	}
	ringRaw, err := ring.MarshalBinary()
	if err != nil {
		return fmt.Errorf("failed to encode archive keyring: %w", err)
	}
	defer clear(ringRaw)
	infoRaw, err := info.MarshalBinary()
	if err != nil {
		return fmt.Errorf("failed to encode recovery info: %w", err)
	}
	return c.st.Update(ctx, func(tx *store.Tx) error {
		for k, v := range map[string]string{
			accountDataKey(AccountDataArchiveKeyring): string(ringRaw),
			accountDataKey(AccountDataRecoveryInfo):   string(infoRaw),
			settingRecoveryPending:                    string(rk[:]),
			settingHistoryRestored:                    store.On,
		} {
			if err := tx.SetSetting(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// readRecoveryInfo returns the account's recovery info as stored, or nil.
func (c *Client) readRecoveryInfo(ctx context.Context) (*archive.RecoveryInfo, error) {
	v, ok, err := c.AccountData(ctx, AccountDataRecoveryInfo)
	if err != nil || !ok || len(v) == 0 {
		return nil, err
	}
	info, err := archive.ParseRecoveryInfo(v)
	if err != nil {
		return nil, fmt.Errorf("failed to read recovery info: %w", err)
	}
	return info, nil
}

// recoveryInfo returns the account's recovery info, or nil when the account
// has no recovery key. An account whose devices still hold the recovery key
// itself (from before the info) is converted: the info is derived and
// shared, the bundle re-sealed in the current format, and the key erased
// on every device.
func (c *Client) recoveryInfo(ctx context.Context) (*archive.RecoveryInfo, error) {
	info, err := c.readRecoveryInfo(ctx)
	if err != nil || info != nil {
		return info, err
	}
	v, ok, err := c.AccountData(ctx, AccountDataRecoveryKey)
	if err != nil || !ok || len(v) == 0 {
		return nil, err
	}
	defer clear(v)
	var rk identity.RecoveryKey
	if len(v) != len(rk) {
		return nil, fmt.Errorf("failed to read recovery key: %d bytes", len(v))
	}
	copy(rk[:], v)
	defer clear(rk[:])
	if info, err = newRecoveryInfo(rk); err != nil {
		return nil, err
	}
	ring, err := c.ArchiveKeyring(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.sealRecovery(ctx, info, ring); err != nil {
		return nil, err
	}
	if err := c.shareRecoveryInfo(ctx, info); err != nil {
		return nil, err
	}
	if err := c.ShareAccountData(ctx, AccountDataRecoveryKey, nil); err != nil {
		return nil, fmt.Errorf("failed to erase the shared recovery key: %w", err)
	}
	return info, nil
}

func (c *Client) shareRecoveryInfo(ctx context.Context, info *archive.RecoveryInfo) error {
	raw, err := info.MarshalBinary()
	if err != nil {
		return fmt.Errorf("failed to encode recovery info: %w", err)
	}
	if err := c.ShareAccountData(ctx, AccountDataRecoveryInfo, raw); err != nil {
		return fmt.Errorf("failed to share recovery info: %w", err)
	}
	return nil
}

// sealRecovery seals the account key and ring to info's public key and
// stores the bundle in info's slot, replacing the one there.
func (c *Client) sealRecovery(ctx context.Context, info *archive.RecoveryInfo, ring *archive.Keyring) error {
	sealed, err := archive.SealRecoveryBundle(info.PublicKey, &archive.RecoveryBundle{AccountKey: c.id.AccountKey, Keyring: ring})
	if err != nil {
		return fmt.Errorf("failed to seal recovery bundle: %w", err)
	}
	remote, err := c.HistoryRemote()
	if err != nil {
		return err
	}
	return remote.PutRecoveryBundle(ctx, info.Slot, sealed)
}

// RecoveryWords returns the account's recovery key as words, once: the
// device erases the key as it returns them, and later calls (on any device)
// give [ErrRecoveryShown]. The key was made with the account ([Init]); an
// account that has none yet (created before, or while its server had no
// archive storage) gets one now, with its sealed bundle and recovery
// device.
func (c *Client) RecoveryWords(ctx context.Context) ([]string, error) {
	var rk identity.RecoveryKey
	v, ok, err := c.st.Setting(ctx, settingRecoveryPending)
	if err != nil {
		return nil, err
	}
	if ok && len(v) == len(rk) {
		copy(rk[:], v)
		defer clear(rk[:])
		if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteSetting(settingRecoveryPending) }); err != nil {
			return nil, fmt.Errorf("failed to erase the recovery key: %w", err)
		}
		// Another device may have rotated the words since: then these
		// are retired and must not be shown.
		cur, err := c.readRecoveryInfo(ctx)
		if err != nil {
			return nil, err
		}
		if slot, err := DeriveRecoveryBundleID(rk); err != nil || cur == nil || cur.Slot != slot {
			return nil, ErrRecoveryShown
		}
		return identity.RecoveryWords(rk), nil
	}
	info, err := c.recoveryInfo(ctx)
	if err != nil {
		return nil, err
	}
	if info != nil {
		return nil, ErrRecoveryShown
	}
	words, _, err := c.newRecovery(ctx)
	return words, err
}

// newRecovery makes a recovery key: the bundle sealed to it and stored in
// its slot, its recovery device registered, its info shared with the
// account's devices. It returns the words (kept nowhere) and the info.
func (c *Client) newRecovery(ctx context.Context) ([]string, *archive.RecoveryInfo, error) {
	ring, err := c.ArchiveKeyring(ctx)
	if err != nil {
		return nil, nil, err
	}
	rk, err := identity.NewRecoveryKey(c.opts.Rand)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to make recovery key: %w", err)
	}
	defer clear(rk[:])
	info, err := newRecoveryInfo(rk)
	if err != nil {
		return nil, nil, err
	}
	if err := c.sealRecovery(ctx, info, ring); err != nil {
		return nil, nil, err
	}
	if err := c.registerRecoveryDevice(ctx, nil, rk); err != nil {
		return nil, nil, err
	}
	if err := c.shareRecoveryInfo(ctx, info); err != nil {
		return nil, nil, err
	}
	if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteSetting(settingRecoveryPending) }); err != nil {
		return nil, nil, fmt.Errorf("failed to erase the old recovery key: %w", err)
	}
	return identity.RecoveryWords(rk), info, nil
}

// RotateRecovery replaces the account's recovery key, for a user who lost
// the words or thinks they leaked: a new key (returned as words, once, and
// kept nowhere), its bundle and recovery device; then the old bundle is
// deleted from the server and the old recovery device revoked (which also
// rotates the archive key), so the old words open nothing. On the device
// that is the recovery device itself (restored by an earlier version) it
// fails with [ErrRecoveryDevice] and changes nothing. If retiring the old words fails after the new ones were made,
// it returns the new words together with the error (show them: they are
// in force), and [Client.Sync] retries the retirement.
func (c *Client) RotateRecovery(ctx context.Context) ([]string, error) {
	old, err := c.recoveryInfo(ctx)
	if err != nil {
		return nil, err
	}
	if old != nil && old.Device == c.id.Device {
		return nil, ErrRecoveryDevice
	}
	if err := c.retirePending(ctx); err != nil {
		return nil, err
	}
	if old != nil {
		raw, err := old.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("failed to encode recovery info: %w", err)
		}
		if err := c.st.Update(ctx, func(tx *store.Tx) error { return tx.SetSetting(settingRecoveryRetire, string(raw)) }); err != nil {
			return nil, err
		}
	}
	words, _, err := c.newRecovery(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.retirePending(ctx); err != nil {
		return words, fmt.Errorf("new recovery words are in force, but the old ones are not retired yet (this device retries when it next syncs): %w", err)
	}
	return words, nil
}

// retirePending retires the recovery words a rotation replaced, if that is
// still to do.
func (c *Client) retirePending(ctx context.Context) error {
	v, ok, err := c.st.Setting(ctx, settingRecoveryRetire)
	if err != nil || !ok {
		return err
	}
	old, err := archive.ParseRecoveryInfo([]byte(v))
	if err != nil {
		return fmt.Errorf("failed to read replaced recovery info: %w", err)
	}
	if err := c.retireRecovery(ctx, old); err != nil {
		return err
	}
	return c.st.Update(ctx, func(tx *store.Tx) error { return tx.DeleteSetting(settingRecoveryRetire) })
}

// retireRecovery deletes old's bundle and revokes its recovery device (a
// device the server does not know is fine).
func (c *Client) retireRecovery(ctx context.Context, old *archive.RecoveryInfo) error {
	remote, err := c.HistoryRemote()
	if err != nil {
		return err
	}
	if err := remote.DeleteRecoveryBundle(ctx, old.Slot); err != nil {
		return err
	}
	if err := c.RevokeDevice(ctx, old.Device); err != nil && wireCode(err) != wire.ErrorCode_NOT_FOUND {
		return fmt.Errorf("failed to revoke the old recovery device: %w", err)
	}
	return nil
}

// sleepingRecoveryDevice returns the account's recovery device while it
// sleeps: its words have not been used (it was never seen in a group) and
// it is not this device. (A recovery revokes the account's other devices
// and rejoins the conversations itself, so they need not watch for it.) A sleeping recovery device is not
// listed by [Client.Devices], not added to groups and uploads nothing.
func (c *Client) sleepingRecoveryDevice(ctx context.Context) (identity.DeviceID, bool) {
	info, err := c.readRecoveryInfo(ctx)
	if err != nil || info == nil || info.Device == c.id.Device {
		return identity.DeviceID{}, false
	}
	awake, _, err := c.st.Setting(ctx, settingRecoveryAwake)
	if err != nil || awake == hex.EncodeToString(info.Device[:]) {
		return identity.DeviceID{}, false
	}
	return info.Device, true
}

// wakeRecoveryDevice records that the recovery device dev is in use.
func (c *Client) wakeRecoveryDevice(ctx context.Context, dev identity.DeviceID) error {
	return c.st.Update(ctx, func(tx *store.Tx) error {
		return tx.SetSetting(settingRecoveryAwake, hex.EncodeToString(dev[:]))
	})
}
