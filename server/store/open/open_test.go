package open

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/server/store"
)

func TestIsPostgres(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://u@h/db":             true,
		"postgresql://u@h/db?x=1":       true,
		"/var/lib/parley":               false,
		"data":                          false,
		"./postgres://not-a-url-prefix": false,
	} {
		if got := IsPostgres(dsn); got != want {
			t.Errorf("IsPostgres(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// TestOpenSQLite checks that a directory DSN creates the folder with mode
// 0700 and a SQLite file that keeps data across reopening.
func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data", "parley")
	s, err := Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.CreateInvite(ctx, "tok", at); err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("data folder mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "parley.db")); err != nil {
		t.Fatalf("database file: %v", err)
	}
	s, err = Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if err := s.UseInvite(ctx, "tok", at); err != nil {
		t.Fatalf("data lost across reopen: %v", err)
	}
}

// TestOpenPostgresRoute checks that a postgres:// DSN reaches the PostgreSQL
// backend (which fails to connect to a closed port) rather than being taken
// for a folder name.
func TestOpenPostgresRoute(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", store.Options{})
	if err == nil || !strings.Contains(err.Error(), "failed to connect to database") {
		t.Fatalf("Open(postgres://closed port) = %v, want a connection error", err)
	}
	if _, err := os.Stat("postgres:"); err == nil {
		t.Fatal("a folder named postgres: was created")
	}
}

func TestOpenBadDSN(t *testing.T) {
	if _, err := Open(context.Background(), "", store.Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	if _, err := Open(context.Background(), "postgres://%zz", store.Options{}); err == nil {
		t.Fatal("Open of a malformed URL succeeded")
	}
}
