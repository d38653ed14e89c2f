package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/server/blob"
	"github.com/parley-im/parley/server/store"
)

// blobSweepInterval is how often expired blobs are deleted.
const blobSweepInterval = 10 * time.Minute

// defaultMaxFileSize is the default largest file (plaintext) accepted.
const defaultMaxFileSize = 4 << 30

// blobOptions are the file transfer flags of `parley serve`.
type blobOptions struct {
	dir                  string
	maxFileSize, quota   string
	s3Endpoint, s3Bucket string
	s3AccessKey          string
	s3SecretKey          string
	s3Region, s3Prefix   string
	s3Insecure           bool
	archive              archiveOptions
}

func blobFlags(f *pflag.FlagSet, o *blobOptions) {
	f.StringVar(&o.dir, "blob-dir", "", "folder for file transfers (default <data>/blobs): the blobs, unless S3 is configured (their records are in the database)")
	f.StringVar(&o.maxFileSize, "max-file-size", "4GiB", "largest file accepted (bytes, or with a KiB/MiB/GiB/TiB or KB/MB/GB/TB suffix)")
	f.StringVar(&o.quota, "blob-quota", "16GiB", "most bytes of files one account may store at once (-1: unlimited)")
	f.StringVar(&o.s3Endpoint, "s3-endpoint", "", "S3-compatible storage host[:port] for files (default: store them in --blob-dir)")
	f.StringVar(&o.s3Bucket, "s3-bucket", "", "S3 bucket (created if missing)")
	f.StringVar(&o.s3AccessKey, "s3-access-key", "", "S3 access key")
	f.StringVar(&o.s3SecretKey, "s3-secret-key", "", "S3 secret key")
	f.StringVar(&o.s3Region, "s3-region", "", "S3 region")
	f.StringVar(&o.s3Prefix, "s3-prefix", "parley/blobs/", "prefix of the S3 object names")
	f.BoolVar(&o.s3Insecure, "s3-insecure", false, "talk plain HTTP to the S3 endpoint (local testing only)")
	archiveFlags(f, &o.archive)
}

// parseSize parses a byte count with an optional binary or decimal suffix.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "-1" {
		return -1, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// setupBlobs builds the blob service mounted at /v1/blobs. Uploads are
// authorised by device-signed tokens checked against the devices in st. The returned stop
// function ends the periodic sweep.
func setupBlobs(ctx context.Context, o *blobOptions, data string, st store.Store, log *slog.Logger) (map[string]http.Handler, func(), error) {
	maxFile, err := parseSize(o.maxFileSize)
	if err != nil || maxFile < 0 {
		return nil, nil, usageError{fmt.Errorf("invalid --max-file-size %q", o.maxFileSize)}
	}
	maxBlob, err := filecrypt.CiphertextSize(maxFile)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("invalid --max-file-size: %w", err)}
	}
	quota, err := parseSize(o.quota)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("invalid --blob-quota %q", o.quota)}
	}
	if quota == 0 {
		return nil, nil, usageError{errors.New("--blob-quota must be positive or -1")}
	}
	dir := o.dir
	if dir == "" {
		dir = filepath.Join(data, "blobs")
	}
	// The blob records live in the database, shared by every server
	// process on it.
	meta := blob.StoreMeta{Store: st}
	if err := importFileMeta(ctx, filepath.Join(dir, "meta"), meta, log); err != nil {
		return nil, nil, err
	}
	var backend blob.Backend
	storage := "local"
	if o.s3Endpoint != "" {
		if o.s3Bucket == "" {
			return nil, nil, usageError{errors.New("--s3-endpoint needs --s3-bucket")}
		}
		s3, err := blob.NewS3(ctx, blob.S3Config{
			Endpoint: o.s3Endpoint, Region: o.s3Region, Bucket: o.s3Bucket,
			AccessKey: o.s3AccessKey, SecretKey: o.s3SecretKey, Prefix: o.s3Prefix, Insecure: o.s3Insecure,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("failed to connect to S3: %w", err)
		}
		backend, storage = s3, "s3"
	} else {
		local, err := blob.NewLocal(filepath.Join(dir, "data"))
		if err != nil {
			return nil, nil, fmt.Errorf("failed to open the blob folder: %w", err)
		}
		backend = local
	}
	h := blob.NewHandler(blob.Config{MaxSize: maxBlob, Quota: quota, Logger: log},
		backend, meta, &blob.DeviceAuthorizer{Store: st})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(blobSweepInterval)
		defer t.Stop()
		for {
			if n, err := h.Sweep(sctx); err != nil && sctx.Err() == nil {
				log.Warn("failed to sweep expired files", "err", err)
			} else if n > 0 {
				log.Info("deleted expired files", "count", n)
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	log.Info("file transfer enabled", "storage", storage, "dir", dir, "max_file_size", maxFile, "quota", quota)
	stop := func() { cancel(); <-done }
	arch, err := setupArchive(ctx, o, dir, st, log)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return map[string]http.Handler{"/v1/blobs": h, "/v1/blobs/": h, "/v1/archive/": arch}, stop, nil
}

// importFileMeta moves blob records that an earlier version kept as JSON
// files in dir into the database, then renames dir to dir+".imported".
func importFileMeta(ctx context.Context, dir string, meta blob.StoreMeta, log *slog.Logger) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	old, err := blob.OpenFileMeta(dir)
	if err != nil {
		return fmt.Errorf("failed to read the blob records to import: %w", err)
	}
	recs := old.All()
	for _, m := range recs {
		fresh := m
		fresh.Offset, fresh.HashState, fresh.Finished = 0, nil, time.Time{}
		err := meta.Create(ctx, fresh, blob.Quota{})
		if errors.Is(err, blob.ErrBadRequest) { // imported before a crash
			continue
		}
		if err == nil && (m.Offset > 0 || !m.Finished.IsZero()) {
			err = meta.Update(ctx, m, 0)
		}
		if err != nil {
			return fmt.Errorf("failed to import blob record: %w", err)
		}
	}
	if err := os.Rename(dir, dir+".imported"); err != nil {
		return fmt.Errorf("failed to import blob records: %w", err)
	}
	log.Info("imported blob records into the database", "count", len(recs), "from", dir)
	return nil
}
