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
	qLockBlobUsage   = `SELECT bytes, blobs FROM blob_usage WHERE owner = ? @FOR_UPDATE@`
	qInsertBlobUsage = `INSERT INTO blob_usage (owner, bytes, blobs) VALUES (?, ?, 1) ON CONFLICT DO NOTHING`
	qAddBlobUsage    = `UPDATE blob_usage SET bytes = bytes + ?, blobs = blobs + 1
		WHERE owner = ? AND (? = 0 OR bytes + ? <= ?) AND (? = 0 OR blobs < ?)`
	qSubBlobUsage  = `UPDATE blob_usage SET bytes = bytes - ?, blobs = blobs - 1 WHERE owner = ?`
	qDropBlobUsage = `DELETE FROM blob_usage WHERE owner = ? AND blobs <= 0`
	qInsertBlob    = `INSERT INTO blobs (blob_id, owner, size, stored, checksum, created_at, updated_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qSelectBlob = `SELECT owner, size, stored, checksum, created_at, updated_at, finished_at
		FROM blobs WHERE blob_id = ?`
	qUpdateBlob = `UPDATE blobs SET stored = ?, checksum = ?, updated_at = ?, finished_at = ?
		WHERE blob_id = ? AND stored = ?`
	qBlobExists   = `SELECT 1 FROM blobs WHERE blob_id = ?`
	qDeleteBlob   = `DELETE FROM blobs WHERE blob_id = ?`
	qExpiredBlobs = `SELECT blob_id FROM blobs
		WHERE (finished_at = 0 AND updated_at < ?) OR (finished_at <> 0 AND finished_at < ?)
		ORDER BY finished_at, updated_at LIMIT ?`
	maxBlobChecksum = 1 << 10
)

func validBlob(b store.Blob) error {
	if b.ID == (store.BlobID{}) || b.Owner == "" || b.Size < 0 || b.Offset < 0 || b.Offset > b.Size ||
		len(b.Checksum) > maxBlobChecksum || b.Created.IsZero() || b.Updated.IsZero() {
		return fmt.Errorf("%w: blob record", store.ErrInvalid)
	}
	return nil
}

// CreateBlob implements store.Blobs.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, quota store.BlobQuota) error {
	if err := validBlob(b); err != nil {
		return err
	}
	if quota.Bytes < 0 || quota.Blobs < 0 {
		return fmt.Errorf("%w: negative quota", store.ErrInvalid)
	}
	owner := string(b.Owner)
	return s.w.doSync(ctx, owner, func(ctx context.Context, tx *batchTx) error {
		// Check first (locking the owner's row on PostgreSQL), so that a
		// refusal comes before any write.
		var bytes, blobs int64
		err := tx.QueryRow(ctx, qLockBlobUsage, owner).Scan(&bytes, &blobs)
		switch {
		case errors.Is(err, ErrNoRows):
		case err != nil:
			return wrap("read blob quota", err)
		case quota.Bytes > 0 && bytes+b.Size > quota.Bytes:
			return fmt.Errorf("%w: %d of %d bytes in use, %d more requested", store.ErrBlobQuota, bytes, quota.Bytes, b.Size)
		case quota.Blobs > 0 && blobs >= int64(quota.Blobs):
			return fmt.Errorf("%w: %d of %d blobs in use", store.ErrBlobQuota, blobs, quota.Blobs)
		}
		if errors.Is(err, ErrNoRows) {
			if quota.Bytes > 0 && b.Size > quota.Bytes {
				return fmt.Errorf("%w: %d bytes requested, quota %d", store.ErrBlobQuota, b.Size, quota.Bytes)
			}
			n, err := tx.Exec(ctx, qInsertBlobUsage, owner, b.Size)
			if err != nil {
				return wrap("record blob quota", err)
			}
			if n == 0 {
				// Another process created the row since: go through the
				// locked path when run again.
				return fmt.Errorf("failed to record blob quota: %w", errRetryQuota)
			}
		} else {
			n, err := tx.Exec(ctx, qAddBlobUsage, b.Size, owner, quota.Bytes, b.Size, quota.Bytes, quota.Blobs, quota.Blobs)
			if err != nil {
				return wrap("record blob quota", err)
			}
			if n == 0 {
				return fmt.Errorf("%w: changed while checked", store.ErrBlobQuota)
			}
		}
		return s.insert(ctx, tx, "blob", qInsertBlob, b.ID[:], owner, b.Size, b.Offset, nonNil(b.Checksum),
			nanos(b.Created), nanos(b.Updated), nanos(b.Finished))
	})
}

// errRetryQuota is a database-level failure (so the writer runs the op
// again alone), for a quota row that appeared between read and insert.
var errRetryQuota = errors.New("quota row created concurrently")

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Blob implements store.Blobs.
func (s *Store) Blob(ctx context.Context, id store.BlobID) (store.Blob, error) {
	var (
		owner                      string
		size, stored               int64
		checksum                   []byte
		created, updated, finished int64
	)
	err := s.reader().QueryRow(ctx, qSelectBlob, id[:]).Scan(&owner, &size, &stored, &checksum, &created, &updated, &finished)
	if errors.Is(err, ErrNoRows) {
		return store.Blob{}, store.ErrNotFound
	}
	if err != nil {
		return store.Blob{}, wrap("read blob", err)
	}
	return store.Blob{ID: id, Owner: identity.AccountID(owner), Size: size, Offset: stored, Checksum: checksum,
		Created: fromNanos(created), Updated: fromNanos(updated), Finished: fromNanos(finished)}, nil
}

// UpdateBlob implements store.Blobs.
func (s *Store) UpdateBlob(ctx context.Context, b store.Blob, prevOffset int64) error {
	if b.ID == (store.BlobID{}) || b.Offset < 0 || len(b.Checksum) > maxBlobChecksum || b.Updated.IsZero() {
		return fmt.Errorf("%w: blob record", store.ErrInvalid)
	}
	return s.w.doSync(ctx, string(b.ID[:8]), func(ctx context.Context, tx *batchTx) error {
		n, err := tx.Exec(ctx, qUpdateBlob, b.Offset, nonNil(b.Checksum), nanos(b.Updated), nanos(b.Finished), b.ID[:], prevOffset)
		if err != nil {
			return wrap("update blob", err)
		}
		if n > 0 {
			return nil
		}
		ok, err := exists(ctx, tx, qBlobExists, b.ID[:])
		switch {
		case err != nil:
			return wrap("update blob", err)
		case !ok:
			return store.ErrNotFound
		}
		return fmt.Errorf("%w: expected offset %d", store.ErrBlobMoved, prevOffset)
	})
}

// DeleteBlob implements store.Blobs.
func (s *Store) DeleteBlob(ctx context.Context, id store.BlobID) error {
	return s.w.doSync(ctx, string(id[:8]), func(ctx context.Context, tx *batchTx) error {
		var (
			owner                      string
			size, stored               int64
			checksum                   []byte
			created, updated, finished int64
		)
		err := tx.QueryRow(ctx, qSelectBlob, id[:]).Scan(&owner, &size, &stored, &checksum, &created, &updated, &finished)
		if errors.Is(err, ErrNoRows) {
			return nil
		}
		if err != nil {
			return wrap("read blob", err)
		}
		n, err := tx.Exec(ctx, qDeleteBlob, id[:])
		if err != nil {
			return wrap("delete blob", err)
		}
		if n == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, qSubBlobUsage, size, owner); err != nil {
			return wrap("release blob quota", err)
		}
		if _, err := tx.Exec(ctx, qDropBlobUsage, owner); err != nil {
			return wrap("release blob quota", err)
		}
		return nil
	})
}

// ExpiredBlobs implements store.Blobs.
func (s *Store) ExpiredBlobs(ctx context.Context, idleBefore, finishedBefore time.Time, limit int) ([]store.BlobID, error) {
	if limit <= 0 || limit > store.MaxReadLimit {
		return nil, fmt.Errorf("%w: limit %d", store.ErrInvalid, limit)
	}
	rows, err := s.reader().Query(ctx, qExpiredBlobs, nanos(idleBefore), nanos(finishedBefore), limit)
	if err != nil {
		return nil, wrap("list expired blobs", err)
	}
	defer rows.Close()
	var out []store.BlobID
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, wrap("list expired blobs", err)
		}
		if len(raw) != store.BlobIDSize {
			return nil, fmt.Errorf("failed to list expired blobs: stored id of %d bytes", len(raw))
		}
		out = append(out, store.BlobID(raw))
	}
	return out, wrap("list expired blobs", rows.Err())
}
