package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultS3SegmentSize is the default size of the objects an S3 blob is
// stored as.
const DefaultS3SegmentSize = 8 << 20

// S3Config configures the S3-compatible backend.
type S3Config struct {
	Endpoint  string // host[:port], such as "s3.example.org"
	Region    string
	Bucket    string // created if it does not exist
	AccessKey string
	SecretKey string
	// Prefix is prepended to every object name (such as "parley/blobs/").
	Prefix string
	// Insecure uses plain HTTP (for a local test server only).
	Insecure bool
	// SegmentSize is the size of each stored object but the last of a
	// blob (default DefaultS3SegmentSize). It is also the handler's buffer
	// per concurrent upload.
	SegmentSize int
}

// S3 stores each blob as a series of objects "<prefix><id>/<offset>", one
// per appended segment, and serves downloads by reading across them. Storing
// segments as they arrive, instead of an S3 multipart upload, keeps memory
// bounded by one segment and avoids multipart's 5 MiB minimum part size,
// which an interrupted append (a short segment in the middle) would break.
type S3 struct {
	client  *minio.Client
	bucket  string
	prefix  string
	segment int
}

// NewS3 connects to S3-compatible storage.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: !cfg.Insecure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create S3 client: %w", err)
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("failed to check S3 bucket: %w", err)
	}
	if !ok {
		if err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("failed to create S3 bucket: %w", err)
		}
	}
	seg := cfg.SegmentSize
	if seg <= 0 {
		seg = DefaultS3SegmentSize
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, segment: seg}, nil
}

// SegmentSize implements [Backend].
func (s *S3) SegmentSize() int { return s.segment }

type s3Segment struct {
	key        string
	start, end int64 // [start, end)
}

func (s *S3) dir(id ID) string { return s.prefix + id.String() + "/" }

func (s *S3) key(id ID, offset int64) string { return fmt.Sprintf("%s%020d", s.dir(id), offset) }

// segments lists a blob's objects in offset order.
func (s *S3) segments(ctx context.Context, id ID) ([]s3Segment, error) {
	var segs []s3Segment
	dir := s.dir(id)
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("failed to list blob segments: %w", obj.Err)
		}
		off, err := strconv.ParseInt(strings.TrimPrefix(obj.Key, dir), 10, 64)
		if err != nil || off < 0 {
			return nil, fmt.Errorf("%w: unexpected object %q", ErrCorrupt, obj.Key)
		}
		segs = append(segs, s3Segment{key: obj.Key, start: off, end: off + obj.Size})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	return segs, nil
}

// contiguous checks that segs cover exactly [0, size).
func contiguous(segs []s3Segment, size int64) error {
	at := int64(0)
	for _, sg := range segs {
		if sg.start != at {
			return fmt.Errorf("%w: segment at %d, expected %d", ErrCorrupt, sg.start, at)
		}
		at = sg.end
	}
	if at != size {
		return fmt.Errorf("%w: segments cover %d bytes, expected %d", ErrCorrupt, at, size)
	}
	return nil
}

// OpenAppend implements [Backend].
func (s *S3) OpenAppend(ctx context.Context, id ID, offset int64) (Appender, error) {
	segs, err := s.segments(ctx, id)
	if err != nil {
		return nil, err
	}
	keep := segs[:0]
	for _, sg := range segs {
		if sg.start >= offset {
			if err := s.client.RemoveObject(ctx, s.bucket, sg.key, minio.RemoveObjectOptions{}); err != nil {
				return nil, fmt.Errorf("failed to drop stale segment: %w", err)
			}
			continue
		}
		keep = append(keep, sg)
	}
	if err := contiguous(keep, offset); err != nil {
		return nil, err
	}
	return &s3Appender{s: s, ctx: ctx, id: id, offset: offset}, nil
}

type s3Appender struct {
	s      *S3
	ctx    context.Context
	id     ID
	offset int64
}

func (a *s3Appender) Append(p []byte) error {
	_, err := a.s.client.PutObject(a.ctx, a.s.bucket, a.s.key(a.id, a.offset), bytes.NewReader(p), int64(len(p)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("failed to store segment: %w", err)
	}
	a.offset += int64(len(p))
	return nil
}

// Sync implements [Appender]; a stored object is already durable.
func (a *s3Appender) Sync() error { return nil }

// Close implements [Appender]; a stored object is already durable.
func (a *s3Appender) Close() error { return nil }

// Finish implements [Backend]: the segments must cover the whole blob.
func (s *S3) Finish(ctx context.Context, id ID, size int64) error {
	segs, err := s.segments(ctx, id)
	if err != nil {
		return err
	}
	return contiguous(segs, size)
}

// Open implements [Backend].
func (s *S3) Open(ctx context.Context, id ID, size int64) (io.ReadSeekCloser, error) {
	segs, err := s.segments(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := contiguous(segs, size); err != nil {
		return nil, err
	}
	return &s3Reader{s: s, ctx: ctx, segs: segs, size: size}, nil
}

// Delete implements [Backend].
func (s *S3) Delete(ctx context.Context, id ID) error {
	segs, err := s.segments(ctx, id)
	if err != nil {
		return err
	}
	for _, sg := range segs {
		if err := s.client.RemoveObject(ctx, s.bucket, sg.key, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("failed to delete blob segment: %w", err)
		}
	}
	return nil
}

// s3Reader reads a blob across its segments, one ranged GET per segment
// (or per seek).
type s3Reader struct {
	s    *S3
	ctx  context.Context
	segs []s3Segment
	size int64
	pos  int64
	cur  io.ReadCloser // open at pos, until end (the end of its segment)
	end  int64
}

func (r *s3Reader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.cur == nil {
		i := sort.Search(len(r.segs), func(i int) bool { return r.segs[i].end > r.pos })
		sg := r.segs[i]
		var opts minio.GetObjectOptions
		if err := opts.SetRange(r.pos-sg.start, sg.end-sg.start-1); err != nil {
			return 0, fmt.Errorf("failed to read blob: %w", err)
		}
		obj, err := r.s.client.GetObject(r.ctx, r.s.bucket, sg.key, opts)
		if err != nil {
			return 0, fmt.Errorf("failed to read blob: %w", err)
		}
		r.cur, r.end = obj, sg.end
	}
	if max := r.end - r.pos; int64(len(p)) > max {
		p = p[:max]
	}
	n, err := r.cur.Read(p)
	r.pos += int64(n)
	if r.pos == r.end {
		_ = r.cur.Close()
		r.cur = nil
		err = nil
	}
	if errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%w: segment shorter than listed", ErrCorrupt)
	}
	if err != nil {
		return n, fmt.Errorf("failed to read blob: %w", err)
	}
	return n, nil
}

func (r *s3Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return r.pos, fmt.Errorf("%w: bad whence", ErrBadRequest)
	}
	if offset < 0 {
		return r.pos, fmt.Errorf("%w: negative position", ErrBadRequest)
	}
	if offset != r.pos && r.cur != nil {
		_ = r.cur.Close()
		r.cur = nil
	}
	r.pos = offset
	return offset, nil
}

func (r *s3Reader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}
