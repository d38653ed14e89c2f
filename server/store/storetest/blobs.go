package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

func blobID(n byte) store.BlobID {
	var id store.BlobID
	id[0], id[31] = n, 0xb1
	return id
}

func newBlob(n byte, owner identity.AccountID, size int64) store.Blob {
	return store.Blob{ID: blobID(n), Owner: owner, Size: size, Created: at(0), Updated: at(0)}
}

// testBlobs: records round-trip, updates are compare-and-set on the offset,
// quotas count declared sizes and blob numbers, deletes give quota back,
// expiry finds idle unfinished and old finished blobs.
func testBlobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	const alice, bob = identity.AccountID("alice-blobs"), identity.AccountID("bob-blobs")
	quota := store.BlobQuota{Bytes: 1000, Blobs: 3}
	if err := s.CreateBlob(ctx, newBlob(1, alice, 600), quota); err != nil {
		t.Fatalf("CreateBlob: %v", err)
	}
	if err := s.CreateBlob(ctx, newBlob(1, bob, 1), quota); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate id: %v, want ErrExists", err)
	}
	if err := s.CreateBlob(ctx, newBlob(2, alice, 401), quota); !errors.Is(err, store.ErrBlobQuota) {
		t.Fatalf("over the byte quota: %v, want ErrBlobQuota", err)
	}
	if err := s.CreateBlob(ctx, newBlob(3, bob, 1001), quota); !errors.Is(err, store.ErrBlobQuota) {
		t.Fatalf("first blob over the byte quota: %v, want ErrBlobQuota", err)
	}
	for n := byte(2); n <= 3; n++ {
		if err := s.CreateBlob(ctx, newBlob(n, alice, 0), quota); err != nil {
			t.Fatalf("empty blob %d: %v", n, err)
		}
	}
	if err := s.CreateBlob(ctx, newBlob(4, alice, 0), quota); !errors.Is(err, store.ErrBlobQuota) {
		t.Fatalf("over the blob count: %v, want ErrBlobQuota", err)
	}
	if err := s.CreateBlob(ctx, newBlob(4, alice, 5000), store.BlobQuota{}); err != nil {
		t.Fatalf("no quota: %v", err)
	}
	if err := s.CreateBlob(ctx, newBlob(5, bob, 1000), quota); err != nil {
		t.Fatalf("another owner's quota is separate: %v", err)
	}

	got, err := s.Blob(ctx, blobID(1))
	if err != nil || got.Owner != alice || got.Size != 600 || got.Offset != 0 || !got.Created.Equal(at(0)) || !got.Finished.IsZero() {
		t.Fatalf("Blob = %+v, %v", got, err)
	}
	if _, err := s.Blob(ctx, blobID(9)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
	up := got
	up.Offset, up.Checksum, up.Updated = 100, []byte("state-100"), at(5)
	if err := s.UpdateBlob(ctx, up, 0); err != nil {
		t.Fatalf("UpdateBlob: %v", err)
	}
	stale := up
	stale.Offset = 50
	if err := s.UpdateBlob(ctx, stale, 0); !errors.Is(err, store.ErrBlobMoved) {
		t.Fatalf("update from a stale offset: %v, want ErrBlobMoved", err)
	}
	missing := up
	missing.ID = blobID(9)
	if err := s.UpdateBlob(ctx, missing, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing blob: %v", err)
	}
	up.Offset, up.Finished, up.Updated = 600, at(7), at(7)
	if err := s.UpdateBlob(ctx, up, 100); err != nil {
		t.Fatal(err)
	}
	got, err = s.Blob(ctx, blobID(1))
	if err != nil || got.Offset != 600 || string(got.Checksum) != "state-100" || !got.Updated.Equal(at(7)) || !got.Finished.Equal(at(7)) {
		t.Fatalf("after updates: %+v, %v", got, err)
	}

	// Expiry: blob 1 finished at 7; blobs 2 and 3 idle since 0; 4 too.
	ids, err := s.ExpiredBlobs(ctx, at(1), at(8), 100)
	if err != nil || len(ids) != 5 {
		t.Fatalf("ExpiredBlobs(all) = %d ids, %v; want 5", len(ids), err)
	}
	ids, err = s.ExpiredBlobs(ctx, at(0), at(8), 100)
	if err != nil || len(ids) != 1 || ids[0] != blobID(1) {
		t.Fatalf("ExpiredBlobs(finished only) = %v, %v", ids, err)
	}
	ids, err = s.ExpiredBlobs(ctx, at(1), at(7), 2)
	if err != nil || len(ids) != 2 {
		t.Fatalf("ExpiredBlobs(limit 2) = %v, %v", ids, err)
	}
	for _, id := range ids {
		if id == blobID(1) {
			t.Fatal("a blob finished at the cutoff expired")
		}
	}

	// Deleting gives the quota back; deleting twice is fine.
	for _, n := range []byte{1, 1, 2, 4} {
		if err := s.DeleteBlob(ctx, blobID(n)); err != nil {
			t.Fatalf("DeleteBlob: %v", err)
		}
	}
	if _, err := s.Blob(ctx, blobID(1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted blob: %v", err)
	}
	if err := s.CreateBlob(ctx, newBlob(6, alice, 1000), quota); err != nil {
		t.Fatalf("quota after deletes: %v", err)
	}
}

// testBlobQuotaConcurrent: many creations for one owner at once never take
// it over its quota.
func testBlobQuotaConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const owner = identity.AccountID("carol-blobs")
	quota := store.BlobQuota{Bytes: 10 * 100, Blobs: 1000}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 40 {
		wg.Go(func() {
			err := s.CreateBlob(ctx, newBlob(byte(100+i), owner, 100), quota)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case !errors.Is(err, store.ErrBlobQuota):
				t.Errorf("CreateBlob: %v", err)
			}
		})
	}
	wg.Wait()
	if created != 10 {
		t.Fatalf("%d blobs of 100 bytes created under a 1000-byte quota, want 10", created)
	}
}
