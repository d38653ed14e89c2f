package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

const (
	qAccountExists = `SELECT 1 FROM accounts WHERE account_id = ?`
	qInsertAccount = `INSERT INTO accounts (account_id, account_pub, created_at) VALUES (?, ?, ?)`
	qSelectAccount = `SELECT account_pub, created_at FROM accounts WHERE account_id = ?`

	qDeleteAccount            = `DELETE FROM accounts WHERE account_id = ?`
	qDeleteAccountDevices     = `DELETE FROM devices WHERE account_id = ?`
	qDeleteAccountKeyPackages = `DELETE FROM key_packages WHERE account_id = ?`
	qDeleteAccountUsername    = `DELETE FROM usernames WHERE account_id = ?`
	qDeleteAccountMailbox     = `DELETE FROM mailbox WHERE account_id = ?`
	qDeleteAccountMembers     = `DELETE FROM group_members WHERE account_id = ?`

	qDeviceExists = `SELECT 1 FROM devices WHERE account_id = ? AND device_id = ?`
	qInsertDevice = `INSERT INTO devices (account_id, device_id, certificate, sig_pub, created_at)
		VALUES (?, ?, ?, ?, ?)`
	qSelectDevice = `SELECT device_id, certificate, sig_pub, created_at, revoked_at
		FROM devices WHERE account_id = ? AND device_id = ?`
	qSelectDevices = `SELECT device_id, certificate, sig_pub, created_at, revoked_at
		FROM devices WHERE account_id = ? ORDER BY device_id`
	// qLockDevice reads a device's state and, on PostgreSQL, locks its row
	// so that key package claims and mailbox appends to it are serialized.
	qLockDevice = `SELECT revoked_at, mail_seq, mail_count FROM devices
		WHERE account_id = ? AND device_id = ? @FOR_UPDATE@`
	qRevokeDevice            = `UPDATE devices SET revoked_at = ? WHERE account_id = ? AND device_id = ?`
	qDeleteDeviceKeyPackages = `DELETE FROM key_packages WHERE account_id = ? AND device_id = ?`
	qDeleteDeviceMailbox     = `DELETE FROM mailbox WHERE account_id = ? AND device_id = ?`
	qDeleteDeviceMemberships = `DELETE FROM group_members WHERE account_id = ? AND device_id = ?`
	qResetDeviceMailboxCount = `UPDATE devices SET mail_count = 0 WHERE account_id = ? AND device_id = ?`
	qSelectUsernameByName    = `SELECT name, account_id, claim, created_at FROM usernames WHERE name = ?`
	qSelectUsernameByAccount = `SELECT name, account_id, claim, created_at FROM usernames WHERE account_id = ?`
	qUpdateUsernameClaim     = `UPDATE usernames SET claim = ?, created_at = ? WHERE name = ?`
	qInsertUsername          = `INSERT INTO usernames (name, account_id, claim, created_at) VALUES (?, ?, ?, ?)`
	qDeleteUsername          = `DELETE FROM usernames WHERE name = ? AND account_id = ?`
	qInsertInvite            = `INSERT INTO invites (token, created_at) VALUES (?, ?)`
	qSelectInvite            = `SELECT used_at FROM invites WHERE token = ?`
	qUseInvite               = `UPDATE invites SET used_at = ? WHERE token = ? AND used_at = 0`
	maxUsernameLen           = 255
	maxInviteLen             = 255
)

// exists runs a "SELECT 1" query and reports whether it matched.
func exists(ctx context.Context, q Querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// insert runs an INSERT, turning a unique violation into store.ErrExists.
func (s *Store) insert(ctx context.Context, tx Querier, what, query string, args ...any) error {
	if _, err := tx.Exec(ctx, query, args...); err != nil {
		if s.b.IsUnique(err) {
			return fmt.Errorf("%w: %s", store.ErrExists, what)
		}
		return fmt.Errorf("failed to insert %s: %w", what, err)
	}
	return nil
}

// CreateAccount implements store.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a store.NewAccount) error {
	d := a.FirstDevice
	if a.Account.ID == "" || len(a.Account.PublicKey) == 0 || d.Account != a.Account.ID || d.ID.IsZero() ||
		len(a.Invite) > maxInviteLen {
		return fmt.Errorf("%w: incomplete account or first device", store.ErrInvalid)
	}
	return s.w.do(ctx, string(a.Account.ID), func(ctx context.Context, tx *batchTx) error {
		ok, err := exists(ctx, tx, qAccountExists, string(a.Account.ID))
		if err != nil {
			return wrap("look up account", err)
		}
		if ok {
			return fmt.Errorf("%w: account %s", store.ErrExists, a.Account.ID)
		}
		if a.Invite != "" {
			if err := useInvite(ctx, tx, a.Invite, a.Account.CreatedAt); err != nil {
				return err
			}
		}
		if err := s.insert(ctx, tx, "account", qInsertAccount,
			string(a.Account.ID), a.Account.PublicKey, nanos(a.Account.CreatedAt)); err != nil {
			return err
		}
		return s.insert(ctx, tx, "device", qInsertDevice,
			string(d.Account), d.ID[:], d.Certificate, d.SigningKey, nanos(d.CreatedAt))
	})
}

// Account implements store.Accounts.
func (s *Store) Account(ctx context.Context, id identity.AccountID) (store.Account, error) {
	a := store.Account{ID: id}
	var created int64
	err := s.reader().QueryRow(ctx, qSelectAccount, string(id)).Scan(&a.PublicKey, &created)
	if errors.Is(err, ErrNoRows) {
		return store.Account{}, fmt.Errorf("%w: account %s", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Account{}, wrap("read account", err)
	}
	a.CreatedAt = fromNanos(created)
	return a, nil
}

// DeleteAccount implements store.Accounts.
func (s *Store) DeleteAccount(ctx context.Context, id identity.AccountID) error {
	return s.w.doSync(ctx, string(id), func(ctx context.Context, tx *batchTx) error {
		ok, err := exists(ctx, tx, qAccountExists, string(id))
		if err != nil {
			return wrap("look up account", err)
		}
		if !ok {
			return fmt.Errorf("%w: account %s", store.ErrNotFound, id)
		}
		if s.cache != nil {
			s.cache.forgetMembers()
		}
		for _, q := range []string{qDeleteAccountMembers, qDeleteAccountMailbox, qDeleteAccountKeyPackages,
			qDeleteAccountUsername, qDeleteAccountDevices, qDeleteAccount} {
			if _, err := tx.Exec(ctx, q, string(id)); err != nil {
				return fmt.Errorf("failed to delete account: %w", err)
			}
		}
		return nil
	})
}

// AddDevice implements store.Devices.
func (s *Store) AddDevice(ctx context.Context, d store.Device) error {
	if err := validRef(d.Ref()); err != nil {
		return err
	}
	return s.w.do(ctx, string(d.Account), func(ctx context.Context, tx *batchTx) error {
		ok, err := exists(ctx, tx, qAccountExists, string(d.Account))
		if err != nil {
			return wrap("look up account", err)
		}
		if !ok {
			return fmt.Errorf("%w: account %s", store.ErrNotFound, d.Account)
		}
		ok, err = exists(ctx, tx, qDeviceExists, string(d.Account), d.ID[:])
		if err != nil {
			return wrap("look up device", err)
		}
		if ok {
			return fmt.Errorf("%w: device %s", store.ErrExists, d.ID)
		}
		return s.insert(ctx, tx, "device", qInsertDevice,
			string(d.Account), d.ID[:], d.Certificate, d.SigningKey, nanos(d.CreatedAt))
	})
}

// scanDevice reads a device row of qSelectDevice(s).
func scanDevice(account identity.AccountID, scan func(...any) error) (store.Device, error) {
	d := store.Device{Account: account}
	var id []byte
	var created, revoked int64
	if err := scan(&id, &d.Certificate, &d.SigningKey, &created, &revoked); err != nil {
		return store.Device{}, err
	}
	var err error
	if d.ID, err = devID(id); err != nil {
		return store.Device{}, err
	}
	d.CreatedAt, d.RevokedAt = fromNanos(created), fromNanos(revoked)
	return d, nil
}

// Device implements store.Devices.
func (s *Store) Device(ctx context.Context, ref store.DeviceRef) (store.Device, error) {
	d, err := scanDevice(ref.Account, s.reader().QueryRow(ctx, qSelectDevice, string(ref.Account), ref.Device[:]).Scan)
	if errors.Is(err, ErrNoRows) {
		return store.Device{}, fmt.Errorf("%w: device %s", store.ErrNotFound, ref.Device)
	}
	return d, wrap("read device", err)
}

// Devices implements store.Devices.
func (s *Store) Devices(ctx context.Context, account identity.AccountID) ([]store.Device, error) {
	r := s.reader()
	rows, err := r.Query(ctx, qSelectDevices, string(account))
	if err != nil {
		return nil, wrap("list devices", err)
	}
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(account, rows.Scan)
		if err != nil {
			rows.Close()
			return nil, wrap("list devices", err)
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("list devices", err)
	}
	if len(out) == 0 {
		ok, err := exists(ctx, r, qAccountExists, string(account))
		if err != nil {
			return nil, wrap("look up account", err)
		}
		if !ok {
			return nil, fmt.Errorf("%w: account %s", store.ErrNotFound, account)
		}
	}
	return out, nil
}

// lockDevice reads (and on PostgreSQL locks) a device's row.
func lockDevice(ctx context.Context, tx Querier, ref store.DeviceRef) (revoked bool, mailSeq, mailCount int64, err error) {
	var revokedAt int64
	err = tx.QueryRow(ctx, qLockDevice, string(ref.Account), ref.Device[:]).Scan(&revokedAt, &mailSeq, &mailCount)
	if errors.Is(err, ErrNoRows) {
		return false, 0, 0, fmt.Errorf("%w: device %s", store.ErrNotFound, ref.Device)
	}
	if err != nil {
		return false, 0, 0, wrap("read device", err)
	}
	return revokedAt != 0, mailSeq, mailCount, nil
}

// activeDevice locks a device and fails unless it exists and is not revoked.
func activeDevice(ctx context.Context, tx Querier, ref store.DeviceRef) (mailSeq, mailCount int64, err error) {
	revoked, mailSeq, mailCount, err := lockDevice(ctx, tx, ref)
	if err != nil {
		return 0, 0, err
	}
	if revoked {
		return 0, 0, fmt.Errorf("%w: device %s", store.ErrRevoked, ref.Device)
	}
	return mailSeq, mailCount, nil
}

// RevokeDevice implements store.Devices.
func (s *Store) RevokeDevice(ctx context.Context, ref store.DeviceRef, at time.Time) error {
	if err := validRef(ref); err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("%w: revocation time is zero", store.ErrInvalid)
	}
	return s.w.doSync(ctx, deviceKey(ref), func(ctx context.Context, tx *batchTx) error {
		revoked, _, _, err := lockDevice(ctx, tx, ref)
		if err != nil || revoked {
			return err
		}
		if s.cache != nil {
			s.cache.forgetMembers()
		}
		args := []any{string(ref.Account), ref.Device[:]}
		if _, err := tx.Exec(ctx, qRevokeDevice, nanos(at), args[0], args[1]); err != nil {
			return fmt.Errorf("failed to revoke device: %w", err)
		}
		for _, q := range []string{qDeleteDeviceKeyPackages, qDeleteDeviceMailbox, qDeleteDeviceMemberships, qResetDeviceMailboxCount} {
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return fmt.Errorf("failed to revoke device: %w", err)
			}
		}
		return nil
	})
}

// deviceKey is the writer shard key of a device.
func deviceKey(ref store.DeviceRef) string { return string(ref.Account) }

// scanUsername reads a username row.
func scanUsername(row Row) (store.Username, error) {
	var u store.Username
	var account string
	var created int64
	if err := row.Scan(&u.Name, &account, &u.Claim, &created); err != nil {
		return store.Username{}, err
	}
	u.Account, u.CreatedAt = identity.AccountID(account), fromNanos(created)
	return u, nil
}

// ClaimUsername implements store.Usernames.
func (s *Store) ClaimUsername(ctx context.Context, u store.Username) error {
	if u.Name == "" || len(u.Name) > maxUsernameLen || u.Account == "" {
		return fmt.Errorf("%w: username must be 1..%d bytes", store.ErrInvalid, maxUsernameLen)
	}
	return s.w.do(ctx, string(u.Account), func(ctx context.Context, tx *batchTx) error {
		ok, err := exists(ctx, tx, qAccountExists, string(u.Account))
		if err != nil {
			return wrap("look up account", err)
		}
		if !ok {
			return fmt.Errorf("%w: account %s", store.ErrNotFound, u.Account)
		}
		cur, err := scanUsername(tx.QueryRow(ctx, qSelectUsernameByName, u.Name))
		switch {
		case err == nil && cur.Account != u.Account:
			return fmt.Errorf("%w: username taken", store.ErrExists)
		case err == nil:
			if _, err := tx.Exec(ctx, qUpdateUsernameClaim, u.Claim, nanos(u.CreatedAt), u.Name); err != nil {
				return fmt.Errorf("failed to update username: %w", err)
			}
			return nil
		case !errors.Is(err, ErrNoRows):
			return wrap("look up username", err)
		}
		if _, err := tx.Exec(ctx, qDeleteAccountUsername, string(u.Account)); err != nil {
			return fmt.Errorf("failed to release previous username: %w", err)
		}
		return s.insert(ctx, tx, "username", qInsertUsername, u.Name, string(u.Account), u.Claim, nanos(u.CreatedAt))
	})
}

// ReleaseUsername implements store.Usernames.
func (s *Store) ReleaseUsername(ctx context.Context, account identity.AccountID, name string) error {
	return s.w.do(ctx, string(account), func(ctx context.Context, tx *batchTx) error {
		n, err := tx.Exec(ctx, qDeleteUsername, name, string(account))
		if err != nil {
			return fmt.Errorf("failed to release username: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: username not held by account", store.ErrNotFound)
		}
		return nil
	})
}

// LookupUsername implements store.Usernames.
func (s *Store) LookupUsername(ctx context.Context, name string) (store.Username, error) {
	u, err := scanUsername(s.reader().QueryRow(ctx, qSelectUsernameByName, name))
	if errors.Is(err, ErrNoRows) {
		return u, fmt.Errorf("%w: username", store.ErrNotFound)
	}
	return u, wrap("look up username", err)
}

// UsernameOf implements store.Usernames.
func (s *Store) UsernameOf(ctx context.Context, account identity.AccountID) (store.Username, error) {
	u, err := scanUsername(s.reader().QueryRow(ctx, qSelectUsernameByAccount, string(account)))
	if errors.Is(err, ErrNoRows) {
		return u, fmt.Errorf("%w: username of %s", store.ErrNotFound, account)
	}
	return u, wrap("look up username", err)
}

// CreateInvite implements store.Invites.
func (s *Store) CreateInvite(ctx context.Context, token store.InviteToken, at time.Time) error {
	if token == "" || len(token) > maxInviteLen {
		return fmt.Errorf("%w: invite token must be 1..%d bytes", store.ErrInvalid, maxInviteLen)
	}
	return s.w.do(ctx, string(token), func(ctx context.Context, tx *batchTx) error {
		var used int64
		err := tx.QueryRow(ctx, qSelectInvite, string(token)).Scan(&used)
		if err == nil {
			return fmt.Errorf("%w: invite", store.ErrExists)
		}
		if !errors.Is(err, ErrNoRows) {
			return wrap("look up invite", err)
		}
		return s.insert(ctx, tx, "invite", qInsertInvite, string(token), nanos(at))
	})
}

// UseInvite implements store.Invites.
func (s *Store) UseInvite(ctx context.Context, token store.InviteToken, at time.Time) error {
	return s.w.do(ctx, string(token), func(ctx context.Context, tx *batchTx) error {
		return useInvite(ctx, tx, token, at)
	})
}

// useInvite marks an unused invite used, atomically even between servers.
func useInvite(ctx context.Context, tx Querier, token store.InviteToken, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("%w: invite use time is zero", store.ErrInvalid)
	}
	n, err := tx.Exec(ctx, qUseInvite, nanos(at), string(token))
	if err != nil {
		return fmt.Errorf("failed to use invite: %w", err)
	}
	if n == 1 {
		return nil
	}
	var used int64
	err = tx.QueryRow(ctx, qSelectInvite, string(token)).Scan(&used)
	if errors.Is(err, ErrNoRows) {
		return fmt.Errorf("%w: invite", store.ErrNotFound)
	}
	if err != nil {
		return wrap("look up invite", err)
	}
	return store.ErrInviteUsed
}
