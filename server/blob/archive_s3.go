package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
)

// With S3 storage the archive keeps everything in the bucket: each blob is
// one object "<prefix>accounts/<account tag>/<s|k>/<name>" and each
// recovery slot one object "<prefix>recovery/<name>" (owner tag, newline,
// bundle). Listing the bucket gives names and sizes, so several server
// processes sharing the bucket see the same archive and count the same
// quota use (recomputed from the listing for every upload).

func (h *ArchiveHandler) s3BlobKey(ref archiveRef) string {
	return h.s3.prefix + "accounts/" + ref.tag + "/" + ref.kind + "/" + ref.name
}

func (h *ArchiveHandler) s3BundleKey(name string) string { return h.s3.prefix + "recovery/" + name }

func isNoSuchKey(err error) bool {
	return minio.ToErrorResponse(err).Code == "NoSuchKey"
}

// s3List returns the names and sizes of an account's blobs of kind.
func (h *ArchiveHandler) s3List(ctx context.Context, tag, kind string) (map[string]int64, error) {
	dir := h.s3.prefix + "accounts/" + tag + "/" + kind + "/"
	out := map[string]int64{}
	for obj := range h.s3.client.ListObjects(ctx, h.s3.bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("failed to list archive: %w", obj.Err)
		}
		if name := strings.TrimPrefix(obj.Key, dir); validHexName(name) {
			out[name] = obj.Size
		}
	}
	return out, nil
}

// s3Total is what an account's blobs take.
func (h *ArchiveHandler) s3Total(ctx context.Context, tag string) (int64, error) {
	var total int64
	for _, kind := range []string{"s", "k"} {
		names, err := h.s3List(ctx, tag, kind)
		if err != nil {
			return 0, err
		}
		for _, n := range names {
			total += n
		}
	}
	return total, nil
}

// s3Store writes data under ref within the account's quota.
func (h *ArchiveHandler) s3Store(ctx context.Context, ref archiveRef, data []byte) error {
	v, _ := h.accts.LoadOrStore(ref.tag, &archiveAccount{})
	a := v.(*archiveAccount)
	a.mu.Lock()
	defer a.mu.Unlock()
	if h.quota > 0 {
		total, err := h.s3Total(ctx, ref.tag)
		if err != nil {
			return err
		}
		names, err := h.s3List(ctx, ref.tag, ref.kind)
		if err != nil {
			return err
		}
		if after := total - names[ref.name] + int64(len(data)); after > h.quota {
			return fmt.Errorf("%w: the account's archive would hold %d bytes, over its quota of %d", ErrQuota, after, h.quota)
		}
	}
	_, err := h.s3.client.PutObject(ctx, h.s3.bucket, h.s3BlobKey(ref), bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("failed to store archive blob: %w", err)
	}
	return nil
}

// s3Get reads an object of at most limit bytes; a missing one is
// ErrNotFound.
func (h *ArchiveHandler) s3Get(ctx context.Context, key string, limit int64) ([]byte, error) {
	obj, err := h.s3.client.GetObject(ctx, h.s3.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to read archive object: %w", err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, limit+1))
	if isNoSuchKey(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read archive object: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: archive object over %d bytes", ErrCorrupt, limit)
	}
	return data, nil
}

func (h *ArchiveHandler) s3Remove(ctx context.Context, key string) error {
	err := h.s3.client.RemoveObject(ctx, h.s3.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("failed to delete archive object: %w", err)
	}
	return nil
}

// readBundle returns a recovery slot's owner tag and bundle.
func (h *ArchiveHandler) readBundle(ctx context.Context, name string) (string, []byte, error) {
	if h.s3 == nil {
		return readBundleFile(h.bundleFile(name))
	}
	data, err := h.s3Get(ctx, h.s3BundleKey(name), ArchiveMaxBundle+2*archiveNameHex)
	if err != nil {
		return "", nil, err
	}
	tag, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return "", nil, ErrCorrupt
	}
	return string(tag), rest, nil
}

// writeBundle stores a recovery slot.
func (h *ArchiveHandler) writeBundle(ctx context.Context, name, owner string, data []byte) error {
	body := append([]byte(owner+"\n"), data...)
	if h.s3 == nil {
		return writeAtomic(h.bundleFile(name), body)
	}
	_, err := h.s3.client.PutObject(ctx, h.s3.bucket, h.s3BundleKey(name), bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("failed to store recovery slot: %w", err)
	}
	return nil
}

// removeBundle deletes a recovery slot.
func (h *ArchiveHandler) removeBundle(ctx context.Context, name string) error {
	if h.s3 == nil {
		if err := removeFile(h.bundleFile(name)); err != nil {
			return fmt.Errorf("failed to delete recovery slot: %w", err)
		}
		return nil
	}
	return h.s3Remove(ctx, h.s3BundleKey(name))
}

// removeFile deletes path; a missing file is fine.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
