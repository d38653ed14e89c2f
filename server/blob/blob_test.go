package blob

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileMetaPersists(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := OpenFileMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := Meta{ID: ID{1}, Owner: "alice", Size: 100, Created: now, Updated: now}
	b := Meta{ID: ID{2}, Owner: "alice", Size: 50, Created: now, Updated: now}
	for _, m := range []Meta{a, b} {
		if err := s.Create(ctx, m, Quota{Bytes: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, Meta{ID: ID{3}, Owner: "alice", Size: 51}, Quota{Bytes: 200}); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	a.Offset, a.HashState, a.Finished = 100, []byte{1, 2, 3}, now.Add(time.Hour)
	if err := s.Update(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, a, 0); !errors.Is(err, ErrOffset) {
		t.Fatalf("update from a stale offset: %v", err)
	}
	// A leftover temporary file from a crash is ignored and removed.
	if err := os.WriteFile(filepath.Join(dir, "x.json.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = OpenFileMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil || got.Offset != 100 || string(got.HashState) != "\x01\x02\x03" || !got.Finished.Equal(a.Finished) || got.Owner != "alice" {
		t.Fatalf("reopened: %+v, %v", got, err)
	}
	// Usage was rebuilt: 150 of 200 used.
	if err := s.Create(ctx, Meta{ID: ID{3}, Owner: "alice", Size: 51}, Quota{Bytes: 200}); !errors.Is(err, ErrQuota) {
		t.Fatalf("usage after reopen: %v", err)
	}
	ids, err := s.Expired(ctx, now.Add(time.Minute), now, 10)
	if err != nil || len(ids) != 1 || ids[0] != b.ID {
		t.Fatalf("expired: %v %v", ids, err)
	}
	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Create(ctx, Meta{ID: ID{3}, Owner: "alice", Size: 150}, Quota{Bytes: 200}); err != nil {
		t.Fatalf("quota not freed: %v", err)
	}
	// The blob count is limited too: alice holds 2 blobs now.
	if err := s.Create(ctx, Meta{ID: ID{4}, Owner: "alice"}, Quota{Blobs: 2}); !errors.Is(err, ErrQuota) {
		t.Fatalf("blob count: %v", err)
	}
	if err := s.Create(ctx, Meta{ID: ID{4}, Owner: "bob"}, Quota{Blobs: 2}); err != nil {
		t.Fatalf("another account's count: %v", err)
	}
	// A record that does not parse, or names another id, stops the open.
	if err := os.WriteFile(filepath.Join(dir, ID{9}.String()+".json"), []byte(`{"id":"`+ID{8}.String()+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileMeta(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt record: %v", err)
	}
}

func TestKeyedLocks(t *testing.T) {
	var k keyedLocks
	unlock, err := k.lock(context.Background(), ID{1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := k.lock(ctx, ID{1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("second lock: %v", err)
	}
	other, err := k.lock(context.Background(), ID{2})
	if err != nil {
		t.Fatalf("another id is independent: %v", err)
	}
	other()
	unlock()
	if len(k.locks) != 0 {
		t.Fatalf("%d lock entries left", len(k.locks))
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(ID{1, 2, 3}.String())
	f.Add(strings.Repeat("A", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err == nil && id.String() != s {
			t.Fatalf("ParseID(%q) is not canonical", s)
		}
	})
}
