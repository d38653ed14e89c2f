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
