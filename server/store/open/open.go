// Package open opens a Parley store from a DSN, picking the backend: a
// "postgres://" or "postgresql://" URL selects PostgreSQL, anything else is
// a directory that holds the SQLite file (created with mode 0700).
//
// It is a package of its own because both backends import server/store for
// its types, so server/store cannot import them.
package open

import (
	"context"
	"strings"

	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/postgres"
	"github.com/parley-im/parley/server/store/sqlite"
)

// Open opens the store named by dsn.
func Open(ctx context.Context, dsn string, opts store.Options) (store.Store, error) {
	if IsPostgres(dsn) {
		return postgres.Open(ctx, dsn, opts)
	}
	return sqlite.Open(ctx, dsn, opts)
}

// IsPostgres reports whether dsn selects the PostgreSQL backend.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
