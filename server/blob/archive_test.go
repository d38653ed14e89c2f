package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-im/parley/identity"
)

func archiveServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	return archiveServerWith(t, ArchiveConfig{})
}

// archiveServerWith serves an archive configured by cfg (Dir and Auth
// filled in when empty): tokens "tok-ACCOUNT".
func archiveServerWith(t *testing.T, cfg ArchiveConfig) (*httptest.Server, string) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	dir := cfg.Dir
	cfg.Auth = AuthorizerFunc(func(_ context.Context, tok string) (identity.AccountID, error) {
		if acct, ok := strings.CutPrefix(tok, "tok-"); ok {
			return identity.AccountID(acct), nil
		}
		return "", ErrUnauthorized
	})
	h, err := NewArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, dir
}

func archiveDo(t *testing.T, srv *httptest.Server, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func TestArchiveBlobs(t *testing.T) {
	for _, b := range archiveBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			srv, _ := archiveServerWith(t, ArchiveConfig{Backend: b.backend})
			testArchiveBlobs(t, srv)
		})
	}
}

func testArchiveBlobs(t *testing.T, srv *httptest.Server) {
	name := strings.Repeat("ab", 32)
	seg := bytes.Repeat([]byte{7}, ArchiveMinSegment)
	rec := bytes.Repeat([]byte{9}, ArchiveKeyRecordSize)

	if st, _ := archiveDo(t, srv, "PUT", "/v1/archive/blobs/s/"+name, "", seg); st != http.StatusUnauthorized {
		t.Fatalf("put without token: %d", st)
	}
	for _, c := range []struct {
		path string
		body []byte
	}{
		{"/v1/archive/blobs/s/" + name, seg[:ArchiveMinSegment-1]},
		{"/v1/archive/blobs/s/" + name, bytes.Repeat([]byte{1}, 3*ArchiveMinSegment)},
		{"/v1/archive/blobs/k/" + name, rec[:100]},
		{"/v1/archive/blobs/x/" + name, rec},
		{"/v1/archive/blobs/k/" + strings.ToUpper(name), rec},
		{"/v1/archive/blobs/k/" + name[:10], rec},
		{"/v1/archive/blobs/k/..%2f" + name[6:], rec},
	} {
		if st, _ := archiveDo(t, srv, "PUT", c.path, "tok-alice", c.body); st != http.StatusBadRequest && st != http.StatusNotFound {
			t.Fatalf("PUT %s (%d bytes) = %d, want refusal", c.path, len(c.body), st)
		}
	}
	if st, b := archiveDo(t, srv, "PUT", "/v1/archive/blobs/s/"+name, "tok-alice", seg); st != http.StatusNoContent {
		t.Fatalf("put segment: %d %s", st, b)
	}
	if st, b := archiveDo(t, srv, "PUT", "/v1/archive/blobs/k/"+name, "tok-alice", rec); st != http.StatusNoContent {
		t.Fatalf("put record: %d %s", st, b)
	}
	if st, b := archiveDo(t, srv, "GET", "/v1/archive/blobs/s/"+name, "tok-alice", nil); st != 200 || !bytes.Equal(b, seg) {
		t.Fatalf("get segment: %d, %d bytes", st, len(b))
	}
	// Another account sees nothing of alice's archive.
	if st, _ := archiveDo(t, srv, "GET", "/v1/archive/blobs/s/"+name, "tok-bob", nil); st != http.StatusNotFound {
		t.Fatalf("bob reads alice's segment: %d", st)
	}
	if st, b := archiveDo(t, srv, "GET", "/v1/archive/list/k", "tok-bob", nil); st != 200 || len(b) != 0 {
		t.Fatalf("bob lists: %d %q", st, b)
	}
	if st, b := archiveDo(t, srv, "GET", "/v1/archive/list/s", "tok-alice", nil); st != 200 || string(b) != "s/"+name+"\n" {
		t.Fatalf("alice lists: %d %q", st, b)
	}
	if st, _ := archiveDo(t, srv, "DELETE", "/v1/archive/blobs/s/"+name, "tok-alice", nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	if st, _ := archiveDo(t, srv, "DELETE", "/v1/archive/blobs/s/"+name, "tok-alice", nil); st != http.StatusNoContent {
		t.Fatalf("delete missing: %d", st)
	}
	if st, _ := archiveDo(t, srv, "GET", "/v1/archive/blobs/s/"+name, "tok-alice", nil); st != http.StatusNotFound {
		t.Fatalf("get deleted: %d", st)
	}
	if st, b := archiveDo(t, srv, "GET", "/v1/archive/list/s", "tok-alice", nil); st != 200 || len(b) != 0 {
		t.Fatalf("list after delete: %d %q", st, b)
	}
	// Segments of every power-of-two bucket up to the maximum are taken.
	for n := ArchiveMinSegment; n <= ArchiveMaxSegment; n *= 4 {
		nm := fmt.Sprintf("%064x", n)
		if st, b := archiveDo(t, srv, "PUT", "/v1/archive/blobs/s/"+nm, "tok-alice", make([]byte, n)); st != http.StatusNoContent {
			t.Fatalf("put %d bytes: %d %s", n, st, b)
		}
	}
	if st, _ := archiveDo(t, srv, "PUT", "/v1/archive/blobs/s/"+name, "tok-alice", make([]byte, 2*ArchiveMaxSegment)); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized segment: %d", st)
	}
}

func TestArchiveRecoverySlot(t *testing.T) {
	for _, b := range archiveBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			srv, _ := archiveServerWith(t, ArchiveConfig{Backend: b.backend})
			testArchiveRecoverySlot(t, srv)
		})
	}
}

func testArchiveRecoverySlot(t *testing.T, srv *httptest.Server) {
	slot := "/v1/archive/recovery/" + strings.Repeat("0f", 32)
	if st, _ := archiveDo(t, srv, "GET", slot, "", nil); st != http.StatusNotFound {
		t.Fatalf("empty slot: %d", st)
	}
	if st, _ := archiveDo(t, srv, "PUT", slot, "", []byte("sealed")); st != http.StatusUnauthorized {
		t.Fatalf("anonymous write: %d", st)
	}
	if st, b := archiveDo(t, srv, "PUT", slot, "tok-alice", []byte("sealed-1")); st != http.StatusNoContent {
		t.Fatalf("write: %d %s", st, b)
	}
	if st, b := archiveDo(t, srv, "GET", slot, "", nil); st != 200 || string(b) != "sealed-1" {
		t.Fatalf("anonymous read: %d %q", st, b)
	}
	if st, _ := archiveDo(t, srv, "PUT", slot, "tok-bob", []byte("evil")); st != http.StatusForbidden {
		t.Fatalf("other account overwrites: %d", st)
	}
	if st, _ := archiveDo(t, srv, "PUT", slot, "tok-alice", []byte("sealed-2")); st != http.StatusNoContent {
		t.Fatalf("owner rewrites: %d", st)
	}
	if st, b := archiveDo(t, srv, "GET", slot, "", nil); st != 200 || string(b) != "sealed-2" {
		t.Fatalf("read after rewrite: %d %q", st, b)
	}
	if st, _ := archiveDo(t, srv, "PUT", slot, "tok-alice", make([]byte, ArchiveMaxBundle+1)); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized bundle: %d", st)
	}
	if st, _ := archiveDo(t, srv, "PUT", slot, "tok-alice", nil); st != http.StatusBadRequest {
		t.Fatalf("empty bundle: %d", st)
	}
	if st, _ := archiveDo(t, srv, "GET", "/v1/archive/recovery/xyz", "", nil); st != http.StatusBadRequest {
		t.Fatalf("bad slot name: %d", st)
	}
	// Only the owner deletes the slot; deleting a missing slot is fine.
	if st, _ := archiveDo(t, srv, "DELETE", slot, "", nil); st != http.StatusUnauthorized {
		t.Fatalf("anonymous delete: %d", st)
	}
	if st, _ := archiveDo(t, srv, "DELETE", slot, "tok-bob", nil); st != http.StatusForbidden {
		t.Fatalf("other account deletes: %d", st)
	}
	if st, _ := archiveDo(t, srv, "DELETE", slot, "tok-alice", nil); st != http.StatusNoContent {
		t.Fatalf("owner deletes: %d", st)
	}
	if st, _ := archiveDo(t, srv, "GET", slot, "", nil); st != http.StatusNotFound {
		t.Fatalf("read after delete: %d", st)
	}
	if st, _ := archiveDo(t, srv, "DELETE", slot, "tok-alice", nil); st != http.StatusNoContent {
		t.Fatalf("delete missing: %d", st)
	}
}
