package blob

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

type namedBackend struct {
	name    string
	backend Backend
	// objects counts what the backend holds outside the records folder
	// (nil: the local backend, which lives inside it).
	objects func() int
}

// archiveBackends returns the backends the archive runs on: the local
// folder (nil: the default) and S3 (an in-process S3 fake, through the
// real minio client).
func archiveBackends(t *testing.T) []namedBackend {
	t.Helper()
	mem := s3mem.New()
	fake := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(fake.Close)
	u, _ := url.Parse(fake.URL)
	s3, err := NewS3(context.Background(), S3Config{Endpoint: u.Host, Region: "us-east-1", Bucket: "parley",
		AccessKey: "test", SecretKey: "test", Prefix: "parley/archive/", Insecure: true, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		list, err := mem.ListBucket("parley", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Contents)
	}
	return []namedBackend{{name: "local"}, {name: "s3", backend: s3, objects: count}}
}

func usageOf(t *testing.T, srv *httptest.Server, token string) ArchiveUsage {
	t.Helper()
	st, b := archiveDo(t, srv, "GET", "/v1/archive/usage", token, nil)
	var u ArchiveUsage
	if st != 200 || json.Unmarshal(b, &u) != nil {
		t.Fatalf("usage: %d %s", st, b)
	}
	return u
}

// TestArchiveQuota: an account's archive blobs count against its quota;
// a put over it is refused with 507 quota_exceeded and stores nothing;
// replacing a blob counts only the difference; deleting frees room; other
// accounts are not affected. Both backends.
func TestArchiveQuota(t *testing.T) {
	for _, b := range archiveBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			const quota = 3*ArchiveMinSegment + ArchiveKeyRecordSize
			srv, dir := archiveServerWith(t, ArchiveConfig{Backend: b.backend, Quota: quota})
			seg := bytes.Repeat([]byte{5}, ArchiveMinSegment)
			name := func(i int) string { return "/v1/archive/blobs/s/" + strings.Repeat(string(rune('a'+i)), 64) }
			for i := range 3 {
				if st, body := archiveDo(t, srv, "PUT", name(i), "tok-alice", seg); st != http.StatusNoContent {
					t.Fatalf("put %d: %d %s", i, st, body)
				}
			}
			// Replacing a segment by one of the same size fits.
			if st, body := archiveDo(t, srv, "PUT", name(1), "tok-alice", bytes.Repeat([]byte{6}, ArchiveMinSegment)); st != http.StatusNoContent {
				t.Fatalf("replace: %d %s", st, body)
			}
			if u := usageOf(t, srv, "tok-alice"); u.Bytes != 3*ArchiveMinSegment || u.Quota != quota {
				t.Fatalf("usage %+v", u)
			}
			st, body := archiveDo(t, srv, "PUT", name(3), "tok-alice", seg)
			var e struct{ Error, Message string }
			_ = json.Unmarshal(body, &e)
			if st != http.StatusInsufficientStorage || e.Error != "quota_exceeded" || !strings.Contains(e.Message, "quota") {
				t.Fatalf("over quota: %d %s", st, body)
			}
			if st, _ := archiveDo(t, srv, "GET", name(3), "tok-alice", nil); st != http.StatusNotFound {
				t.Fatalf("the refused segment is stored: %d", st)
			}
			// A key record still fits; then not even that.
			rec := "/v1/archive/blobs/k/" + strings.Repeat("e", 64)
			if st, _ := archiveDo(t, srv, "PUT", rec, "tok-alice", make([]byte, ArchiveKeyRecordSize)); st != http.StatusNoContent {
				t.Fatalf("record within quota: %d", st)
			}
			if st, _ := archiveDo(t, srv, "PUT", "/v1/archive/blobs/k/"+strings.Repeat("f", 64), "tok-alice", make([]byte, ArchiveKeyRecordSize)); st != http.StatusInsufficientStorage {
				t.Fatalf("record over quota: %d", st)
			}
			// Bob has his own quota.
			if st, _ := archiveDo(t, srv, "PUT", name(0), "tok-bob", seg); st != http.StatusNoContent {
				t.Fatalf("bob's put: %d", st)
			}
			// Deleting frees room.
			if st, _ := archiveDo(t, srv, "DELETE", name(0), "tok-alice", nil); st != http.StatusNoContent {
				t.Fatalf("delete: %d", st)
			}
			if st, body := archiveDo(t, srv, "PUT", name(3), "tok-alice", seg); st != http.StatusNoContent {
				t.Fatalf("put after delete: %d %s", st, body)
			}
			if st, got := archiveDo(t, srv, "GET", name(3), "tok-alice", nil); st != 200 || !bytes.Equal(got, seg) {
				t.Fatalf("get: %d", st)
			}
			// Usage survives a restart (it is rebuilt from the index).
			srv2, _ := archiveServerWith(t, ArchiveConfig{Dir: dir, Backend: b.backend, Quota: quota})
			if u := usageOf(t, srv2, "tok-alice"); u.Bytes != 3*ArchiveMinSegment+ArchiveKeyRecordSize {
				t.Fatalf("usage after restart %+v", u)
			}
			if b.objects != nil {
				if n := b.objects(); n != 5 { // alice's 3 segments and 1 record, bob's segment
					t.Fatalf("bucket holds %d objects, want 5", n)
				}
				if blobs, _ := filepath.Glob(filepath.Join(dir, "data", "*", "*")); len(blobs) != 0 {
					t.Fatalf("archive bytes stored locally with S3: %v", blobs)
				}
			}
		})
	}
}

// TestArchiveUnlimited: a negative quota means no limit.
func TestArchiveUnlimited(t *testing.T) {
	srv, _ := archiveServerWith(t, ArchiveConfig{Quota: -1})
	for i := range 4 {
		if st, _ := archiveDo(t, srv, "PUT", "/v1/archive/blobs/s/"+strings.Repeat(string(rune('0'+i)), 64), "tok-alice", make([]byte, ArchiveMaxSegment)); st != http.StatusNoContent {
			t.Fatalf("put %d: %d", i, st)
		}
	}
	if u := usageOf(t, srv, "tok-alice"); u.Quota != 0 || u.Bytes != 4*ArchiveMaxSegment {
		t.Fatalf("usage %+v", u)
	}
}

// TestArchiveMigratesOldLayout: blobs written by the earlier layout (the
// bytes in the index file) are moved into the backend on first use.
func TestArchiveMigratesOldLayout(t *testing.T) {
	dir := t.TempDir()
	name := strings.Repeat("c", 64)
	seg := bytes.Repeat([]byte{3}, ArchiveMinSegment)
	old := filepath.Join(dir, "accounts", accountTag("alice"), "s", name)
	if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, seg, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, _ := archiveServerWith(t, ArchiveConfig{Dir: dir})
	if st, got := archiveDo(t, srv, "GET", "/v1/archive/blobs/s/"+name, "tok-alice", nil); st != 200 || !bytes.Equal(got, seg) {
		t.Fatalf("old blob: %d, %d bytes", st, len(got))
	}
	if u := usageOf(t, srv, "tok-alice"); u.Bytes != ArchiveMinSegment {
		t.Fatalf("usage %+v", u)
	}
	if b, _ := os.ReadFile(old); string(b) != "4096" {
		t.Fatalf("index entry after migration: %q", b)
	}
}

// TestArchiveS3SharedByProcesses: two archive handlers (two server
// processes, each with its own folder) on one bucket serve the same blobs,
// recovery slots and quota use.
func TestArchiveS3SharedByProcesses(t *testing.T) {
	s3 := archiveBackends(t)[1]
	const quota = 2 * ArchiveMinSegment
	one, _ := archiveServerWith(t, ArchiveConfig{Backend: s3.backend, Quota: quota})
	two, _ := archiveServerWith(t, ArchiveConfig{Backend: s3.backend, Quota: quota})
	seg := bytes.Repeat([]byte{8}, ArchiveMinSegment)
	a, b := "/v1/archive/blobs/s/"+strings.Repeat("1", 64), "/v1/archive/blobs/s/"+strings.Repeat("2", 64)
	if st, _ := archiveDo(t, one, "PUT", a, "tok-alice", seg); st != http.StatusNoContent {
		t.Fatalf("put on one: %d", st)
	}
	if st, got := archiveDo(t, two, "GET", a, "tok-alice", nil); st != 200 || !bytes.Equal(got, seg) {
		t.Fatalf("get on two: %d", st)
	}
	if st, got := archiveDo(t, two, "GET", "/v1/archive/list/s", "tok-alice", nil); st != 200 || string(got) != "s/"+strings.Repeat("1", 64)+"\n" {
		t.Fatalf("list on two: %d %q", st, got)
	}
	if st, _ := archiveDo(t, two, "PUT", b, "tok-alice", seg); st != http.StatusNoContent {
		t.Fatalf("put on two: %d", st)
	}
	// The quota counts both processes' uploads.
	if st, _ := archiveDo(t, one, "PUT", "/v1/archive/blobs/k/"+strings.Repeat("3", 64), "tok-alice", make([]byte, ArchiveKeyRecordSize)); st != http.StatusInsufficientStorage {
		t.Fatalf("over the shared quota: %d", st)
	}
	if u := usageOf(t, one, "tok-alice"); u.Bytes != 2*ArchiveMinSegment {
		t.Fatalf("usage on one %+v", u)
	}
	slot := "/v1/archive/recovery/" + strings.Repeat("4", 64)
	if st, _ := archiveDo(t, one, "PUT", slot, "tok-alice", []byte("sealed")); st != http.StatusNoContent {
		t.Fatalf("slot on one: %d", st)
	}
	if st, got := archiveDo(t, two, "GET", slot, "", nil); st != 200 || string(got) != "sealed" {
		t.Fatalf("slot on two: %d %q", st, got)
	}
	if st, _ := archiveDo(t, two, "PUT", slot, "tok-bob", []byte("evil")); st != http.StatusForbidden {
		t.Fatalf("bob overwrites through two: %d", st)
	}
	if st, _ := archiveDo(t, two, "DELETE", a, "tok-alice", nil); st != http.StatusNoContent {
		t.Fatalf("delete on two: %d", st)
	}
	if st, _ := archiveDo(t, one, "GET", a, "tok-alice", nil); st != http.StatusNotFound {
		t.Fatalf("deleted blob on one: %d", st)
	}
}
