package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// KeyPackagePrivate is the private part of one of this device's KeyPackages
// (its init and leaf HPKE keys), opaque to the store and sealed at rest.
type KeyPackagePrivate []byte

const (
	qInsertKeyPackage = `INSERT INTO key_packages (ref, private, created_at) VALUES (?, ?, ?)
ON CONFLICT (ref) DO UPDATE SET private = excluded.private, created_at = excluded.created_at`
	qSelectKeyPackage = `SELECT private FROM key_packages WHERE ref = ?`
	qDeleteKeyPackage = `DELETE FROM key_packages WHERE ref = ?`
	qCountKeyPackages = `SELECT COUNT(*) FROM key_packages`
)

func keyPackageRef(ref KeyPackageRef) rowRef {
	return rowRef{table: "key_packages", column: "private", key: []byte(ref)}
}

func (ref KeyPackageRef) valid() bool { return len(ref) > 0 && len(ref) <= MaxKeyPackageRefLen }

// PutKeyPackage stores the private part of the KeyPackage ref.
func (tx *Tx) PutKeyPackage(ref KeyPackageRef, priv KeyPackagePrivate, now time.Time) error {
	if !ref.valid() || len(priv) == 0 {
		return invalidf("key package needs a reference and a private part")
	}
	sealed, err := tx.s.seal.seal(keyPackageRef(ref), priv)
	if err != nil {
		return err
	}
	if _, err := tx.exec(qInsertKeyPackage, []byte(ref), sealed, unixNano(now)); err != nil {
		return fmt.Errorf("failed to store key package: %w", err)
	}
	return nil
}

// KeyPackage returns the private part of KeyPackage ref as this transaction
// sees it, or ErrNotFound.
func (tx *Tx) KeyPackage(ref KeyPackageRef) (KeyPackagePrivate, error) {
	return tx.s.scanKeyPackage(ref, tx.queryRow(qSelectKeyPackage, []byte(ref)))
}

// TakeKeyPackage returns the private part of KeyPackage ref and deletes it:
// a one-time KeyPackage is used once. Do it in the transaction that stores
// the group joined with it.
func (tx *Tx) TakeKeyPackage(ref KeyPackageRef) (KeyPackagePrivate, error) {
	priv, err := tx.KeyPackage(ref)
	if err != nil {
		return nil, err
	}
	return priv, tx.DeleteKeyPackage(ref)
}

// DeleteKeyPackage deletes KeyPackage ref; deleting a missing one is not an
// error.
func (tx *Tx) DeleteKeyPackage(ref KeyPackageRef) error {
	if _, err := tx.exec(qDeleteKeyPackage, []byte(ref)); err != nil {
		return fmt.Errorf("failed to delete key package: %w", err)
	}
	return nil
}

// KeyPackage returns the private part of KeyPackage ref, or ErrNotFound.
func (s *Store) KeyPackage(ctx context.Context, ref KeyPackageRef) (KeyPackagePrivate, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	return s.scanKeyPackage(ref, q.QueryRowContext(ctx, qSelectKeyPackage, []byte(ref)))
}

// KeyPackageCount returns how many KeyPackage private parts are stored.
func (s *Store) KeyPackageCount(ctx context.Context) (int, error) {
	q, err := s.reader()
	if err != nil {
		return 0, err
	}
	var n int
	if err := q.QueryRowContext(ctx, qCountKeyPackages).Scan(&n); err != nil {
		return 0, fmt.Errorf("failed to count key packages: %w", err)
	}
	return n, nil
}

func (s *Store) scanKeyPackage(ref KeyPackageRef, r scanner) (KeyPackagePrivate, error) {
	var sealed []byte
	if err := r.Scan(&sealed); errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("failed to read key package: %w", err)
	}
	return s.seal.open(keyPackageRef(ref), sealed)
}
