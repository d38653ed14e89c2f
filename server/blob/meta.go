package blob

import (
	"context"
	"time"

	"github.com/parley-im/parley/identity"
)

// Meta is the service's record of one blob.
type Meta struct {
	ID    ID
	Owner identity.AccountID // counted against this account's quota
	// Size is the declared size; the upload is complete at Offset == Size.
	Size   int64
	Offset int64
	// HashState is the marshalled state of the CRC-64/NVME over bytes
	// [0, Offset), so a resumed upload continues the server's checksum.
	HashState []byte
	Created   time.Time
	Updated   time.Time // last accepted append (or creation)
	Finished  time.Time // zero until finished
}

// Quota limits what one account holds; a zero field means no limit.
type Quota struct {
	Bytes int64 // sum of declared sizes
	Blobs int   // number of blobs (so empty blobs cannot pile up)
}

// MetaStore keeps blob records. Implementations must be safe for concurrent
// use; the [Handler] serialises operations on one blob itself.
type MetaStore interface {
	// Create stores a new record unless it would take the owner's blobs
	// (finished or not, counted at their declared size) over the quota, in
	// which case it returns ErrQuota. The check and the insert must be
	// atomic.
	Create(ctx context.Context, m Meta, quota Quota) error
	// Get returns a record or ErrNotFound.
	Get(ctx context.Context, id ID) (Meta, error)
	// Update replaces an existing record's Offset, HashState, Updated and
	// Finished (ErrNotFound if there is none) if its stored offset is still
	// prevOffset; otherwise (another server process recorded an append in
	// between) it returns ErrOffset and changes nothing.
	Update(ctx context.Context, m Meta, prevOffset int64) error
	// Delete removes a record; deleting a missing record is not an error.
	Delete(ctx context.Context, id ID) error
	// Expired returns up to limit ids of blobs unfinished and not updated
	// since idleBefore, or finished before finishedBefore.
	Expired(ctx context.Context, idleBefore, finishedBefore time.Time, limit int) ([]ID, error)
}
