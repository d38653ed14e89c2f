package archive

import "context"

// Remote stores the archive's opaque blobs: the account's slice of the
// server's blob storage. Every blob is ciphertext; names are random
// ([BlobName]). Implementations must be safe for concurrent use.
type Remote interface {
	// Put stores data under name, replacing any blob of that name.
	Put(ctx context.Context, name BlobName, data []byte) error
	// Get returns the blob stored under name, or an error wrapping
	// [ErrNotFound].
	Get(ctx context.Context, name BlobName) ([]byte, error)
	// List returns the names of the blobs whose names start with prefix
	// ([SegmentPrefix] or [KeyRecordPrefix]), in any order.
	List(ctx context.Context, prefix string) ([]BlobName, error)
	// Delete removes the blob stored under name; deleting a missing blob
	// is not an error.
	Delete(ctx context.Context, name BlobName) error
}
