package blobtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/filecrypt/transfer"
	"github.com/parley-im/parley/server/blob"
)

// raw sends one request and returns status, error code and Upload-Offset.
func raw(t *testing.T, e *env, method, path, token string, hdr map[string]string, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &eb)
	if resp.StatusCode >= 400 && method != http.MethodHead && (eb.Error == "" || eb.Message == "") {
		t.Fatalf("%s %s: status %d without a clear error body: %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, eb.Error, resp.Header.Get(blob.HeaderOffset)
}

func createRaw(t *testing.T, e *env, token string, size int64) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/blobs", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(blob.HeaderLength, strconv.FormatInt(size, 10))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st blob.State
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&st) != nil {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	if st.Size != size || st.Offset != 0 || resp.Header.Get("Location") != "/v1/blobs/"+st.ID {
		t.Fatalf("create answered %+v", st)
	}
	return st.ID
}

func TestProtocolErrors(t *testing.T) {
	forEachBackend(t, blob.Config{MaxSize: 1 << 20, Quota: 3 << 20}, func(t *testing.T, e *env) {
		id := createRaw(t, e, "token-alice", 10)
		p := "/v1/blobs/" + id
		off := func(n int) map[string]string { return map[string]string{blob.HeaderOffset: strconv.Itoa(n)} }
		cases := []struct {
			name, method, path, token string
			hdr                       map[string]string
			body                      string
			status                    int
			code                      string
		}{
			{"create without token", "POST", "/v1/blobs", "", map[string]string{blob.HeaderLength: "1"}, "", 401, "unauthorized"},
			{"create with a bad token", "POST", "/v1/blobs", "nope", map[string]string{blob.HeaderLength: "1"}, "", 401, "unauthorized"},
			{"create without size", "POST", "/v1/blobs", "token-alice", nil, "", 400, "bad_request"},
			{"create negative size", "POST", "/v1/blobs", "token-alice", map[string]string{blob.HeaderLength: "-1"}, "", 400, "bad_request"},
			{"create over the limit", "POST", "/v1/blobs", "token-alice", map[string]string{blob.HeaderLength: strconv.Itoa(1<<20 + 1)}, "", 413, "too_large"},
			{"append by another account", "PATCH", p, "token-bob", off(0), "abc", 403, "forbidden"},
			{"append without token", "PATCH", p, "", off(0), "abc", 401, "unauthorized"},
			{"append at a wrong offset", "PATCH", p, "token-alice", off(3), "abc", 409, "offset_mismatch"},
			{"append without offset", "PATCH", p, "token-alice", nil, "abc", 400, "bad_request"},
			{"append past the declared size", "PATCH", p, "token-alice", off(0), "0123456789X", 413, "over_declared_size"},
			{"append to an unknown blob", "PATCH", "/v1/blobs/" + strings.Repeat("A", 43), "token-alice", off(0), "a", 404, "not_found"},
			{"append to a malformed id", "PATCH", "/v1/blobs/xyz", "token-alice", off(0), "a", 404, "not_found"},
			{"download unknown", "GET", "/v1/blobs/" + strings.Repeat("A", 43), "", nil, "", 404, "not_found"},
			{"download unfinished", "GET", p, "", nil, "", 409, "not_finished"},
			{"finish incomplete", "POST", p + "/finish", "token-alice", map[string]string{blob.HeaderChecksum: strings.Repeat("00", 8)}, "", 409, "incomplete"},
			{"finish without hash", "POST", p + "/finish", "token-alice", nil, "", 400, "bad_request"},
		}
		for _, c := range cases {
			status, code, _ := raw(t, e, c.method, c.path, c.token, c.hdr, c.body)
			if status != c.status || code != c.code {
				t.Errorf("%s: got %d %q, want %d %q", c.name, status, code, c.status, c.code)
			}
		}
		// A wrong offset is answered with the current one.
		if s, _, o := raw(t, e, "PATCH", p, "token-alice", off(0), "01234"); s != 204 || o != "5" {
			t.Fatalf("append: %d offset %q", s, o)
		}
		if s, code, o := raw(t, e, "PATCH", p, "token-alice", off(2), "x"); s != 409 || code != "offset_mismatch" || o != "5" {
			t.Fatalf("wrong offset: %d %q offset %q, want 409 with offset 5", s, code, o)
		}
		if s, _, o := raw(t, e, "PATCH", p, "token-alice", off(5), "56789"); s != 204 || o != "10" {
			t.Fatalf("append: %d offset %q", s, o)
		}
		if s, code, _ := raw(t, e, "POST", p+"/finish", "token-alice", map[string]string{blob.HeaderChecksum: strings.Repeat("00", 8)}, ""); s != 422 || code != "digest_mismatch" {
			t.Fatalf("finish with a wrong hash: %d %q", s, code)
		}
		// The whole body is "0123456789"; its CRC-64/NVME:
		const sum = "15f9b1ee4cfd9c1d"
		hdr := map[string]string{blob.HeaderChecksum: sum}
		if s, _, _ := raw(t, e, "POST", p+"/finish", "token-alice", hdr, ""); s != 200 {
			t.Fatalf("finish: %d", s)
		}
		if s, _, _ := raw(t, e, "POST", p+"/finish", "token-alice", hdr, ""); s != 200 {
			t.Fatalf("finishing again is idempotent: %d", s)
		}
		if s, code, _ := raw(t, e, "PATCH", p, "token-alice", off(10), ""); s != 409 || code != "finished" {
			t.Fatalf("append after finish: %d %q", s, code)
		}
		if s, _, _ := raw(t, e, "HEAD", p, "", nil, ""); s != 200 {
			t.Fatalf("HEAD: %d", s)
		}
		// Ranged download.
		req, _ := http.NewRequest("GET", e.srv.URL+p, nil)
		req.Header.Set("Range", "bytes=3-6")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 206 || string(b) != "3456" {
			t.Fatalf("range: %d %q", resp.StatusCode, b)
		}
		for _, c := range []struct {
			rng    string
			status int
			body   string
		}{
			{"bytes=7-", 206, "789"}, {"bytes=-2", 206, "89"}, {"bytes=5-100", 206, "56789"},
			{"bytes=0-0,5-6", 200, "0123456789"}, {"bytes=10-", 416, ""}, {"bytes=4-3", 416, ""},
		} {
			req, _ := http.NewRequest("GET", e.srv.URL+p, nil)
			req.Header.Set("Range", c.rng)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || (c.status != 416 && string(b) != c.body) {
				t.Errorf("Range %s: %d %q, want %d %q", c.rng, resp.StatusCode, b, c.status, c.body)
			}
		}
		// Only the owner deletes.
		if s, code, _ := raw(t, e, "DELETE", p, "token-bob", nil, ""); s != 403 || code != "forbidden" {
			t.Fatalf("delete by another: %d %q", s, code)
		}
		if s, _, _ := raw(t, e, "DELETE", p, "token-alice", nil, ""); s != 204 {
			t.Fatalf("delete: %d", s)
		}
		if s, code, _ := raw(t, e, "GET", p, "", nil, ""); s != 404 || code != "not_found" {
			t.Fatalf("download after delete: %d %q", s, code)
		}
	})
}

func TestClientErrors(t *testing.T) {
	forEachBackend(t, blob.Config{MaxSize: 1 << 20, Quota: 3 << 20}, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client("token-alice")
		if _, err := c.CreateUpload(ctx, 2<<20, rand.Reader); !errors.Is(err, transfer.ErrTooLarge) {
			t.Fatalf("over the limit: %v", err)
		}
		if _, err := e.client("nope").CreateUpload(ctx, 1, rand.Reader); !errors.Is(err, transfer.ErrUnauthorized) {
			t.Fatalf("bad token: %v", err)
		}
		// The quota counts declared sizes of unfinished uploads too.
		var ups []transfer.Upload
		for range 3 {
			up, err := c.CreateUpload(ctx, 1000000, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ups = append(ups, up)
		}
		_, err := c.CreateUpload(ctx, 1000000, rand.Reader)
		var se *transfer.ServerError
		if !errors.Is(err, transfer.ErrQuota) || !errors.As(err, &se) || se.Message == "" {
			t.Fatalf("quota: %v", err)
		}
		// Another account has its own quota.
		if _, err := e.client("token-bob").CreateUpload(ctx, 1000000, rand.Reader); err != nil {
			t.Fatalf("bob: %v", err)
		}
		// Deleting frees quota.
		if err := c.Delete(ctx, ups[0].Blob); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateUpload(ctx, 1000000, rand.Reader); err != nil {
			t.Fatalf("after delete: %v", err)
		}
		var unknown filecrypt.FileRef
		unknown.Blob[0] = 1
		if err := c.Download(ctx, unknown, filepath.Join(t.TempDir(), "x"), nil); !errors.Is(err, transfer.ErrNotFound) {
			t.Fatalf("unknown blob: %v", err)
		}
		f, _ := os.Open(writeFile(t, 10, 1))
		defer f.Close()
		if _, err := c.Upload(ctx, transfer.Upload{Blob: unknown.Blob, Size: 10}, f, nil); !errors.Is(err, transfer.ErrNotFound) {
			t.Fatalf("upload to unknown blob: %v", err)
		}
		// Uploading someone else's blob fails.
		if _, err := e.client("token-bob").Upload(ctx, transfer.Upload{Blob: ups[1].Blob, Key: ups[1].Key, Size: 1000000}, io.NewSectionReader(zeroReader{}, 0, 1000000), nil); !errors.Is(err, transfer.ErrForbidden) {
			t.Fatalf("upload to another's blob: %v", err)
		}
		// A file that changed between attempts cannot be finished under the
		// same key: the server-side hash catches it.
		up := ups[2]
		first := writeFile(t, 1000000, 2)
		f1, _ := os.Open(first)
		defer f1.Close()
		cut, cancel := context.WithCancel(ctx)
		c.SegmentSize = 200000
		_, err = c.Upload(cut, up, f1, func(done, total int64) {
			if done > 300000 {
				cancel()
			}
		})
		if err == nil {
			t.Fatal("cut upload succeeded")
		}
		f2, _ := os.Open(writeFile(t, 1000000, 3))
		defer f2.Close()
		if _, err := c.Upload(ctx, up, f2, nil); !errors.Is(err, transfer.ErrDigestMismatch) {
			t.Fatalf("changed file: %v", err)
		}
	})
}

type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, _ int64) (int, error) { clear(p); return len(p), nil }

func TestSweep(t *testing.T) {
	forEachBackend(t, blob.Config{UploadTTL: time.Hour, Retention: 24 * time.Hour, Quota: 1 << 20}, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client("token-alice")
		done := e.send(c, writeFile(t, 1000, 1))
		idle, err := c.CreateUpload(ctx, 300000, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		active, err := c.CreateUpload(ctx, 300000, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.advance(50 * time.Minute)
		if s, _, _ := raw(t, e, "PATCH", "/v1/blobs/"+active.Blob.String(), "token-alice", map[string]string{blob.HeaderOffset: "0"}, "abc"); s != 204 {
			t.Fatalf("append: %d", s)
		}
		e.clock.advance(20 * time.Minute)
		n, err := e.handler.Sweep(ctx)
		if err != nil || n != 1 {
			t.Fatalf("first sweep deleted %d (%v), want 1 (the idle upload)", n, err)
		}
		if got := headStatus(t, e, idle.Blob); got != 404 {
			t.Fatalf("idle upload still there: %d", got)
		}
		for _, id := range []filecrypt.BlobID{active.Blob, done.Blob} {
			if got := headStatus(t, e, id); got != 200 {
				t.Fatalf("blob %s swept too early: %d", id, got)
			}
		}
		e.clock.advance(24 * time.Hour)
		if n, err := e.handler.Sweep(ctx); err != nil || n != 2 {
			t.Fatalf("second sweep deleted %d (%v), want 2", n, err)
		}
		if err := e.client("").Download(ctx, done, filepath.Join(t.TempDir(), "x"), nil); !errors.Is(err, transfer.ErrNotFound) {
			t.Fatalf("expired blob downloadable: %v", err)
		}
		// All quota is free again.
		if _, err := c.CreateUpload(ctx, 1<<20-filecrypt.HeaderSize-filecrypt.Overhead*20, rand.Reader); err != nil {
			t.Fatalf("quota not freed: %v", err)
		}
	})
}

func headStatus(t *testing.T, e *env, id filecrypt.BlobID) int {
	t.Helper()
	resp, err := e.srv.Client().Head(e.srv.URL + "/v1/blobs/" + id.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestConcurrentTransfers runs uploads and downloads in parallel (run with
// -race).
func TestConcurrentTransfers(t *testing.T) {
	forEachBackend(t, blob.Config{MaxUploads: 2}, func(t *testing.T, e *env) {
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := range 6 {
			wg.Go(func() {
				src := writeFile(t, int64(300000*(i+1)), byte(i))
				ref, err := e.trySend(e.client("token-alice"), src)
				if err != nil {
					errs <- err
					return
				}
				dst := filepath.Join(t.TempDir(), "out")
				if err := e.client("").Download(context.Background(), ref, dst, nil); err != nil {
					errs <- err
					return
				}
				a, _ := os.ReadFile(src)
				b, _ := os.ReadFile(dst)
				if string(a) != string(b) {
					errs <- errors.New("mismatch")
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// TestStalledAppendDropped: a client that stops sending mid-body is cut off
// after the idle timeout, and what it sent is kept.
func TestStalledAppendDropped(t *testing.T) {
	forEachBackend(t, blob.Config{IdleTimeout: 100 * time.Millisecond, MaxUploads: 1}, func(t *testing.T, e *env) {
		id := createRaw(t, e, "token-alice", 1000)
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequest(http.MethodPatch, e.srv.URL+"/v1/blobs/"+id, pr)
		req.Header.Set("Authorization", "Bearer token-alice")
		req.Header.Set(blob.HeaderOffset, "0")
		req.ContentLength = 1000
		done := make(chan error, 1)
		go func() {
			resp, err := e.srv.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		if _, err := pw.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		<-done // the server gave up on the stalled body
		fid := filecrypt.BlobID(mustParseID(t, id))
		if off := headOffset(t, e, fid); off != 100 {
			t.Fatalf("after the stall the server holds %d bytes, want 100", off)
		}
		// The only upload slot is free again.
		if s, _, o := raw(t, e, "PATCH", "/v1/blobs/"+id, "token-alice", map[string]string{blob.HeaderOffset: "100"}, "abc"); s != 204 || o != "103" {
			t.Fatalf("append after the stall: %d %q", s, o)
		}
	})
}

func mustParseID(t *testing.T, s string) blob.ID {
	t.Helper()
	id, err := blob.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
