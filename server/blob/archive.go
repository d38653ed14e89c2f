package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/parley-im/parley/identity"
)

// Archive storage (cloud history, see client/archive): per-account opaque
// blobs named "s/<64 hex>" (segments) and "k/<64 hex>" (key records), plus
// a recovery-bundle slot per recovery key.
//
//	PUT    /v1/archive/blobs/{s|k}/{hex}   Bearer T; body = blob → 204
//	GET    /v1/archive/blobs/{s|k}/{hex}   Bearer T → 200 blob
//	DELETE /v1/archive/blobs/{s|k}/{hex}   Bearer T → 204 (missing is fine)
//	GET    /v1/archive/list/{s|k}          Bearer T → 200 one name a line
//	PUT    /v1/archive/recovery/{hex}      Bearer T; body ≤ 8 KiB → 204
//	GET    /v1/archive/recovery/{hex}      no auth (the bundle is sealed) → 200
//
// A recovery slot records the account that first wrote it; another account
// gets 403 when it tries to overwrite it.
const (
	// ArchiveKeyRecordSize is the exact size of a key record blob.
	ArchiveKeyRecordSize = 173
	// ArchiveMinSegment and ArchiveMaxSegment bound a segment's size, which
	// must be a power of two.
	ArchiveMinSegment = 4 << 10
	ArchiveMaxSegment = 16 << 20
	// ArchiveMaxBundle bounds a recovery bundle.
	ArchiveMaxBundle = 8 << 10
	// archiveMaxList bounds the names one list answer carries.
	archiveMaxList = 1 << 20
	archiveNameHex = 64
)

// ArchiveHandler serves the archive storage from a directory.
type ArchiveHandler struct {
	dir  string
	auth Authorizer
	mux  *http.ServeMux
	mu   sync.Mutex // serialises recovery-slot owner checks
}

// NewArchiveHandler returns the archive storage kept under dir, authorised
// by auth (the same bearer tokens as the blob service).
func NewArchiveHandler(dir string, auth Authorizer) (*ArchiveHandler, error) {
	for _, sub := range []string{"accounts", "recovery"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("failed to create archive folder: %w", err)
		}
	}
	h := &ArchiveHandler{dir: dir, auth: auth, mux: http.NewServeMux()}
	h.mux.HandleFunc("PUT /v1/archive/blobs/{kind}/{name}", h.put)
	h.mux.HandleFunc("GET /v1/archive/blobs/{kind}/{name}", h.get)
	h.mux.HandleFunc("DELETE /v1/archive/blobs/{kind}/{name}", h.delete)
	h.mux.HandleFunc("GET /v1/archive/list/{kind}", h.list)
	h.mux.HandleFunc("PUT /v1/archive/recovery/{name}", h.putBundle)
	h.mux.HandleFunc("GET /v1/archive/recovery/{name}", h.getBundle)
	return h, nil
}

// ServeHTTP implements [http.Handler].
func (h *ArchiveHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *ArchiveHandler) writeError(w http.ResponseWriter, err error) {
	status, code := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal error"
	}
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

func (h *ArchiveHandler) account(r *http.Request) (identity.AccountID, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", ErrUnauthorized
	}
	acct, err := h.auth.Authorize(r.Context(), token)
	if err != nil {
		return "", fmt.Errorf("failed to authorize: %w", err)
	}
	return acct, nil
}

// accountTag names an account's folder by a hash, so account ids never
// reach the file system.
func accountTag(a identity.AccountID) string {
	sum := sha256.Sum256([]byte(a))
	return hex.EncodeToString(sum[:])
}

func validHexName(s string) bool {
	if len(s) != archiveNameHex {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validKind(k string) bool { return k == "s" || k == "k" }

// blobPath authorises the request and returns the file it names.
func (h *ArchiveHandler) blobPath(r *http.Request) (string, string, error) {
	acct, err := h.account(r)
	if err != nil {
		return "", "", err
	}
	kind, name := r.PathValue("kind"), r.PathValue("name")
	if !validKind(kind) || !validHexName(name) {
		return "", "", fmt.Errorf("%w: archive names are s/ or k/ and 64 lowercase hex digits", ErrBadRequest)
	}
	return filepath.Join(h.dir, "accounts", accountTag(acct), kind, name), kind, nil
}

func validArchiveSize(kind string, n int) bool {
	if kind == "k" {
		return n == ArchiveKeyRecordSize
	}
	return n >= ArchiveMinSegment && n <= ArchiveMaxSegment && n&(n-1) == 0
}

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, ErrTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read body: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, ErrTooLarge
	}
	return data, nil
}

// writeAtomic replaces path with data durably (temporary file, fsync,
// rename).
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("failed to create folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to create file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("failed to write blob: %w", err)
	}
	return syncDir(dir)
}

func (h *ArchiveHandler) put(w http.ResponseWriter, r *http.Request) {
	path, kind, err := h.blobPath(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	data, err := readBody(r, ArchiveMaxSegment)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if !validArchiveSize(kind, len(data)) {
		h.writeError(w, fmt.Errorf("%w: size %d is not allowed for %s/", ErrBadRequest, len(data), kind))
		return
	}
	if err := writeAtomic(path, data); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func serveFile(w http.ResponseWriter, path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("failed to read blob: %w", err)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
	return nil
}

func (h *ArchiveHandler) get(w http.ResponseWriter, r *http.Request) {
	path, _, err := h.blobPath(r)
	if err == nil {
		err = serveFile(w, path)
	}
	if err != nil {
		h.writeError(w, err)
	}
}

func (h *ArchiveHandler) delete(w http.ResponseWriter, r *http.Request) {
	path, _, err := h.blobPath(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		h.writeError(w, fmt.Errorf("failed to delete blob: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *ArchiveHandler) list(w http.ResponseWriter, r *http.Request) {
	acct, err := h.account(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	kind := r.PathValue("kind")
	if !validKind(kind) {
		h.writeError(w, fmt.Errorf("%w: list s or k", ErrBadRequest))
		return
	}
	entries, err := os.ReadDir(filepath.Join(h.dir, "accounts", accountTag(acct), kind))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.writeError(w, fmt.Errorf("failed to list archive: %w", err))
		return
	}
	var buf bytes.Buffer
	n := 0
	for _, e := range entries {
		if n == archiveMaxList {
			break
		}
		if name := e.Name(); validHexName(name) {
			buf.WriteString(kind + "/" + name + "\n")
			n++
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// bundlePath is the slot's file; the first line of the file is the owner
// tag, the rest the sealed bundle.
func (h *ArchiveHandler) bundlePath(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !validHexName(name) {
		return "", fmt.Errorf("%w: a recovery slot is named by 64 lowercase hex digits", ErrBadRequest)
	}
	return filepath.Join(h.dir, "recovery", name), nil
}

func readBundleFile(path string) (owner string, bundle []byte, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, ErrNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("failed to read recovery slot: %w", err)
	}
	tag, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return "", nil, ErrCorrupt
	}
	return string(tag), rest, nil
}

func (h *ArchiveHandler) putBundle(w http.ResponseWriter, r *http.Request) {
	acct, err := h.account(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	path, err := h.bundlePath(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	data, err := readBody(r, ArchiveMaxBundle)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if len(data) == 0 {
		h.writeError(w, fmt.Errorf("%w: empty recovery bundle", ErrBadRequest))
		return
	}
	if err := h.storeBundle(path, accountTag(acct), data); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *ArchiveHandler) storeBundle(path, owner string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, _, err := readBundleFile(path)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case prev != owner:
		return ErrForbidden
	}
	return writeAtomic(path, append([]byte(owner+"\n"), data...))
}

func (h *ArchiveHandler) getBundle(w http.ResponseWriter, r *http.Request) {
	path, err := h.bundlePath(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	_, bundle, err := readBundleFile(path)
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(bundle)
}
