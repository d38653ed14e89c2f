// Package blobtest tests the client-side file encryption (filecrypt,
// filecrypt/transfer) against the blob service (server/blob) over real HTTP
// on 127.0.0.1, with every storage backend.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/filecrypt/transfer"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/blob"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/sqlite"
)

const (
	alice = identity.AccountID("aliceaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	bob   = identity.AccountID("bobbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
)

var tokens = map[string]identity.AccountID{"token-alice": alice, "token-bob": bob}

var testAuth = blob.AuthorizerFunc(func(_ context.Context, token string) (identity.AccountID, error) {
	if a, ok := tokens[token]; ok {
		return a, nil
	}
	return "", blob.ErrUnauthorized
})

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// env is one blob service on a real HTTP listener.
type env struct {
	t       testing.TB
	cfg     blob.Config
	backend blob.Backend
	metaDir string
	st      store.Store
	handler *blob.Handler
	srv     *httptest.Server
	clock   *clock
	// tamper flips one bit of the stored bytes of a blob at offset.
	tamper func(id blob.ID, offset int64)
	// patchRead counts PATCH body bytes the server has read.
	patchRead atomic.Int64
}

// backends lists the storage backends every conformance test runs against.
var backends = []struct {
	name string
	open func(t testing.TB) (blob.Backend, func(blob.ID, int64))
}{
	{"local", openLocal},
	{"s3", openS3},
}

func openLocal(t testing.TB) (blob.Backend, func(blob.ID, int64)) {
	dir := filepath.Join(t.TempDir(), "data")
	b, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b, func(id blob.ID, off int64) {
		p := filepath.Join(dir, id.String()[:2], id.String())
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		flipAt(t, f, off)
	}
}

func flipAt(t testing.TB, f interface {
	io.ReaderAt
	io.WriterAt
}, off int64) {
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// openS3 runs an in-process S3 fake on loopback and connects the backend
// to it with small segments, so that blobs span many objects.
func openS3(t testing.TB) (blob.Backend, func(blob.ID, int64)) {
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(fake.Close)
	u, _ := url.Parse(fake.URL)
	cfg := blob.S3Config{Endpoint: u.Host, Region: "us-east-1", Bucket: "parley", AccessKey: "test", SecretKey: "test",
		Prefix: "blobs/", Insecure: true, SegmentSize: 1 << 20}
	b, err := blob.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4("test", "test", ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return b, func(id blob.ID, off int64) {
		ctx := context.Background()
		for obj := range mc.ListObjects(ctx, "parley", minio.ListObjectsOptions{Prefix: "blobs/" + id.String() + "/"}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			start, err := strconv.ParseInt(obj.Key[len(obj.Key)-20:], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if off < start || off >= start+obj.Size {
				continue
			}
			o, err := mc.GetObject(ctx, "parley", obj.Key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(o)
			if err != nil {
				t.Fatal(err)
			}
			data[off-start] ^= 0x01
			if _, err := mc.PutObject(ctx, "parley", obj.Key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("no segment holds offset %d", off)
	}
}

func newEnv(t testing.TB, open func(testing.TB) (blob.Backend, func(blob.ID, int64)), cfg blob.Config) *env {
	e := &env{t: t, clock: newClock(), metaDir: filepath.Join(t.TempDir(), "meta")}
	e.backend, e.tamper = open(t)
	if cfg.Now == nil {
		cfg.Now = e.clock.now
	}
	e.cfg = cfg
	e.start()
	t.Cleanup(func() {
		e.srv.Close()
		if err := e.st.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// start (re)creates the handler over the same storage and records (a
// SQLite database, as `parley serve` keeps them), as a restarted homeserver
// would.
func (e *env) start() {
	if e.st != nil {
		if err := e.st.Close(); err != nil {
			e.t.Fatal(err)
		}
	}
	st, err := sqlite.Open(context.Background(), e.metaDir, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.handler = blob.NewHandler(e.cfg, e.backend, blob.StoreMeta{Store: st}, testAuth)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			r.Body = &countingBody{ReadCloser: r.Body, n: &e.patchRead}
		}
		e.handler.ServeHTTP(w, r)
	})
	if e.srv == nil {
		e.srv = httptest.NewServer(h) // listens on 127.0.0.1:0
		return
	}
	e.srv.Config.Handler = h
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (e *env) client(token string) *transfer.Client {
	return &transfer.Client{
		BaseURL:     e.srv.URL,
		HTTP:        e.srv.Client(),
		Token:       func(context.Context) (string, error) { return token, nil },
		SegmentSize: 4 << 20,
	}
}

// writeFile writes size pseudo-random bytes to a new file and returns its path.
func writeFile(t testing.TB, size int64, seed byte) string {
	p := filepath.Join(t.TempDir(), "plain")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, io.LimitReader(mrand.NewChaCha8([32]byte{seed}), size)); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameFiles compares two files byte for byte, streaming.
func sameFiles(t testing.TB, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			t.Fatalf("files differ in the MiB at offset %d", off)
		}
		off += int64(na)
		if ea != nil || eb != nil {
			if (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF) {
				return
			}
			t.Fatalf("read: %v / %v", ea, eb)
		}
	}
}

// send creates and completes an upload of the file at path.
func (e *env) send(c *transfer.Client, path string) filecrypt.FileRef {
	e.t.Helper()
	ref, err := e.trySend(c, path)
	if err != nil {
		e.t.Fatalf("send: %v", err)
	}
	return ref
}

func (e *env) trySend(c *transfer.Client, path string) (filecrypt.FileRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return filecrypt.FileRef{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return filecrypt.FileRef{}, err
	}
	up, err := c.CreateUpload(context.Background(), st.Size(), rand.Reader)
	if err != nil {
		return filecrypt.FileRef{}, err
	}
	ref, err := c.Upload(context.Background(), up, f, nil)
	if err != nil {
		return filecrypt.FileRef{}, err
	}
	ref.Name, ref.MediaType = filepath.Base(path), "application/octet-stream"
	return ref, nil
}

func blobID(ref filecrypt.FileRef) blob.ID { return blob.ID(ref.Blob) }

// forEachBackend runs a test against every backend.
func forEachBackend(t *testing.T, cfg blob.Config, f func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, newEnv(t, b.open, cfg))
		})
	}
}

// gatedReaderAt blocks reads that go past gate until release is closed.
type gatedReaderAt struct {
	r       io.ReaderAt
	gate    int64
	release chan struct{}
}

func (g *gatedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > g.gate {
		<-g.release
	}
	return g.r.ReadAt(p, off)
}

// cutUpload runs an upload whose source stalls at gate (a multiple of 1 MiB,
// the client's read-ahead unit), waits until the server has read everything
// the client could send, then cuts the connection. It returns the offset the
// service holds afterwards, which is exactly the chunks before the gate (the
// client knows the file's size, so it knows which chunk is the last without
// reading ahead).
func cutUpload(t *testing.T, e *env, c *transfer.Client, up transfer.Upload, src io.ReaderAt, gate int64) int64 {
	t.Helper()
	c.SegmentSize = 1 << 40 // one request, cut while the server reads it
	want := filecrypt.ChunkOffset(uint64(gate / filecrypt.ChunkSize))
	start := e.patchRead.Load()
	g := &gatedReaderAt{r: src, gate: gate, release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Upload(ctx, up, g, nil)
		done <- err
	}()
	for e.patchRead.Load()-start < want {
		time.Sleep(time.Millisecond) // waiting for progress, not asserting time
	}
	cancel()
	// HEAD waits for the cut request's handler, which holds the blob. The
	// source stays stalled until then, so nothing more can be sent.
	off := headOffset(t, e, up.Blob)
	close(g.release)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cut upload: got %v, want context.Canceled", err)
	}
	if off != want {
		t.Fatalf("after the cut the service holds %d bytes, want %d", off, want)
	}
	return off
}
