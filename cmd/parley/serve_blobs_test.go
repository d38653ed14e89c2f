package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-im/parley/server/blob"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/sqlite"
)

// TestImportFileMeta: blob records an earlier version kept as JSON files
// move into the database once, with their offsets and finish times, and the
// folder is renamed so the next start does not import again.
func TestImportFileMeta(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "meta")
	old, err := blob.OpenFileMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	done := blob.Meta{ID: blob.ID{1}, Owner: "alice", Size: 10, Created: now, Updated: now}
	half := blob.Meta{ID: blob.ID{2}, Owner: "alice", Size: 20, Created: now, Updated: now}
	for _, m := range []blob.Meta{done, half} {
		if err := old.Create(ctx, m, blob.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	done.Offset, done.HashState, done.Finished = 10, []byte("crc"), now.Add(time.Minute)
	half.Offset, half.HashState, half.Updated = 5, []byte("half"), now.Add(time.Second)
	for _, m := range []blob.Meta{done, half} {
		if err := old.Update(ctx, m, 0); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sqlite.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	meta := blob.StoreMeta{Store: st}
	log := slog.New(slog.DiscardHandler)
	for range 2 {
		if err := importFileMeta(ctx, dir, meta, log); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []blob.Meta{done, half} {
		got, err := meta.Get(ctx, want.ID)
		if err != nil || got.Owner != want.Owner || got.Size != want.Size || got.Offset != want.Offset ||
			string(got.HashState) != string(want.HashState) || !got.Finished.Equal(want.Finished) || !got.Created.Equal(want.Created) {
			t.Errorf("imported %+v (%v), want %+v", got, err, want)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the JSON folder is still there: %v", err)
	}
	if _, err := os.Stat(dir + ".imported"); err != nil {
		t.Errorf("no renamed folder: %v", err)
	}
	// The quota counts the imported blobs.
	if err := meta.Create(ctx, blob.Meta{ID: blob.ID{3}, Owner: "alice", Size: 1, Created: now, Updated: now}, blob.Quota{Bytes: 30}); err == nil {
		t.Error("the imported blobs do not count against the quota")
	}
}
