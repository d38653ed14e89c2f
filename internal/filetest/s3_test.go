package filetest

import (
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// TestFileTransferS3 runs `parley serve` with S3 storage (an in-process S3
// fake), sends a file and fetches it: the blob lives in the bucket, not in
// the data folder.
func TestFileTransferS3(t *testing.T) {
	mem := s3mem.New()
	fake := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(fake.Close)
	u, _ := url.Parse(fake.URL)
	srv := startServer(t, "--s3-endpoint", u.Host, "--s3-bucket", "parley", "--s3-insecure",
		"--s3-region", "us-east-1", "--s3-access-key", "test", "--s3-secret-key", "test")
	alice := newProfile(t, srv, "alice")
	bob := newProfile(t, srv, "bob")
	path := canaryFile(t, "canary-s3-file ", 20<<20+12345)
	sent := one[sentJSON](t, alice.cmd("file", "send", "bob@127.0.0.1", path, "--json"))
	m := bob.recvFile()
	if m.ID != sent.ID || m.File == nil || m.File.Size != 20<<20+12345 {
		t.Fatalf("recv --json printed %+v", m)
	}
	out := filepath.Join(t.TempDir(), "got.bin")
	bob.cmd("file", "get", m.ID, "--out", out)
	if fileHash(t, out) != fileHash(t, path) {
		t.Fatal("downloaded bytes differ from the sent file")
	}
	if blobs, _ := filepath.Glob(filepath.Join(srv.Data, "blobs", "data", "*", "*")); len(blobs) != 0 {
		t.Errorf("blobs stored locally with S3 configured: %v", blobs)
	}
	list, err := mem.ListBucket("parley", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil || len(list.Contents) == 0 {
		t.Fatalf("bucket holds no objects (%v)", err)
	}
	for _, o := range list.Contents {
		if !strings.HasPrefix(o.Key, "parley/blobs/") {
			t.Errorf("object %q outside the --s3-prefix", o.Key)
		}
	}
}
