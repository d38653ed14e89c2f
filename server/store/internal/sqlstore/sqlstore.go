// Package sqlstore is the store logic shared by the SQLite and PostgreSQL
// backends: every store.Store method is written once here against a small
// [Querier] interface, with the SQL kept as named constants next to the code
// that runs it (one file per concern) and the schema in migrations/.
//
// Query text uses "?" placeholders and a few @TOKENS@ (see [Dialect.Rewrite]);
// each backend rewrites them once per query for its dialect and caches the
// result.
//
// All writes go through a group-commit writer (batch.go): callers hand it a
// function, the writer runs many such functions in one transaction, commits,
// and only then answers each caller. Reads go straight to the backend's
// reader pool.
//
// The hot append takes one of two shapes. A single writer (SQLite) keeps
// group state in memory (cache.go) and writes a batch's appends with
// multi-row INSERTs (pending.go). A database with writable CTEs (PostgreSQL) appends in one
// statement, and a batch's statements travel in one round trip ([Pipeliner]).
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
)

// ErrNoRows is what a backend's [Row.Scan] returns when the query matched no
// row.
var ErrNoRows = errors.New("sqlstore: no rows")

// Querier runs SQL written with "?" placeholders and @TOKENS@.
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// QueryRow runs a query expected to return at most one row.
	QueryRow(ctx context.Context, query string, args ...any) Row
	// Query runs a query returning rows. Callers read all rows and close
	// them before running the next statement on the same transaction.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Row is one result row.
type Row interface {
	// Scan copies the columns into dest; ErrNoRows when there was no row.
	Scan(dest ...any) error
}

// Rows is a result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// WriteTx is an open write transaction.
type WriteTx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Statement is a write that is exactly one statement. A backend whose
// write transactions implement [Pipeliner] sends many in one round trip.
type Statement struct {
	Query string
	Args  []any
	// Result reads the statement's row (ErrNoRows when it returned none).
	// It returns the write's outcome (nil or a store error, in which case
	// the statement wrote nothing) and a database error that aborts the
	// transaction.
	Result func(Row) (outcome, err error)
}

// Pipeliner is implemented by write transactions that can run many
// statements in one round trip.
type Pipeliner interface {
	// ExecPipeline runs the statements in order, calling each Result, and
	// returns their outcomes. A non-nil error aborts the transaction.
	ExecPipeline(ctx context.Context, stmts []Statement) ([]error, error)
}

// Backend is what a database driver provides.
type Backend interface {
	// BeginWrite opens a write transaction. syncCommit asks that its COMMIT
	// be durable before its effects become visible, for a backend that
	// otherwise defers syncing (Config.Sync). The SQLite backend is only
	// ever called from its one writer goroutine.
	BeginWrite(ctx context.Context, syncCommit bool) (WriteTx, error)
	// Reader runs read-only queries outside of any write transaction.
	Reader() Querier
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique(err error) bool
	// IsRetryable reports whether a transaction that failed with err may
	// succeed if run again (deadlock, serialization failure, busy).
	IsRetryable(err error) bool
	// Close releases the backend.
	Close() error
}

// Config tunes the shared store.
type Config struct {
	// Writers is the number of group-commit writer goroutines. SQLite uses
	// exactly one; PostgreSQL may use several, each with its own connection.
	Writers int
	// Dialect describes the backend's SQL.
	Dialect Dialect
	// SingleWriter says that this process is the database's only writer
	// and Writers is 1 (SQLite), which lets the store cache group state
	// between transactions (cache.go).
	SingleWriter bool
	// Sync, if set, turns on deferred sync for a single writer: COMMIT does
	// not wait for the disk and Sync makes every transaction committed so
	// far durable (batch.go).
	Sync func() error
	// BatchInterval, if positive, paces the group commit while writes keep
	// coming: a batch begins at least this long after the previous one
	// began, unless many writes are waiting (batch.go, Pacing).
	BatchInterval time.Duration
}

// Store implements store.Store over a Backend.
type Store struct {
	b         Backend
	w         *writer
	opts      store.Options
	cache     *groupCache // single-writer backends only; used on the writer goroutine
	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

var _ store.Store = (*Store)(nil)

// New migrates the schema and starts the writers.
func New(ctx context.Context, b Backend, cfg Config, opts store.Options) (*Store, error) {
	opts = opts.WithDefaults()
	if err := migrate(ctx, b, cfg.Dialect); err != nil {
		return nil, err
	}
	writers := cfg.Writers
	if writers < 1 {
		writers = 1
	}
	if cfg.SingleWriter == cfg.Dialect.WritableCTE || (cfg.SingleWriter && writers != 1) ||
		(cfg.Sync != nil && !cfg.SingleWriter) {
		return nil, fmt.Errorf("%w: a backend is either a single writer or has writable CTEs", store.ErrInvalid)
	}
	s := &Store{b: b, opts: opts}
	s.w = newWriter(b, writers, opts.MaxBatch, cfg.Sync, cfg.BatchInterval)
	if cfg.SingleWriter {
		s.cache = newGroupCache()
		s.w.beforeCommit, s.w.afterRollback = s.cache.flush, s.cache.reset
		s.w.beforeOp = s.cache.flushPending
	}
	return s, nil
}

// reader returns the backend's reader, or one that fails with
// store.ErrClosed once the store is closed.
func (s *Store) reader() Querier {
	if s.closed.Load() {
		return closedQuerier{}
	}
	return s.b.Reader()
}

// closedQuerier answers every query with store.ErrClosed.
type closedQuerier struct{}

func (closedQuerier) Exec(context.Context, string, ...any) (int64, error) { return 0, store.ErrClosed }
func (closedQuerier) QueryRow(context.Context, string, ...any) Row        { return closedRow{} }
func (closedQuerier) Query(context.Context, string, ...any) (Rows, error) {
	return nil, store.ErrClosed
}

type closedRow struct{}

func (closedRow) Scan(...any) error { return store.ErrClosed }

// Close stops the writers after the pending writes and closes the backend.
// Closing again is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.w.close()
		if err := s.b.Close(); err != nil {
			s.closeErr = fmt.Errorf("failed to close database: %w", err)
		}
	})
	return s.closeErr
}

// Dialect holds what differs between SQL dialects.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// Dollar selects $1, $2 ... placeholders instead of ?.
	Dollar bool
	// Tokens maps @TOKEN@ names to their text in this dialect.
	Tokens map[string]string
	// WritableCTE says the dialect runs INSERT and UPDATE inside WITH
	// (PostgreSQL), which lets an append be one round trip.
	WritableCTE bool
	// MigrationLock, if set, runs first in each migration transaction so
	// that concurrent servers migrate one at a time.
	MigrationLock string
}

// Rewrite turns shared query text into the dialect's: the n-th "?" becomes
// "$n" and a numbered "?n" becomes "$n" when d.Dollar is set (one query uses
// one style), and each @TOKEN@ becomes its replacement ("" when unknown to
// the dialect). Query constants hold no string literals with "?" or "@".
func (d Dialect) Rewrite(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '?' && d.Dollar:
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 { // numbered: ?3 is $3
				b.WriteString(q[i+1 : j])
				i = j - 1
				continue
			}
			n++
			b.WriteString(strconv.Itoa(n))
		case c == '@':
			end := strings.IndexByte(q[i+1:], '@')
			if end < 0 {
				b.WriteByte(c)
				continue
			}
			b.WriteString(d.Tokens[q[i+1:i+1+end]])
			i += end + 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// nanos converts a time to the stored form: Unix nanoseconds, 0 for the zero
// time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// devID converts a stored device id.
func devID(b []byte) (identity.DeviceID, error) {
	d, err := identity.DeviceIDFromBytes(b)
	if err != nil {
		return d, fmt.Errorf("failed to read stored device id: %w", err)
	}
	return d, nil
}

// msgID converts a stored message id.
func msgID(b []byte) (store.MessageID, error) {
	var m store.MessageID
	if len(b) != len(m) {
		return m, fmt.Errorf("failed to read stored message id: %d bytes", len(b))
	}
	copy(m[:], b)
	return m, nil
}

// clampLimit bounds a caller's read limit to 1..store.MaxReadLimit.
func clampLimit(limit int) int {
	if limit <= 0 || limit > store.MaxReadLimit {
		return store.MaxReadLimit
	}
	return limit
}

// i64 converts a sequence number or epoch for the database. Values above
// MaxInt64 cannot occur (they count writes) and are clamped.
func i64(u uint64) int64 {
	if u > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(u)
}

// validRef checks a device reference supplied by a caller.
func validRef(d store.DeviceRef) error {
	if d.Account == "" || d.Device.IsZero() {
		return fmt.Errorf("%w: empty account or device id", store.ErrInvalid)
	}
	return nil
}

// validGroup checks a group id supplied by a caller.
func validGroup(g store.GroupID) error {
	if !g.Valid() {
		return fmt.Errorf("%w: group id must be 1..%d bytes", store.ErrInvalid, store.MaxGroupIDLen)
	}
	return nil
}

// wrap prefixes an unexpected database error and passes store errors through.
func wrap(what string, err error) error {
	if err == nil || isLogical(err) {
		return err
	}
	return fmt.Errorf("failed to %s: %w", what, err)
}

// isLogical reports whether err is a store condition (as opposed to a
// database failure).
func isLogical(err error) bool {
	for _, e := range logicalErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var logicalErrors = []error{
	store.ErrClosed, store.ErrNotFound, store.ErrExists, store.ErrEpochConflict, store.ErrEpochStale,
	store.ErrQueueFull, store.ErrRevoked, store.ErrNotMember, store.ErrInviteUsed,
	store.ErrInvalid, store.ErrBlobQuota, store.ErrBlobMoved,
}
