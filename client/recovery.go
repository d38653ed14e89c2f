package client

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/mls"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

const recoveryBundleIDLabel = "parley/recovery/bundle-id/v1"

// RecoveryBundleID names an account's recovery-bundle slot on the server.
// It is derived from the recovery key, so a fresh device that knows only
// the words finds the slot, and it reveals nothing about the key.
type RecoveryBundleID [32]byte

// String returns the id as 64 lowercase hex digits.
func (id RecoveryBundleID) String() string { return hex.EncodeToString(id[:]) }

// DeriveRecoveryBundleID returns the slot id of the recovery key rk.
func DeriveRecoveryBundleID(rk identity.RecoveryKey) (RecoveryBundleID, error) {
	var id RecoveryBundleID
	k, err := hkdf.Key(sha256.New, rk[:], nil, recoveryBundleIDLabel, len(id))
	if err != nil {
		return id, fmt.Errorf("failed to derive recovery bundle id: %w", err)
	}
	copy(id[:], k)
	return id, nil
}

// PutRecoveryBundle stores a sealed recovery bundle in slot; the request
// is authorised with the remote's token, and the server refuses to replace
// another account's bundle.
func (r *ArchiveRemote) PutRecoveryBundle(ctx context.Context, slot RecoveryBundleID, sealed []byte) error {
	if len(sealed) == 0 || len(sealed) > archive.MaxRecoveryBundleSize {
		return fmt.Errorf("failed to store recovery bundle: %w: size %d", ErrArchiveServer, len(sealed))
	}
	resp, err := r.do(ctx, http.MethodPut, "/v1/archive/recovery/"+slot.String(), sealed, true)
	if err != nil {
		return fmt.Errorf("failed to store recovery bundle: %w", err)
	}
	resp.Body.Close()
	return nil
}

// DeleteRecoveryBundle removes the bundle in slot (authorised with the
// remote's token; only the account that stored it may). A missing slot is
// not an error.
func (r *ArchiveRemote) DeleteRecoveryBundle(ctx context.Context, slot RecoveryBundleID) error {
	resp, err := r.do(ctx, http.MethodDelete, "/v1/archive/recovery/"+slot.String(), nil, true)
	if errors.Is(err, archive.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to delete recovery bundle: %w", err)
	}
	resp.Body.Close()
	return nil
}

// FetchRecoveryBundle returns the sealed recovery bundle in the slot of rk,
// without authorisation; a missing slot is an error wrapping
// [archive.ErrNotFound].
func (r *ArchiveRemote) FetchRecoveryBundle(ctx context.Context, rk identity.RecoveryKey) ([]byte, error) {
	id, err := DeriveRecoveryBundleID(rk)
	if err != nil {
		return nil, err
	}
	resp, err := r.do(ctx, http.MethodGet, "/v1/archive/recovery/"+id.String(), nil, false)
	if err != nil {
		return nil, fmt.Errorf("failed to fetch recovery bundle: %w", err)
	}
	return readAll(resp, archive.MaxRecoveryBundleSize)
}

// FetchRecovery fetches and opens the recovery bundle of the recovery words:
// the account key and the archive keyring. Words that are not valid recovery
// words, or whose slot holds nothing, give an error wrapping
// [archive.ErrWrongRecoveryKey].
func FetchRecovery(ctx context.Context, remote *ArchiveRemote, words string) (*archive.RecoveryBundle, error) {
	rk, err := identity.ParseRecoveryWords(words)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", archive.ErrWrongRecoveryKey, err)
	}
	sealed, err := remote.FetchRecoveryBundle(ctx, rk)
	if err != nil {
		if errors.Is(err, archive.ErrNotFound) {
			return nil, fmt.Errorf("%w: no recovery bundle on this server for these words", archive.ErrWrongRecoveryKey)
		}
		return nil, err
	}
	defer clear(rk[:])
	b, err := archive.OpenRecoveryBundleKey(rk, sealed)
	if err != nil {
		return nil, fmt.Errorf("failed to open recovery bundle: %w", err)
	}
	return b, nil
}

const recoveryDeviceLabel = "parley/recovery/device/v1"

// recoveryDevice derives the account's recovery device from the recovery
// key: its id and signature key. [Client.RecoveryWords] registers it with
// the server, so a fresh profile that knows only the words can sign in as
// it ([Recover]) even when every other device is gone.
func recoveryDevice(rk identity.RecoveryKey) (identity.DeviceID, ed25519.PrivateKey, error) {
	k, err := hkdf.Key(sha256.New, rk[:], nil, recoveryDeviceLabel, identity.DeviceIDSize+ed25519.SeedSize)
	if err != nil {
		return identity.DeviceID{}, nil, fmt.Errorf("failed to derive recovery device: %w", err)
	}
	defer clear(k)
	dev, err := identity.DeviceIDFromBytes(k[:identity.DeviceIDSize])
	if err != nil {
		return dev, nil, fmt.Errorf("failed to derive recovery device: %w", err)
	}
	return dev, ed25519.NewKeyFromSeed(k[identity.DeviceIDSize:]), nil
}

// registerRecoveryDevice certifies the recovery device of rk and adds it to
// the account on the server, over conn (nil: this client's connection).
func (c *Client) registerRecoveryDevice(ctx context.Context, conn *wireclient.Client, rk identity.RecoveryKey) error {
	dev, priv, err := recoveryDevice(rk)
	if err != nil {
		return err
	}
	cert, err := identity.IssueDeviceCertificate(c.id.AccountKey, dev, priv.Public().(ed25519.PublicKey), uint16(mls.X25519AES128GCM), c.now())
	if err != nil {
		return fmt.Errorf("failed to certify the recovery device: %w", err)
	}
	if conn == nil {
		if conn, err = c.connect(ctx); err != nil {
			return err
		}
	}
	if _, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_AddDevice{AddDevice: &wire.AddDevice{DeviceCertificate: cert.Marshal()}}}); err != nil {
		return fmt.Errorf("failed to register the recovery device: %w", err)
	}
	return nil
}

// Recover restores an account on a fresh profile in dir from its recovery
// words: it fetches and opens the recovery bundle from the server at
// serverURL, signs in as the account's recovery device to register a new
// device of the account for this profile, restores the
// conversations and the whole history from the archive (progress may be
// nil), revokes the account's other devices (they are lost) and asks the
// conversations' other members to add this device back ([Client.Rejoin]). Wrong words give
// an error wrapping [archive.ErrWrongRecoveryKey] and create nothing.
func Recover(ctx context.Context, dir, serverURL, words string, opts Options, progress func(archive.Progress)) (*Client, error) {
	opts.fill()
	wsURL, err := normalizeServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	base, err := httpBaseURL(wsURL)
	if err != nil {
		return nil, err
	}
	rk, err := identity.ParseRecoveryWords(words)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", archive.ErrWrongRecoveryKey, err)
	}
	defer clear(rk[:])
	bundle, err := FetchRecovery(ctx, NewArchiveRemote(base, nil, nil), words)
	if err != nil {
		return nil, err
	}
	account := bundle.AccountKey
	recDev, recPriv, err := recoveryDevice(rk)
	if err != nil {
		return nil, err
	}
	// The recovery device only vouches for this profile's own device: a
	// fresh one, certified by the account key and added to the account over
	// the recovery device's session. The recovery device stays asleep for
	// the next recovery, which revokes this device like any lost one.
	dev, priv, cert, err := newDevice(account, opts)
	if err != nil {
		return nil, err
	}
	if err := addDeviceAsRecovery(ctx, wsURL, account.ID(), recDev, recPriv, cert); err != nil {
		return nil, err
	}
	conn, hello, err := dialServer(ctx, wsURL)
	if err != nil {
		return nil, err
	}
	// Only the greeting is needed: the steps after the profile exists run
	// on the client's own connection, with withConn's retries.
	conn.Close()
	st, err := store.Create(ctx, dir, store.Options{Passphrase: opts.Passphrase, Rand: opts.Rand})
	if err != nil {
		return nil, fmt.Errorf("failed to create profile: %w", err)
	}
	host := serverHost(hello.GetServerName(), wsURL)
	sid := &store.Identity{
		AccountKey: account, Device: dev, DeviceSigner: store.DeviceSignerKey(priv.Seed()), Certificate: cert,
		ServerURL: wsURL, Address: string(account.ID()) + "@" + host, CreatedAt: opts.Now(),
	}
	ring, err := bundle.Keyring.MarshalBinary()
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("failed to encode archive keyring: %w", err)
	}
	// This device keeps what re-seals the bundle, not the words.
	info, err := newRecoveryInfo(rk)
	if err != nil {
		st.Close()
		return nil, err
	}
	infoRaw, err := info.MarshalBinary()
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("failed to encode recovery info: %w", err)
	}
	if err := st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutIdentity(sid); err != nil {
			return err
		}
		if err := tx.SetSetting(accountDataKey(AccountDataArchiveKeyring), string(ring)); err != nil {
			return err
		}
		if err := tx.SetSetting(accountDataKey(AccountDataRecoveryInfo), string(infoRaw)); err != nil {
			return err
		}
		return tx.SetSetting(settingHistoryRestored, store.On)
	}); err != nil {
		st.Close()
		return nil, fmt.Errorf("failed to store identity: %w", err)
	}
	c, err := newClient(st, sid, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	c.serverName = hello.GetServerName()
	// From here on the profile exists and is not recovered into again, so
	// every step retries on a new connection when its connection breaks.
	// Uploading key packages again is safe: a new last-resort one
	// replaces the old, and the ones stored locally stay usable.
	err = c.withConn(ctx, func(conn *wireclient.Client) error { return c.refillKeyPackages(ctx, conn, true) })
	if err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.restoreHistory(ctx, progress); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.afterRecover(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// addDeviceAsRecovery signs in to the server at wsURL as the account's
// recovery device and registers the device certificate cert with it.
func addDeviceAsRecovery(ctx context.Context, wsURL string, account identity.AccountID, recDev identity.DeviceID, recPriv ed25519.PrivateKey, cert *identity.DeviceCertificate) error {
	conn, _, err := dialServer(ctx, wsURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := authenticate(ctx, conn, account, recDev, recPriv); err != nil {
		return fmt.Errorf("failed to sign in as the recovery device: %w", err)
	}
	if _, err := conn.Do(ctx, &wire.Request{Kind: &wire.Request_AddDevice{AddDevice: &wire.AddDevice{DeviceCertificate: cert.Marshal()}}}); err != nil {
		return fmt.Errorf("failed to register this device: %w", err)
	}
	return nil
}

// newRecoveryInfo derives what devices keep about rk: the public key that
// seals the bundle, the bundle's slot and the recovery device.
func newRecoveryInfo(rk identity.RecoveryKey) (*archive.RecoveryInfo, error) {
	pub, err := archive.DeriveRecoveryPublicKey(rk)
	if err != nil {
		return nil, err
	}
	slot, err := DeriveRecoveryBundleID(rk)
	if err != nil {
		return nil, err
	}
	dev, _, err := recoveryDevice(rk)
	if err != nil {
		return nil, err
	}
	return &archive.RecoveryInfo{PublicKey: pub, Slot: slot, Device: dev}, nil
}
