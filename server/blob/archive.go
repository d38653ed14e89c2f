package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/parley-im/parley/identity"
)

// Archive storage (cloud history, see client/archive): per-account opaque
// blobs named "s/<64 hex>" (segments) and "k/<64 hex>" (key records), plus
// a recovery-bundle slot per recovery key.
//
//	PUT    /v1/archive/blobs/{s|k}/{hex}   Bearer T; body = blob → 204 (507 quota_exceeded)
//	GET    /v1/archive/blobs/{s|k}/{hex}   Bearer T → 200 blob
//	DELETE /v1/archive/blobs/{s|k}/{hex}   Bearer T → 204 (missing is fine)
//	GET    /v1/archive/list/{s|k}          Bearer T → 200 one name a line
//	GET    /v1/archive/usage               Bearer T → 200 {"bytes": N, "quota": Q}
//	PUT    /v1/archive/recovery/{hex}      Bearer T; body ≤ 8 KiB → 204
//	GET    /v1/archive/recovery/{hex}      no auth (the bundle is sealed) → 200
//	DELETE /v1/archive/recovery/{hex}      Bearer T, the slot's account → 204 (missing is fine)
//
// With a local [Backend] the blobs' bytes live in it under ids derived from
// the account and the name, and the folder keeps the records: an index of
// each account's names and sizes (for listing and the quota) and the
// recovery slots. With the [S3] backend everything lives in the bucket
// (archive_s3.go), so several server processes share it. A recovery slot records
// the account that first wrote it; another account gets 403 when it tries
// to overwrite or delete it.
const (
	// ArchiveKeyRecordSize is the exact size of a key record blob.
	ArchiveKeyRecordSize = 173
	// ArchiveMinSegment and ArchiveMaxSegment bound a segment's size, which
	// must be a power of two.
	ArchiveMinSegment = 4 << 10
	ArchiveMaxSegment = 16 << 20
	// ArchiveMaxBundle bounds a recovery bundle.
	ArchiveMaxBundle = 8 << 10
	// DefaultArchiveQuota is the default most bytes of archive blobs one
	// account may hold.
	DefaultArchiveQuota = 4 << 30
	// archiveMaxList bounds the names one list answer carries.
	archiveMaxList = 1 << 20
	archiveNameHex = 64
	archiveIDLabel = "parley/archive/blob-id/v1"
)

// ArchiveConfig configures [NewArchive].
type ArchiveConfig struct {
	// Dir holds the records: the per-account index and the recovery slots.
	Dir string
	// Backend holds the blobs' bytes (nil: a [Local] backend in Dir/data).
	Backend Backend
	// Auth maps bearer tokens to accounts (the blob service's tokens).
	Auth Authorizer
	// Quota is the most bytes of blobs one account may hold: zero means
	// [DefaultArchiveQuota], negative means unlimited.
	Quota int64
}

// ArchiveHandler serves the archive storage.
type ArchiveHandler struct {
	dir     string
	backend Backend
	s3      *S3 // set: everything lives in the bucket (archive_s3.go)
	auth    Authorizer
	quota   int64 // 0: unlimited
	mux     *http.ServeMux
	mu      sync.Mutex // serialises recovery-slot owner checks
	accts   sync.Map   // account tag -> *archiveAccount
}

// archiveAccount is one account's index state: its lock and, once
// loaded, the bytes it holds.
type archiveAccount struct {
	mu     sync.Mutex
	loaded bool
	bytes  int64
}

// NewArchiveHandler returns the archive storage kept under dir (records
// and blobs), authorised by auth (the same bearer tokens as the blob
// service), with the default quota.
func NewArchiveHandler(dir string, auth Authorizer) (*ArchiveHandler, error) {
	return NewArchive(ArchiveConfig{Dir: dir, Auth: auth})
}

// NewArchive returns the archive storage cfg describes.
func NewArchive(cfg ArchiveConfig) (*ArchiveHandler, error) {
	if cfg.Dir == "" || cfg.Auth == nil {
		return nil, fmt.Errorf("%w: the archive needs a folder and an authorizer", ErrBadRequest)
	}
	for _, sub := range []string{"accounts", "recovery"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("failed to create archive folder: %w", err)
		}
	}
	if cfg.Backend == nil {
		local, err := NewLocal(filepath.Join(cfg.Dir, "data"))
		if err != nil {
			return nil, err
		}
		cfg.Backend = local
	}
	switch {
	case cfg.Quota == 0:
		cfg.Quota = DefaultArchiveQuota
	case cfg.Quota < 0:
		cfg.Quota = 0
	}
	h := &ArchiveHandler{dir: cfg.Dir, backend: cfg.Backend, auth: cfg.Auth, quota: cfg.Quota, mux: http.NewServeMux()}
	if s3, ok := cfg.Backend.(*S3); ok {
		h.s3 = s3
	}
	h.mux.HandleFunc("PUT /v1/archive/blobs/{kind}/{name}", h.put)
	h.mux.HandleFunc("GET /v1/archive/blobs/{kind}/{name}", h.get)
	h.mux.HandleFunc("DELETE /v1/archive/blobs/{kind}/{name}", h.delete)
	h.mux.HandleFunc("GET /v1/archive/list/{kind}", h.list)
	h.mux.HandleFunc("GET /v1/archive/usage", h.usage)
	h.mux.HandleFunc("PUT /v1/archive/recovery/{name}", h.putBundle)
	h.mux.HandleFunc("GET /v1/archive/recovery/{name}", h.getBundle)
	h.mux.HandleFunc("DELETE /v1/archive/recovery/{name}", h.deleteBundle)
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

// archiveRef names one blob of one account.
type archiveRef struct {
	tag, kind, name string
}

// index is the blob's index file (its content: the size in decimal).
func (h *ArchiveHandler) index(r archiveRef) string {
	return filepath.Join(h.dir, "accounts", r.tag, r.kind, r.name)
}

// id is the blob's backend id: a hash of account, kind and name, so the
// backend's names reveal neither.
func (r archiveRef) id() ID {
	sum := sha256.Sum256([]byte(archiveIDLabel + "\x00" + r.tag + "/" + r.kind + "/" + r.name))
	return ID(sum)
}

// blobRef authorises the request and returns the blob it names.
func (h *ArchiveHandler) blobRef(r *http.Request) (archiveRef, error) {
	acct, err := h.account(r)
	if err != nil {
		return archiveRef{}, err
	}
	kind, name := r.PathValue("kind"), r.PathValue("name")
	if !validKind(kind) || !validHexName(name) {
		return archiveRef{}, fmt.Errorf("%w: archive names are s/ or k/ and 64 lowercase hex digits", ErrBadRequest)
	}
	return archiveRef{tag: accountTag(acct), kind: kind, name: name}, nil
}

// acct returns the account's state, locked, with its usage loaded.
func (h *ArchiveHandler) acct(tag string) (*archiveAccount, error) {
	v, _ := h.accts.LoadOrStore(tag, &archiveAccount{})
	a := v.(*archiveAccount)
	a.mu.Lock()
	if a.loaded {
		return a, nil
	}
	var total int64
	for _, kind := range []string{"s", "k"} {
		dir := filepath.Join(h.dir, "accounts", tag, kind)
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			a.mu.Unlock()
			return nil, fmt.Errorf("failed to read archive index: %w", err)
		}
		for _, e := range entries {
			if !validHexName(e.Name()) {
				continue
			}
			ref := archiveRef{tag: tag, kind: kind, name: e.Name()}
			n, err := readIndex(h.index(ref))
			if errors.Is(err, ErrCorrupt) {
				n, err = h.migrate(ref)
			}
			if err != nil {
				a.mu.Unlock()
				return nil, err
			}
			total += n
		}
	}
	a.bytes, a.loaded = total, true
	return a, nil
}

// migrate moves a blob stored by an earlier version (its bytes in the
// index file itself) into the backend and leaves a size entry in its place.
func (h *ArchiveHandler) migrate(ref archiveRef) (int64, error) {
	data, err := os.ReadFile(h.index(ref))
	if err != nil {
		return 0, fmt.Errorf("failed to read archive blob: %w", err)
	}
	if !validArchiveSize(ref.kind, len(data)) {
		return 0, fmt.Errorf("%w: archive index entry of %d bytes", ErrCorrupt, len(data))
	}
	if err := h.putBackend(context.Background(), ref.id(), data); err != nil {
		return 0, err
	}
	if err := writeAtomic(h.index(ref), []byte(strconv.Itoa(len(data)))); err != nil {
		return 0, err
	}
	return int64(len(data)), nil
}

// putBackend stores data as the backend blob id, replacing it.
func (h *ArchiveHandler) putBackend(ctx context.Context, id ID, data []byte) error {
	app, err := h.backend.OpenAppend(ctx, id, 0)
	if err != nil {
		return err
	}
	seg := h.backend.SegmentSize()
	for off := 0; off < len(data); off += seg {
		if err := app.Append(data[off:min(off+seg, len(data))]); err != nil {
			_ = app.Close()
			return err
		}
	}
	if err := app.Close(); err != nil {
		return err
	}
	return h.backend.Finish(ctx, id, int64(len(data)))
}

// readIndex reads an index file's size; a missing file is ErrNotFound.
func readIndex(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("failed to read archive index: %w", err)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 || n > ArchiveMaxSegment {
		return 0, fmt.Errorf("%w: archive index entry %q", ErrCorrupt, b)
	}
	return n, nil
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
	ref, err := h.blobRef(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	data, err := readBody(r, ArchiveMaxSegment)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if !validArchiveSize(ref.kind, len(data)) {
		h.writeError(w, fmt.Errorf("%w: size %d is not allowed for %s/", ErrBadRequest, len(data), ref.kind))
		return
	}
	if err := h.store(r.Context(), ref, data); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// store writes data under ref within the account's quota: the bytes to the
// backend first, then the index entry, so a listed blob is always whole.
func (h *ArchiveHandler) store(ctx context.Context, ref archiveRef, data []byte) error {
	if h.s3 != nil {
		return h.s3Store(ctx, ref, data)
	}
	a, err := h.acct(ref.tag)
	if err != nil {
		return err
	}
	defer a.mu.Unlock()
	prev, err := readIndex(h.index(ref))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	after := a.bytes - prev + int64(len(data))
	if h.quota > 0 && after > h.quota {
		return fmt.Errorf("%w: the account's archive would hold %d bytes, over its quota of %d", ErrQuota, after, h.quota)
	}
	if err := h.putBackend(ctx, ref.id(), data); err != nil {
		return err
	}
	if err := writeAtomic(h.index(ref), []byte(strconv.Itoa(len(data)))); err != nil {
		return err
	}
	a.bytes = after
	return nil
}

func (h *ArchiveHandler) get(w http.ResponseWriter, r *http.Request) {
	ref, err := h.blobRef(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if h.s3 != nil {
		data, err := h.s3Get(r.Context(), h.s3BlobKey(ref), ArchiveMaxSegment)
		if err != nil {
			h.writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(data)
		return
	}
	a, err := h.acct(ref.tag) // loads (and migrates) the account's index
	if err != nil {
		h.writeError(w, err)
		return
	}
	a.mu.Unlock()
	size, err := readIndex(h.index(ref))
	if err != nil {
		h.writeError(w, err)
		return
	}
	rd, err := h.backend.Open(r.Context(), ref.id(), size)
	if err != nil {
		h.writeError(w, err)
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	_, _ = io.Copy(w, io.LimitReader(rd, size))
}

func (h *ArchiveHandler) delete(w http.ResponseWriter, r *http.Request) {
	ref, err := h.blobRef(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	if err := h.remove(r.Context(), ref); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// remove deletes ref's index entry, then its bytes.
func (h *ArchiveHandler) remove(ctx context.Context, ref archiveRef) error {
	if h.s3 != nil {
		return h.s3Remove(ctx, h.s3BlobKey(ref))
	}
	a, err := h.acct(ref.tag)
	if err != nil {
		return err
	}
	defer a.mu.Unlock()
	size, err := readIndex(h.index(ref))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(h.index(ref)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to delete archive index entry: %w", err)
	}
	a.bytes -= size
	if err := h.backend.Delete(ctx, ref.id()); err != nil {
		return fmt.Errorf("failed to delete archive blob: %w", err)
	}
	return nil
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
	names, err := h.names(r.Context(), accountTag(acct), kind)
	if err != nil {
		h.writeError(w, err)
		return
	}
	var buf bytes.Buffer
	for i, name := range names {
		if i == archiveMaxList {
			break
		}
		buf.WriteString(kind + "/" + name + "\n")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// names lists an account's blob names of kind.
func (h *ArchiveHandler) names(ctx context.Context, tag, kind string) ([]string, error) {
	var out []string
	if h.s3 != nil {
		m, err := h.s3List(ctx, tag, kind)
		if err != nil {
			return nil, err
		}
		for name := range m {
			out = append(out, name)
		}
		slices.Sort(out)
		return out, nil
	}
	a, err := h.acct(tag) // loads (and migrates) the account's index
	if err != nil {
		return nil, err
	}
	a.mu.Unlock()
	entries, err := os.ReadDir(filepath.Join(h.dir, "accounts", tag, kind))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("failed to list archive: %w", err)
	}
	for _, e := range entries {
		if name := e.Name(); validHexName(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// ArchiveUsage is the answer of GET /v1/archive/usage.
type ArchiveUsage struct {
	// Bytes is what the account's archive blobs take.
	Bytes int64 `json:"bytes"`
	// Quota is the most it may take; 0 means unlimited.
	Quota int64 `json:"quota"`
}

func (h *ArchiveHandler) usage(w http.ResponseWriter, r *http.Request) {
	acct, err := h.account(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	u := ArchiveUsage{Quota: h.quota}
	if h.s3 != nil {
		u.Bytes, err = h.s3Total(r.Context(), accountTag(acct))
	} else {
		var a *archiveAccount
		if a, err = h.acct(accountTag(acct)); err == nil {
			u.Bytes = a.bytes
			a.mu.Unlock()
		}
	}
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, u)
}

// bundleName is the request's slot name.
func (h *ArchiveHandler) bundleName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !validHexName(name) {
		return "", fmt.Errorf("%w: a recovery slot is named by 64 lowercase hex digits", ErrBadRequest)
	}
	return name, nil
}

// bundleFile is a slot's file; the first line of the file is the owner
// tag, the rest the sealed bundle.
func (h *ArchiveHandler) bundleFile(name string) string {
	return filepath.Join(h.dir, "recovery", name)
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
	name, err := h.bundleName(r)
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
	if err := h.storeBundle(r.Context(), name, accountTag(acct), data); err != nil {
		h.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *ArchiveHandler) storeBundle(ctx context.Context, name, owner string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, _, err := h.readBundle(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case prev != owner:
		return ErrForbidden
	}
	return h.writeBundle(ctx, name, owner, data)
}

func (h *ArchiveHandler) getBundle(w http.ResponseWriter, r *http.Request) {
	name, err := h.bundleName(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	_, bundle, err := h.readBundle(r.Context(), name)
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(bundle)
}

func (h *ArchiveHandler) deleteBundle(w http.ResponseWriter, r *http.Request) {
	acct, err := h.account(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	name, err := h.bundleName(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	owner, _, err := h.readBundle(r.Context(), name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		h.writeError(w, err)
		return
	case owner != accountTag(acct):
		h.writeError(w, ErrForbidden)
		return
	default:
		if err := h.removeBundle(r.Context(), name); err != nil {
			h.writeError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
