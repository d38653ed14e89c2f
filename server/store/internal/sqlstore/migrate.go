package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migrations are embedded SQL files named NNNN_what.sql, applied in order of
// NNNN, each once; the applied versions are kept in schema_migrations. The
// files are shared by both dialects through the @TOKENS@ of [Dialect.Rewrite].
//
//go:embed migrations/*.sql
var migrationFS embed.FS

const (
	qCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT PRIMARY KEY
)`
	qAppliedMigrations = `SELECT version FROM schema_migrations`
	qRecordMigration   = `INSERT INTO schema_migrations (version) VALUES (?)`
)

// migration is one embedded schema step.
type migration struct {
	version int64
	name    string
	sql     string
}

// migrations lists the embedded migrations in order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("failed to list migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("failed to parse migration name %q", e.Name())
		}
		body, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("failed to read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("failed to order migrations: version %d twice", ms[i].version)
		}
	}
	return ms, nil
}

// statements splits a migration into statements, dropping comment lines.
func statements(sql string) []string {
	var lines []string
	for _, l := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--") {
			continue
		}
		lines = append(lines, l)
	}
	var out []string
	for _, s := range strings.Split(strings.Join(lines, "\n"), ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// migrate applies the missing migrations in one transaction.
func migrate(ctx context.Context, b Backend, d Dialect) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := b.BeginWrite(ctx, true)
	if err != nil {
		return fmt.Errorf("failed to begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if d.MigrationLock != "" {
		if _, err := tx.Exec(ctx, d.MigrationLock); err != nil {
			return fmt.Errorf("failed to lock migrations: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, qCreateMigrations); err != nil {
		return fmt.Errorf("failed to create schema_migrations: %w", err)
	}
	applied := map[int64]bool{}
	rows, err := tx.Query(ctx, qAppliedMigrations)
	if err != nil {
		return fmt.Errorf("failed to read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("failed to read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to read schema_migrations: %w", err)
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		for _, stmt := range statements(d.Rewrite(m.sql)) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("failed to apply migration %s: %w", m.name, err)
			}
		}
		if _, err := tx.Exec(ctx, qRecordMigration, m.version); err != nil {
			return fmt.Errorf("failed to record migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("failed to commit migrations: %w", err)
	}
	return nil
}
