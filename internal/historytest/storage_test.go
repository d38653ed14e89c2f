package historytest

import (
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/parley-im/parley/internal/binharness"
)

// TestArchiveOnS3WithQuota runs `parley serve` with S3 storage (an
// in-process S3 fake) and a small --archive-quota: the first send's
// history segment lands in the bucket under the S3 prefix, none in the data
// folder; once the account is over its quota a send still succeeds, and
// commands say why the history is not backed up; a recovery restores what
// the quota let in.
func TestArchiveOnS3WithQuota(t *testing.T) {
	mem := s3mem.New()
	fake := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(fake.Close)
	u, _ := url.Parse(fake.URL)
	// Two smallest segments (4 KiB each) and their key records fit; a
	// third does not. The first send uploads two: its new chat's record
	// (uploaded when the chat is made) and then the message.
	s := binharness.StartServer(t, binary, env(), "--s3-endpoint", u.Host, "--s3-bucket", "parley", "--s3-insecure",
		"--s3-region", "us-east-1", "--s3-access-key", "test", "--s3-secret-key", "test", "--archive-quota", "10KiB")
	alice := filepath.Join(t.TempDir(), "alice")
	bob := filepath.Join(t.TempDir(), "bob")
	ok(t, "init", "--server", s.URL, "--username", "alice", "--profile", alice)
	ok(t, "init", "--server", s.URL, "--username", "bob", "--profile", bob)
	words := strings.TrimSpace(ok(t, "recovery", "show", "--profile", alice))

	r := run(t, "", "send", "bob@127.0.0.1", "s3-canary-first", "--profile", alice)
	if r.code != 0 || strings.Contains(r.stderr, "quota") {
		t.Fatalf("first send: exit %d: %s", r.code, r.stderr)
	}
	list, err := mem.ListBucket("parley", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil || len(list.Contents) == 0 {
		t.Fatalf("bucket holds no history objects (%v)", err)
	}
	for _, o := range list.Contents {
		if !strings.HasPrefix(o.Key, "parley/blobs/archive/") {
			t.Errorf("object %q outside the archive prefix", o.Key)
		}
	}
	if data, _ := filepath.Glob(filepath.Join(s.Dir, "blobs", "archive", "data", "*", "*")); len(data) != 0 {
		t.Errorf("history stored locally with S3 configured: %v", data)
	}

	ok(t, "send", "bob@127.0.0.1", "s3-canary-second", "--profile", alice)
	// The pending history is retried by every command that syncs: a
	// warning; an explicit sync fails with the reason.
	r = run(t, "", "devices", "--profile", alice)
	if r.code != 0 || !strings.Contains(r.stderr, "over its quota") {
		t.Fatalf("devices over quota: exit %d: %q", r.code, r.stderr)
	}
	r = run(t, "", "recovery", "sync", "--profile", alice)
	if r.code == 0 || !strings.Contains(r.stderr, "over its quota") || !strings.Contains(r.stderr, "--archive-quota") {
		t.Fatalf("recovery sync over quota: exit %d: %q", r.code, r.stderr)
	}

	if err := os.RemoveAll(alice); err != nil {
		t.Fatal(err)
	}
	r = run(t, words+"\n", "init", "--recover", "--server", s.URL, "--profile", filepath.Join(t.TempDir(), "fresh"))
	if r.code != 0 || !strings.Contains(r.stderr, "with its history (") || strings.Contains(r.stderr, "(0 messages") {
		t.Fatalf("init --recover: exit %d: %s", r.code, r.stderr)
	}
	for _, o := range list.Contents {
		obj, err := mem.GetObject("parley", o.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, o.Size)
		_, _ = obj.Contents.Read(b)
		obj.Contents.Close()
		if strings.Contains(string(b), "s3-canary") {
			t.Errorf("object %s holds a message text", o.Key)
		}
	}
}
