package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parley-im/parley/client/archive"
)

// Archive storage limits, as the homeserver enforces them.
const (
	archiveMaxBlob   = archive.MaxBucket
	archiveMaxList   = 1 << 20
	archiveErrorBody = 4 << 10
)

// ErrArchiveServer is wrapped by errors the archive storage reports.
var ErrArchiveServer = errors.New("client: archive storage refused the request")

// ErrArchiveQuota means the account's cloud history reached the server's
// per-account quota (it also wraps [ErrArchiveServer]). New history is
// not uploaded until room is made (deleting messages compacts the archive)
// or the operator raises the quota.
var ErrArchiveQuota = errors.New("client: the account's cloud history is over the server's quota")

// TokenSource returns a bearer token for the account's blob and archive
// storage.
type TokenSource func(ctx context.Context) (string, error)

// ArchiveRemote is an [archive.Remote] on the homeserver's archive storage
// (/v1/archive/...): the account's segments and key records, authorised by
// the account's bearer tokens.
type ArchiveRemote struct {
	base  string
	http  *http.Client
	token TokenSource
}

// NewArchiveRemote returns the archive storage at the homeserver's HTTP base
// URL (for example "https://chat.example"); hc nil means
// [http.DefaultClient].
func NewArchiveRemote(baseURL string, hc *http.Client, token TokenSource) *ArchiveRemote {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &ArchiveRemote{base: strings.TrimSuffix(baseURL, "/"), http: hc, token: token}
}

var _ archive.Remote = (*ArchiveRemote)(nil)

func (r *ArchiveRemote) do(ctx context.Context, method, path string, body []byte, auth bool) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("failed to build archive request: %w", err)
	}
	if auth {
		if r.token == nil {
			return nil, fmt.Errorf("failed to authorise archive request: %w", ErrArchiveServer)
		}
		tok, err := r.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to get archive token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to reach archive storage: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct{ Error, Message string }
	_ = json.NewDecoder(io.LimitReader(resp.Body, archiveErrorBody)).Decode(&e)
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%s %s: %w", method, path, archive.ErrNotFound)
	}
	if resp.StatusCode == http.StatusInsufficientStorage {
		return nil, fmt.Errorf("%s %s: %w: %w: %s", method, path, ErrArchiveServer, ErrArchiveQuota, e.Message)
	}
	return nil, fmt.Errorf("%s %s: %w: %d %s: %s", method, path, ErrArchiveServer, resp.StatusCode, e.Error, e.Message)
}

func blobPath(name archive.BlobName) (string, error) {
	s := string(name)
	if !strings.HasPrefix(s, archive.SegmentPrefix) && !strings.HasPrefix(s, archive.KeyRecordPrefix) {
		return "", fmt.Errorf("failed to name archive blob %q: %w", s, ErrArchiveServer)
	}
	return "/v1/archive/blobs/" + s, nil
}

// Put implements [archive.Remote].
func (r *ArchiveRemote) Put(ctx context.Context, name archive.BlobName, data []byte) error {
	p, err := blobPath(name)
	if err != nil {
		return err
	}
	resp, err := r.do(ctx, http.MethodPut, p, data, true)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// readAll reads at most limit bytes of resp's body.
func readAll(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read archive answer: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("failed to read archive answer: %w: larger than %d bytes", ErrArchiveServer, limit)
	}
	return data, nil
}

// Get implements [archive.Remote].
func (r *ArchiveRemote) Get(ctx context.Context, name archive.BlobName) ([]byte, error) {
	p, err := blobPath(name)
	if err != nil {
		return nil, err
	}
	resp, err := r.do(ctx, http.MethodGet, p, nil, true)
	if err != nil {
		return nil, err
	}
	return readAll(resp, archiveMaxBlob)
}

// List implements [archive.Remote].
func (r *ArchiveRemote) List(ctx context.Context, prefix string) ([]archive.BlobName, error) {
	kind, ok := strings.CutSuffix(prefix, "/")
	if !ok || (prefix != archive.SegmentPrefix && prefix != archive.KeyRecordPrefix) {
		return nil, fmt.Errorf("failed to list archive prefix %q: %w", prefix, ErrArchiveServer)
	}
	resp, err := r.do(ctx, http.MethodGet, "/v1/archive/list/"+kind, nil, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseArchiveList(resp.Body, prefix)
}

// parseArchiveList reads a list answer: one name a line; lines that are not
// names under prefix are skipped, and at most archiveMaxList names are
// read.
func parseArchiveList(r io.Reader, prefix string) ([]archive.BlobName, error) {
	var out []archive.BlobName
	sc := bufio.NewScanner(io.LimitReader(r, int64(archiveMaxList)*80))
	for sc.Scan() && len(out) < archiveMaxList {
		if line := sc.Text(); strings.HasPrefix(line, prefix) && validArchiveName(line[len(prefix):]) {
			out = append(out, archive.BlobName(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read archive list: %w", err)
	}
	return out, nil
}

// validArchiveName accepts 64 lowercase hex digits.
func validArchiveName(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Delete implements [archive.Remote].
func (r *ArchiveRemote) Delete(ctx context.Context, name archive.BlobName) error {
	p, err := blobPath(name)
	if err != nil {
		return err
	}
	resp, err := r.do(ctx, http.MethodDelete, p, nil, true)
	if errors.Is(err, archive.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
