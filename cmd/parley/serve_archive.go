package main

import (
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/parley-im/parley/server/blob"
)

// setupArchive builds the cloud-history storage mounted at /v1/archive/
// (opaque per-account segments and key records, and recovery-bundle
// slots), kept in <blob dir>/archive and authorised by the same
// device-signed tokens as file transfer.
func setupArchive(blobDir string, devs blob.DeviceStore) (http.Handler, error) {
	h, err := blob.NewArchiveHandler(filepath.Join(blobDir, "archive"), &blob.DeviceAuthorizer{Store: devs})
	if err != nil {
		return nil, fmt.Errorf("failed to open the history archive folder: %w", err)
	}
	return h, nil
}
