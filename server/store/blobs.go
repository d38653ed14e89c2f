package store

import (
	"context"
	"errors"
	"time"

	"github.com/parley-im/parley/identity"
)

// BlobIDSize is the size of a blob id.
const BlobIDSize = 32

// BlobID names a blob of the blob service (package server/blob).
type BlobID [BlobIDSize]byte

// Blob is the blob service's record of one uploaded ciphertext. The bytes
// themselves live in the service's storage (a folder or S3); the record says
// whose they are and how far the upload got.
type Blob struct {
	ID    BlobID
	Owner identity.AccountID // counted against this account's quota
	// Size is the declared size; the upload is complete at Offset == Size.
	Size int64
	// Offset is how many bytes are durably stored.
	Offset int64
	// Checksum is the marshalled state of the running checksum over bytes
	// [0, Offset), so that a resumed upload continues it.
	Checksum []byte
	Created  time.Time
	Updated  time.Time // last recorded append (or creation)
	Finished time.Time // zero until finished
}

// BlobQuota limits what one account holds; a zero field means no limit.
type BlobQuota struct {
	Bytes int64 // sum of the declared sizes of its blobs, finished or not
	Blobs int   // number of blobs
}

// Errors of [Blobs].
var (
	// ErrBlobQuota means a new blob would take its owner over the quota.
	ErrBlobQuota = errors.New("store: blob quota exceeded")
	// ErrBlobMoved means a blob's stored offset is no longer the one an
	// update expected: another request (perhaps on another server process)
	// recorded an append in between.
	ErrBlobMoved = errors.New("store: blob offset moved")
)

// Blobs keeps the records of the blob service, so that several server
// processes on one database share them. Every write is durable before it
// returns.
type Blobs interface {
	// CreateBlob stores a new record unless it would take the owner's
	// blobs over quota (ErrBlobQuota); the check and the insert are atomic
	// across processes. A duplicate id is ErrExists.
	CreateBlob(ctx context.Context, b Blob, quota BlobQuota) error
	// Blob returns a record or ErrNotFound.
	Blob(ctx context.Context, id BlobID) (Blob, error)
	// UpdateBlob stores b's Offset, Checksum, Updated and Finished if the
	// stored offset is still prevOffset (else ErrBlobMoved; ErrNotFound if
	// there is no record). Owner, Size and Created never change.
	UpdateBlob(ctx context.Context, b Blob, prevOffset int64) error
	// DeleteBlob removes a record and its quota use; a missing record is
	// not an error.
	DeleteBlob(ctx context.Context, id BlobID) error
	// ExpiredBlobs returns up to limit ids of blobs unfinished and not
	// updated since idleBefore, or finished before finishedBefore.
	ExpiredBlobs(ctx context.Context, idleBefore, finishedBefore time.Time, limit int) ([]BlobID, error)
}
