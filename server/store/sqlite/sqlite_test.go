package sqlite

import (
	"testing"

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
