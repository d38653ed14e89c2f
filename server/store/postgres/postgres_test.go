package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/storetest"
)

// testURL returns the database named by PARLEY_TEST_POSTGRES, skipping the
// test when it is not set.
func testURL(tb testing.TB) string {
	u := os.Getenv("PARLEY_TEST_POSTGRES")
	if u == "" {
		tb.Skip("PARLEY_TEST_POSTGRES not set")
	}
	return u
}

// freshSchema creates a schema with a random name, drops it when the test
// ends, and returns a URL whose connections use it, so that parallel test
// runs on one database never see each other's tables.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	base := testURL(tb)
	ctx := context.Background()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	schema := "parley_test_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse PARLEY_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openFresh(tb testing.TB) store.Store {
	tb.Helper()
	return openFreshWith(tb, storetest.Options())
}

func openFreshWith(tb testing.TB, opts store.Options) store.Store {
	tb.Helper()
	s, err := Open(context.Background(), freshSchema(tb), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}

// TestMigrateTwice checks that reopening a migrated database applies nothing
// again and keeps the data.
func TestMigrateTwice(t *testing.T) {
	u := freshSchema(t)
	ctx := context.Background()
	s, err := Open(ctx, u, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.CreateInvite(ctx, "tok", storetestTime); err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, u, store.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if err := s.UseInvite(ctx, "tok", storetestTime); err != nil {
		t.Fatalf("invite lost across reopen: %v", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	testURL(b)
	storetest.Bench(b, func(b *testing.B) store.Store { return openFreshWith(b, storetest.BenchOptions()) })
}

var storetestTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
