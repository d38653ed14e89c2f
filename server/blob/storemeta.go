package blob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/server/store"
)

// StoreMeta is a [MetaStore] over the homeserver's database (store.Blobs),
// so that several server processes on one PostgreSQL database share the
// blob records, quotas included. The bytes stay in the [Backend]; for more
// than one process that must be storage they all reach (S3).
type StoreMeta struct {
	Store store.Blobs
}

var _ MetaStore = StoreMeta{}

func toRecord(m Meta) store.Blob {
	return store.Blob{ID: store.BlobID(m.ID), Owner: m.Owner, Size: m.Size, Offset: m.Offset, Checksum: m.HashState,
		Created: m.Created, Updated: m.Updated, Finished: m.Finished}
}

// storeErr maps the store's conditions to the service's errors.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrBlobQuota):
		return fmt.Errorf("%w: %v", ErrQuota, err)
	case errors.Is(err, store.ErrBlobMoved):
		return fmt.Errorf("%w: %v", ErrOffset, err)
	case errors.Is(err, store.ErrExists):
		return fmt.Errorf("%w: duplicate blob id", ErrBadRequest)
	}
	return fmt.Errorf("failed to access blob records: %w", err)
}

// Create implements [MetaStore].
func (s StoreMeta) Create(ctx context.Context, m Meta, quota Quota) error {
	return storeErr(s.Store.CreateBlob(ctx, toRecord(m), store.BlobQuota{Bytes: quota.Bytes, Blobs: quota.Blobs}))
}

// Get implements [MetaStore].
func (s StoreMeta) Get(ctx context.Context, id ID) (Meta, error) {
	b, err := s.Store.Blob(ctx, store.BlobID(id))
	if err != nil {
		return Meta{}, storeErr(err)
	}
	return Meta{ID: ID(b.ID), Owner: b.Owner, Size: b.Size, Offset: b.Offset, HashState: b.Checksum,
		Created: b.Created, Updated: b.Updated, Finished: b.Finished}, nil
}

// Update implements [MetaStore].
func (s StoreMeta) Update(ctx context.Context, m Meta, prevOffset int64) error {
	return storeErr(s.Store.UpdateBlob(ctx, toRecord(m), prevOffset))
}

// Delete implements [MetaStore].
func (s StoreMeta) Delete(ctx context.Context, id ID) error {
	return storeErr(s.Store.DeleteBlob(ctx, store.BlobID(id)))
}

// Expired implements [MetaStore].
func (s StoreMeta) Expired(ctx context.Context, idleBefore, finishedBefore time.Time, limit int) ([]ID, error) {
	limit = min(limit, store.MaxReadLimit)
	ids, err := s.Store.ExpiredBlobs(ctx, idleBefore, finishedBefore, limit)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]ID, len(ids))
	for i, id := range ids {
		out[i] = ID(id)
	}
	return out, nil
}
