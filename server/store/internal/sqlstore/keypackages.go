package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

const (
	qInsertKeyPackage = `INSERT INTO key_packages (account_id, device_id, last_resort, data) VALUES (?, ?, ?, ?)`
	qDeleteLastResort = `DELETE FROM key_packages WHERE account_id = ? AND device_id = ? AND last_resort = 1`
	// qLockActiveDevices lists (and on PostgreSQL locks) the devices that
	// can be claimed, so concurrent claims for one account are serialized.
	qLockActiveDevices = `SELECT device_id FROM devices WHERE account_id = ? AND revoked_at = 0
		ORDER BY device_id @FOR_UPDATE@`
	qFirstKeyPackage = `SELECT kp_id, data FROM key_packages
		WHERE account_id = ? AND device_id = ? AND last_resort = ? ORDER BY kp_id LIMIT 1`
	qDeleteKeyPackage = `DELETE FROM key_packages WHERE kp_id = ?`
	qCountKeyPackages = `SELECT COUNT(*) FROM key_packages WHERE account_id = ? AND device_id = ? AND last_resort = 0`
)

// UploadKeyPackages implements store.KeyPackages.
func (s *Store) UploadKeyPackages(ctx context.Context, dev store.DeviceRef, pkgs []store.KeyPackage) error {
	if err := validRef(dev); err != nil {
		return err
	}
	if len(pkgs) == 0 || len(pkgs) > store.MaxUploadBatch {
		return fmt.Errorf("%w: upload 1..%d key packages", store.ErrInvalid, store.MaxUploadBatch)
	}
	for _, p := range pkgs {
		if len(p.Data) == 0 {
			return fmt.Errorf("%w: empty key package", store.ErrInvalid)
		}
	}
	return s.w.do(ctx, deviceKey(dev), func(ctx context.Context, tx *batchTx) error {
		if _, _, err := activeDevice(ctx, tx, dev); err != nil {
			return err
		}
		for _, p := range pkgs {
			lastResort := 0
			if p.LastResort {
				lastResort = 1
				if _, err := tx.Exec(ctx, qDeleteLastResort, string(dev.Account), dev.Device[:]); err != nil {
					return fmt.Errorf("failed to replace last-resort key package: %w", err)
				}
			}
			if _, err := tx.Exec(ctx, qInsertKeyPackage, string(dev.Account), dev.Device[:], lastResort, p.Data); err != nil {
				return fmt.Errorf("failed to store key package: %w", err)
			}
		}
		return nil
	})
}

// ClaimKeyPackages implements store.KeyPackages.
func (s *Store) ClaimKeyPackages(ctx context.Context, account identity.AccountID) ([]store.ClaimedKeyPackage, error) {
	var out []store.ClaimedKeyPackage
	err := s.w.do(ctx, string(account), func(ctx context.Context, tx *batchTx) error {
		out = out[:0]
		ok, err := exists(ctx, tx, qAccountExists, string(account))
		if err != nil {
			return wrap("look up account", err)
		}
		if !ok {
			return fmt.Errorf("%w: account %s", store.ErrNotFound, account)
		}
		devices, err := collectDeviceIDs(ctx, tx, qLockActiveDevices, string(account))
		if err != nil {
			return err
		}
		for _, d := range devices {
			for _, lastResort := range []int{0, 1} {
				var id int64
				var data []byte
				err := tx.QueryRow(ctx, qFirstKeyPackage, string(account), d[:], lastResort).Scan(&id, &data)
				if errors.Is(err, ErrNoRows) {
					continue
				}
				if err != nil {
					return wrap("read key package", err)
				}
				if lastResort == 0 {
					if _, err := tx.Exec(ctx, qDeleteKeyPackage, id); err != nil {
						return fmt.Errorf("failed to claim key package: %w", err)
					}
				}
				out = append(out, store.ClaimedKeyPackage{Device: d, Data: data, LastResort: lastResort == 1})
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// collectDeviceIDs runs a query returning device ids and reads them all.
func collectDeviceIDs(ctx context.Context, q Querier, query string, args ...any) ([]identity.DeviceID, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, wrap("list devices", err)
	}
	defer rows.Close()
	var out []identity.DeviceID
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, wrap("list devices", err)
		}
		d, err := devID(b)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, wrap("list devices", rows.Err())
}

// CountKeyPackages implements store.KeyPackages.
func (s *Store) CountKeyPackages(ctx context.Context, dev store.DeviceRef) (int, error) {
	var n int64
	if err := s.reader().QueryRow(ctx, qCountKeyPackages, string(dev.Account), dev.Device[:]).Scan(&n); err != nil {
		return 0, wrap("count key packages", err)
	}
	return int(n), nil
}
