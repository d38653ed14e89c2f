package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/parley-im/parley/server/blob"
)

// archiveOptions are the cloud-history flags of `parley serve`.
type archiveOptions struct {
	quota string
}

func archiveFlags(f *pflag.FlagSet, o *archiveOptions) {
	f.StringVar(&o.quota, "archive-quota", "4GiB", "most bytes of encrypted history one account may keep on the server (-1: unlimited)")
}

// setupArchive builds the cloud-history storage mounted at /v1/archive/
// (opaque per-account segments and key records, and recovery-bundle
// slots). Its records are kept in <blob dir>/archive; the blobs' bytes go
// where file transfers go (the folder, or S3 under <s3-prefix>archive/).
// It is authorised by the same device-signed tokens as file transfer.
func setupArchive(ctx context.Context, o *blobOptions, blobDir string, devs blob.DeviceStore, log *slog.Logger) (http.Handler, error) {
	quota, err := parseSize(o.archive.quota)
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid --archive-quota %q", o.archive.quota)}
	}
	if quota == 0 {
		return nil, usageError{errors.New("--archive-quota must be positive or -1")}
	}
	cfg := blob.ArchiveConfig{Dir: filepath.Join(blobDir, "archive"), Auth: &blob.DeviceAuthorizer{Store: devs}, Quota: quota}
	storage := "local"
	if o.s3Endpoint != "" {
		s3, err := blob.NewS3(ctx, blob.S3Config{
			Endpoint: o.s3Endpoint, Region: o.s3Region, Bucket: o.s3Bucket,
			AccessKey: o.s3AccessKey, SecretKey: o.s3SecretKey, Prefix: o.s3Prefix + "archive/", Insecure: o.s3Insecure,
		})
		if err != nil {
			return nil, fmt.Errorf("failed to connect to S3 for the history archive: %w", err)
		}
		cfg.Backend, storage = s3, "s3"
	}
	h, err := blob.NewArchive(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to open the history archive folder: %w", err)
	}
	log.Info("cloud history enabled", "storage", storage, "quota", quota)
	return h, nil
}
