package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/filecrypt/transfer"
	"github.com/parley-im/parley/server/blob"
)

// largeSize is the big round-trip size: 1 GiB with PARLEY_TEST_LARGE=1.
func largeSize() int64 {
	if os.Getenv("PARLEY_TEST_LARGE") == "1" {
		return 1 << 30
	}
	return 64 << 20
}

func TestRoundTrip(t *testing.T) {
	sizes := []int64{0, 1, filecrypt.ChunkSize - 1, filecrypt.ChunkSize, filecrypt.ChunkSize + 1, 5<<20 + 3, largeSize()}
	forEachBackend(t, blob.Config{}, func(t *testing.T, e *env) {
		up, down := e.client("token-alice"), e.client("")
		for _, size := range sizes {
			src := writeFile(t, size, byte(size))
			ref := e.send(up, src)
			if ref.Size != size {
				t.Fatalf("size %d: ref says %d", size, ref.Size)
			}
			// The reference survives its wire encoding.
			b, err := ref.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if ref, err = filecrypt.ParseFileRef(b); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "out")
			var last int64
			if err := down.Download(context.Background(), ref, dst, func(done, total int64) { last = done }); err != nil {
				t.Fatalf("size %d: download: %v", size, err)
			}
			if last != size && size > 0 {
				t.Fatalf("size %d: progress ended at %d", size, last)
			}
			sameFiles(t, src, dst)
		}
	})
}

// TestUploadResumesAfterCut cuts an upload mid-request once the server has
// read part of it, then resumes it (also across a server restart).
func TestUploadResumesAfterCut(t *testing.T) {
	forEachBackend(t, blob.Config{}, func(t *testing.T, e *env) {
		const size = 16 << 20
		src := writeFile(t, size, 7)
		c := e.client("token-alice")
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		up, err := c.CreateUpload(context.Background(), size, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cutUpload(t, e, c, up, f, 8<<20)
		e.start() // restart the service over the same storage
		ref, err := c.Upload(context.Background(), up, f, nil)
		if err != nil {
			t.Fatalf("resumed upload: %v", err)
		}
		if read := e.patchRead.Load(); read > size+size/2 {
			t.Fatalf("server read %d body bytes for a %d byte file: the resume started over", read, size)
		}
		dst := filepath.Join(t.TempDir(), "out")
		if err := e.client("").Download(context.Background(), ref, dst, nil); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, src, dst)
	})
}

func headOffset(t *testing.T, e *env, id filecrypt.BlobID) int64 {
	t.Helper()
	resp, err := e.srv.Client().Head(e.srv.URL + "/v1/blobs/" + id.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var off int64
	if _, err := fmt.Sscan(resp.Header.Get(blob.HeaderOffset), &off); err != nil {
		t.Fatalf("HEAD status %d, offset %q", resp.StatusCode, resp.Header.Get(blob.HeaderOffset))
	}
	return off
}

func TestDownloadResumes(t *testing.T) {
	forEachBackend(t, blob.Config{}, func(t *testing.T, e *env) {
		const size = 8<<20 + 123
		src := writeFile(t, size, 8)
		ref := e.send(e.client("token-alice"), src)
		dst := filepath.Join(t.TempDir(), "out")
		// The network dies after 3 MiB of the first response.
		c := e.client("")
		c.HTTP = &http.Client{Transport: &cutTransport{base: e.srv.Client().Transport, after: 3 << 20}}
		err := c.Download(context.Background(), ref, dst, nil)
		if !errors.Is(err, errCut) {
			t.Fatalf("cut download: got %v", err)
		}
		if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("an incomplete download was written out: %v", err)
		}
		var first int64 = -1
		if err := c.Download(context.Background(), ref, dst, func(done, total int64) {
			if first < 0 {
				first = done
			}
		}); err != nil {
			t.Fatal(err)
		}
		// Every whole chunk within the first 3 MiB of ciphertext was
		// verified and kept; the resumed download continues after them.
		verified := int64((3<<20-filecrypt.HeaderSize)/(filecrypt.ChunkSize+filecrypt.Overhead)) * filecrypt.ChunkSize
		if first <= verified || first > verified+filecrypt.ChunkSize {
			t.Fatalf("resumed download's first progress is %d, want just after %d", first, verified)
		}
		sameFiles(t, src, dst)
		if _, err := os.Stat(dst + transfer.PartSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("partial file left behind: %v", err)
		}
	})
}

// TestTamperingDetected flips one stored bit in each region of the
// ciphertext; every download must fail and write nothing out.
func TestTamperingDetected(t *testing.T) {
	forEachBackend(t, blob.Config{}, func(t *testing.T, e *env) {
		const size = 3*filecrypt.ChunkSize + 1000
		src := writeFile(t, size, 9)
		ref := e.send(e.client("token-alice"), src)
		ctSize, _ := filecrypt.CiphertextSize(size)
		offsets := []int64{0, 7, filecrypt.HeaderSize, filecrypt.ChunkOffset(1) - 1, filecrypt.ChunkOffset(1) + 5,
			filecrypt.ChunkOffset(2) + 40000, filecrypt.ChunkOffset(3) + 3, ctSize - 1}
		c := e.client("")
		for _, off := range offsets {
			e.tamper(blobID(ref), off)
			dst := filepath.Join(t.TempDir(), "out")
			err := c.Download(context.Background(), ref, dst, nil)
			if !errors.Is(err, filecrypt.ErrAuthentication) && !errors.Is(err, filecrypt.ErrHeader) && !errors.Is(err, filecrypt.ErrVersion) {
				t.Fatalf("tampered at %d: got %v, want an authentication error", off, err)
			}
			for _, p := range []string{dst, dst + transfer.PartSuffix} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("tampered at %d: %s exists after the failed download", off, p)
				}
			}
			e.tamper(blobID(ref), off) // undo
		}
		// Untampered, it downloads again (so each failure above was the tampering).
		dst := filepath.Join(t.TempDir(), "out")
		if err := c.Download(context.Background(), ref, dst, nil); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, src, dst)
	})
}

// TestWrongHashNotWrittenOut: a reference whose hash does not match (a
// sender bug or lie) leaves no file behind.
func TestWrongHashNotWrittenOut(t *testing.T) {
	forEachBackend(t, blob.Config{}, func(t *testing.T, e *env) {
		ref := e.send(e.client("token-alice"), writeFile(t, 100000, 10))
		ref.Hash[0] ^= 1
		dst := filepath.Join(t.TempDir(), "out")
		if err := e.client("").Download(context.Background(), ref, dst, nil); !errors.Is(err, transfer.ErrHashMismatch) {
			t.Fatalf("got %v, want ErrHashMismatch", err)
		}
		for _, p := range []string{dst, dst + transfer.PartSuffix} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s exists", p)
			}
		}
	})
}

// TestStaleDataAfterCrashDiscarded: bytes a backend stored but the record
// never counted (a crash between the two) are discarded when the upload
// resumes, so the finished blob is exactly what the client sent.
func TestStaleDataAfterCrashDiscarded(t *testing.T) {
	forEachBackend(t, blob.Config{}, func(t *testing.T, e *env) {
		const size = 16<<20 + 77
		src := writeFile(t, size, 11)
		c := e.client("token-alice")
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		up, err := c.CreateUpload(context.Background(), size, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		off := cutUpload(t, e, c, up, f, 8<<20)
		// Simulate the crash: the backend got two more segments of junk the
		// record does not know about.
		app, err := e.backend.OpenAppend(context.Background(), blob.ID(up.Blob), off)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 600000)
		for i := range junk {
			junk[i] = 0xAA
		}
		for range 2 {
			if err := app.Append(junk); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Close(); err != nil {
			t.Fatal(err)
		}
		ref, err := c.Upload(context.Background(), up, f, nil)
		if err != nil {
			t.Fatalf("resume after the crash: %v", err)
		}
		dst := filepath.Join(t.TempDir(), "out")
		if err := e.client("").Download(context.Background(), ref, dst, nil); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, src, dst)
	})
}

var errCut = errors.New("network cut")

// cutTransport fails the body of its first response after some bytes.
type cutTransport struct {
	base  http.RoundTripper
	after int64
	used  bool
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil || c.used {
		return resp, err
	}
	c.used = true
	resp.Body = &cutBody{ReadCloser: resp.Body, left: c.after}
	return resp, nil
}

type cutBody struct {
	io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// rewriteTransport replaces every response body with what edit makes of
// it, declaring the new length or (known false) none.
type rewriteTransport struct {
	base  http.RoundTripper
	edit  func([]byte) []byte
	known bool
}

func (rt *rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b = rt.edit(b)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = -1
	if rt.known {
		resp.ContentLength = int64(len(b))
	}
	return resp, nil
}

// TestWrongLengthDetected: a download whose ciphertext is shorter or longer
// than the reference's size needs (cut at a chunk boundary, or with bytes
// after the last chunk) fails and is never written out; when the length is
// declared up front, the failure is an authentication error and the partial
// file is removed at once.
func TestWrongLengthDetected(t *testing.T) {
	forEachBackend(t, blob.Config{}, func(t *testing.T, e *env) {
		const size = 40*filecrypt.ChunkSize + 5
		src := writeFile(t, size, 12)
		ref := e.send(e.client("token-alice"), src)
		edits := map[string]func([]byte) []byte{
			"one chunk short": func(b []byte) []byte { return b[:filecrypt.ChunkOffset(40)] },
			"trailing bytes":  func(b []byte) []byte { return append(b, 1, 2, 3) },
		}
		for name, edit := range edits {
			for _, known := range []bool{true, false} {
				c := e.client("")
				c.HTTP = &http.Client{Transport: &rewriteTransport{base: e.srv.Client().Transport, edit: edit, known: known}}
				dst := filepath.Join(t.TempDir(), "out")
				err := c.Download(context.Background(), ref, dst, nil)
				if err == nil {
					t.Fatalf("%s (length known %v): downloaded", name, known)
				}
				if _, serr := os.Stat(dst); !errors.Is(serr, os.ErrNotExist) {
					t.Fatalf("%s (length known %v): written out", name, known)
				}
				if known || name == "trailing bytes" {
					if !errors.Is(err, filecrypt.ErrAuthentication) {
						t.Fatalf("%s (length known %v): got %v, want an authentication error", name, known, err)
					}
					if _, serr := os.Stat(dst + transfer.PartSuffix); !errors.Is(serr, os.ErrNotExist) {
						t.Fatalf("%s (length known %v): partial file kept", name, known)
					}
				}
			}
		}
	})
}
