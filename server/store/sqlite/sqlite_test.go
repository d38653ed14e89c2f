package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/storetest"
)

// newStore opens a fresh store in a temporary folder.
func newStore(t *testing.T) store.Store {
	t.Helper()
	s, err := Open(t.Context(), t.TempDir(), storetest.Options())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

func BenchmarkAppend(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := Open(b.Context(), b.TempDir(), storetest.Options())
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestAdminWhileServing: a second store on the same folder (as `parley
// admin invite` opens) can write while the first keeps writing, and the
// first sees its writes.
func TestAdminWhileServing(t *testing.T) {
	dir := t.TempDir()
	server := newStoreIn(t, dir)
	admin := newStoreIn(t, dir)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			if err := server.CreateInvite(t.Context(), store.InviteToken(fmt.Sprintf("server-%d", i)), at); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 20; i++ {
		if err := admin.CreateInvite(t.Context(), store.InviteToken(fmt.Sprintf("admin-%d", i)), at); err != nil {
			t.Fatalf("admin CreateInvite: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("server CreateInvite: %v", err)
	}
	for i := 0; i < 20; i++ {
		if err := server.UseInvite(t.Context(), store.InviteToken(fmt.Sprintf("admin-%d", i)), at); err != nil {
			t.Fatalf("server does not see admin invite %d: %v", i, err)
		}
	}
}

func newStoreIn(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := Open(t.Context(), dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
