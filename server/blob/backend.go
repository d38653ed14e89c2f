package blob

import (
	"context"
	"io"
)

// Backend stores blob bytes. The [Handler] serialises all operations on one
// blob, so implementations need not guard against concurrent use of the same
// id (different ids are used concurrently).
type Backend interface {
	// SegmentSize is how many bytes the handler collects before each
	// Append (the last append of a request may be shorter). It bounds the
	// handler's buffer memory per upload.
	SegmentSize() int
	// OpenAppend prepares to append to an unfinished blob at offset,
	// discarding anything stored at or beyond offset (left over from an
	// append that was not recorded). Offset 0 on a new id creates it.
	OpenAppend(ctx context.Context, id ID, offset int64) (Appender, error)
	// Finish marks a blob whose bytes [0, size) are all appended as
	// complete.
	Finish(ctx context.Context, id ID, size int64) error
	// Open returns a reader of a finished blob of the given size.
	Open(ctx context.Context, id ID, size int64) (io.ReadSeekCloser, error)
	// Delete removes a blob, finished or not; a missing blob is no error.
	Delete(ctx context.Context, id ID) error
}

// Appender appends to one blob during one request.
type Appender interface {
	// Append stores p after the bytes appended so far. On error the
	// appender is unusable and nothing from this call counts as stored.
	Append(p []byte) error
	// Sync makes everything appended so far durable; the handler records
	// the new offset only after it returns.
	Sync() error
	// Close makes everything appended durable and releases resources.
	Close() error
}
