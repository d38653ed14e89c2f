package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSyncTargetsLiveWAL checks the assumption deferred sync rests on: the
// file the flusher fsyncs is the live WAL, still after checkpoints have
// copied it into the database and the WAL has restarted.
func TestSyncTargetsLiveWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	b, err := openBackend(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 0; i < 3; i++ {
		tx, err := b.BeginWrite(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS t (x BLOB)"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO t (x) VALUES (?)", make([]byte, 100000)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.syncWAL(); err != nil {
			t.Fatalf("syncWAL: %v", err)
		}
		// Let the checkpointer copy the WAL so that the next write
		// restarts it.
		if _, err := b.ckptDB.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			t.Fatal(err)
		}
		live, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatalf("no WAL file: %v", err)
		}
		ours, err := b.wal.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(live, ours) {
			t.Fatalf("round %d: the synced file is not the live WAL", i)
		}
	}
}

// TestWriterRestartsWAL: asked to (restart), the writer checkpoints before
// its next transaction, which then starts the WAL over instead of
// appending to it. The checkpointer asks when its own passes cannot catch
// up with a writer that keeps committing.
func TestWriterRestartsWAL(t *testing.T) {
	ctx := context.Background()
	b, err := openBackend(ctx, filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	insert := func() {
		t.Helper()
		tx, err := b.BeginWrite(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS t (x BLOB)"); err != nil {
			t.Fatal(err)
		}
		// About 25 pages: as many WAL frames.
		if _, err := tx.Exec(ctx, "INSERT INTO t (x) VALUES (?)", make([]byte, 100000)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		insert()
	}
	b.restart.Store(true)
	insert()
	if b.restart.Load() {
		t.Fatal("the writer did not take up the restart")
	}
	// The WAL holds the last transaction only, not the five (over 100
	// frames).
	if frames := b.checkpoint(); frames == 0 || frames > 40 {
		t.Fatalf("WAL holds %d frames after the restart; want one transaction's (about 26)", frames)
	}
}
