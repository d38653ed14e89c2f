// Package sqlite is the default Parley store: one SQLite file (modernc.org/sqlite,
// pure Go) named parley.db in the server's data folder.
//
// Writes: exactly ONE writer goroutine (the group-commit writer of the
// shared store logic) owns a dedicated connection and is the only code that
// writes to the file. It drains every pending write into one transaction,
// commits, and only then answers the callers. Reads use a separate pool of
// read-only connections, which WAL lets run alongside the writer.
//
// One server process per data folder: the writer keeps the state of the
// groups it appends to in memory between transactions. Other processes may
// make short administrative writes that touch no group (`parley admin
// invite`); SQLite's file lock and busy timeout serialize them with the
// server's writer.
//
// Durability: the database runs in WAL mode. The writer's COMMIT only writes
// the WAL (synchronous=NORMAL); a flusher goroutine then fsyncs the WAL file
// once for every batch committed meanwhile, and only after that fsync are the
// callers answered. So an acknowledged write survives a process crash, an OS
// crash and a power loss, as with synchronous=FULL, but the writer does not
// sit idle while the disk flushes: the next batch runs during the fsync.
//
// The price is that other connections may read a write in the moment
// between its COMMIT and its fsync. Two rules make a power loss in that
// moment harmless:
//   - MLS commits, revocations and account deletions are committed with
//     synchronous=FULL, so they are never visible before they are durable
//     (an MLS commit seen and then lost would fork the group);
//   - each time a store opens the folder while no other store has it open
//     (it holds an flock on parley.lock), every group's and mailbox's
//     sequence number jumps by SeqGap, so a seq a device may have seen
//     before a loss is never given to a different message; members that
//     had read everything stay caught up. (Detecting an unclean shutdown
//     instead would fail when `parley admin` opens the folder while the
//     server runs; that store gets no lock and changes no seq.) A message
//     seen and lost is resent by its sender, who was never acknowledged;
//     clients drop duplicates by message id.
//
// Sequence numbers therefore increase but are not contiguous across
// restarts.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/internal/sqlstore"
)

// FileName is the database file's name inside the data folder.
const FileName = "parley.db"

// LockName is the lock file held by the store that opened the folder first.
const LockName = "parley.lock"

// dialect is SQLite's take on the shared SQL.
var dialect = sqlstore.Dialect{
	Name: "sqlite",
	Tokens: map[string]string{
		"BLOB":      "BLOB",
		"SERIAL_PK": "INTEGER PRIMARY KEY",
		// The single writer serializes all writes; no row locks needed.
		"FOR_UPDATE": "",
	},
}

// pragmas apply to every connection. The writer's connection overrides
// synchronous (see writerPragmas).
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"

// readerPragmas apply to the readers and the checkpointer.
const readerPragmas = "&_pragma=synchronous(FULL)"

// SeqGap is added to every group's and mailbox's last sequence number each
// time the store opens. It exceeds the most writes that can be committed but
// not yet synced: sqlstore.UnsyncedBatches batches of at most
// store.MaxMaxBatch writes.
const SeqGap = 1 << 20

// The gap must cover every write that can be committed but not yet synced.
var _ = [SeqGap - sqlstore.UnsyncedBatches*store.MaxMaxBatch]struct{}{}

const (
	// qGapCursors keeps members that had read everything caught up; it runs
	// before qGapGroups.
	qGapCursors = `UPDATE group_members SET acked_seq = acked_seq + ?
		WHERE acked_seq = (SELECT g.last_seq FROM mls_groups g WHERE g.group_id = group_members.group_id)`
	qGapGroups    = `UPDATE mls_groups SET last_seq = last_seq + ?`
	qGapMailboxes = `UPDATE devices SET mail_seq = mail_seq + ?`
)

// writerPragmas apply to the writer's connection: COMMIT without fsync (the
// flusher fsyncs the WAL before callers are answered), a 64 MiB page cache, and
// no automatic checkpoints, which would run inside the writer's COMMIT; the
// checkpointer goroutine does them on its own connection instead. A
// restarted WAL is cut back to 256 MiB, the length at which the checkpointer
// has it restarted (restartFrames), so that its blocks are rewritten rather
// than freed and allocated again.
const writerPragmas = "&_pragma=temp_store(MEMORY)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(268435456)"

// batchInterval paces the group commit while writes keep coming (see
// sqlstore.Config.BatchInterval): each commit writes every page it changed
// to the WAL, so committing each write as it arrives costs several times
// the CPU of letting the writes of a millisecond share one commit.
const batchInterval = time.Millisecond

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file.
const checkpointEvery = 250 * time.Millisecond

// restartFrames is the WAL length, in frames, past which the writer is
// asked to let the WAL restart (see checkpointer): about journal_size_limit
// (4 KiB pages). At 10,000 msgs/s that is every 2-3 s; the writer's part
// takes a few milliseconds each time.
const restartFrames = 65536

// Open opens (creating if needed) the store in dir, which is created with
// mode 0700 if missing.
func Open(ctx context.Context, dir string, opts store.Options) (store.Store, error) {
	if dir == "" || strings.ContainsAny(dir, "?#") {
		return nil, fmt.Errorf("%w: data folder %q", store.ErrInvalid, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data folder: %w", err)
	}
	path := filepath.Join(dir, FileName)
	unlock, first, err := lockFolder(filepath.Join(dir, LockName))
	if err != nil {
		return nil, err
	}
	b, err := openBackend(ctx, path)
	if err != nil {
		_ = unlock()
		return nil, err
	}
	b.unlock = unlock
	if first {
		if err := b.openGap(ctx); err != nil {
			_ = b.Close()
			return nil, err
		}
	}
	s, err := sqlstore.New(ctx, b, sqlstore.Config{Writers: 1, Dialect: dialect, SingleWriter: true, Sync: b.syncWAL, BatchInterval: batchInterval}, opts)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return s, nil
}

// openGap advances every sequence number by SeqGap (see the package doc).
// A new database has no tables yet and needs no gap.
func (b *backend) openGap(ctx context.Context) error {
	var tables int
	err := b.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'mls_groups'`).Scan(&tables)
	if err != nil {
		return fmt.Errorf("failed to inspect database: %w", err)
	}
	if tables == 0 {
		return nil
	}
	tx, err := b.BeginWrite(ctx, true)
	if err != nil {
		return fmt.Errorf("failed to advance sequence numbers: %w", err)
	}
	for _, q := range []string{qGapCursors, qGapGroups, qGapMailboxes} {
		if _, err := tx.Exec(ctx, q, SeqGap); err != nil {
			_ = tx.Rollback(ctx)
			return fmt.Errorf("failed to advance sequence numbers: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		_ = tx.Rollback(ctx)
		return fmt.Errorf("failed to advance sequence numbers: %w", err)
	}
	return nil
}

// syncWAL makes every committed transaction durable by fsyncing the WAL
// file. It runs on the flusher goroutine, concurrently with the writer,
// which only appends to the WAL (a WAL is reset only after a checkpoint has
// copied and synced all of it into the database file).
func (b *backend) syncWAL() error {
	if b.wal == nil {
		f, err := os.Open(b.path + "-wal")
		if err != nil {
			return fmt.Errorf("failed to open WAL: %w", err)
		}
		b.wal = f
	}
	if err := b.wal.Sync(); err != nil {
		return fmt.Errorf("failed to sync WAL: %w", err)
	}
	return nil
}

// backend implements sqlstore.Backend.
type backend struct {
	writeDB *sql.DB
	conn    *sql.Conn            // the writer's dedicated connection
	stmts   map[string]*sql.Stmt // writer statements; used by the writer goroutine only
	readDB  *sql.DB
	reader  *reader
	ckptDB  *sql.DB       // the checkpointer's connection
	stop    chan struct{} // closed to stop the checkpointer
	stopped chan struct{} // closed when the checkpointer has stopped

	path     string
	unlock   func() error // releases parley.lock
	wal      *os.File     // the WAL, for syncWAL; used by the flusher goroutine only
	fullSync bool         // the writer connection is at synchronous=FULL
	// restart is set by the checkpointer when the WAL has grown past
	// restartFrames, and cleared by the writer once it has checkpointed
	// the rest of it (see checkpointer).
	restart atomic.Bool
}

func openBackend(ctx context.Context, path string) (*backend, error) {
	writeDB, err := sql.Open("sqlite", path+"?"+pragmas+writerPragmas)
	if err != nil {
		return nil, fmt.Errorf("failed to open database: %w", err)
	}
	writeDB.SetMaxOpenConns(1)
	writeDB.SetMaxIdleConns(1)
	conn, err := writeDB.Conn(ctx)
	if err != nil {
		_ = writeDB.Close()
		return nil, fmt.Errorf("failed to open database %s: %w", path, err)
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		_ = conn.Close()
		_ = writeDB.Close()
		return nil, fmt.Errorf("failed to enable WAL mode (mode %q): %v", mode, err)
	}
	readDB, err := sql.Open("sqlite", path+"?"+pragmas+readerPragmas+"&_pragma=query_only(1)")
	if err != nil {
		_ = conn.Close()
		_ = writeDB.Close()
		return nil, fmt.Errorf("failed to open database readers: %w", err)
	}
	n := 2 * runtime.GOMAXPROCS(0)
	if n < 4 {
		n = 4
	}
	readDB.SetMaxOpenConns(n)
	readDB.SetMaxIdleConns(n)
	ckptDB, err := sql.Open("sqlite", path+"?"+pragmas+readerPragmas)
	if err != nil {
		_ = conn.Close()
		_ = writeDB.Close()
		_ = readDB.Close()
		return nil, fmt.Errorf("failed to open checkpointer connection: %w", err)
	}
	ckptDB.SetMaxOpenConns(1)
	b := &backend{
		writeDB: writeDB, conn: conn, stmts: map[string]*sql.Stmt{},
		readDB: readDB, reader: &reader{db: readDB},
		ckptDB: ckptDB, stop: make(chan struct{}), stopped: make(chan struct{}),
		path: path,
	}
	go b.checkpointer()
	return b, nil
}

// checkpointer copies committed WAL frames into the database file in the
// background (PASSIVE: it never blocks the writer or the readers), so that
// the writer's commits only append to the WAL.
//
// The WAL starts over from its beginning (and is cut back to
// journal_size_limit) only when a write transaction begins while every
// frame in it has been copied. Under a steady stream of commits that never
// happens on its own: each pass of the checkpointer ends after the writer
// has committed more frames. The WAL would then grow without bound, and
// every commit would write to fresh blocks of a growing file, which costs
// more than rewriting blocks already allocated (block allocation in the
// write, metadata in the fsync). So once a pass leaves more than
// restartFrames frames in the WAL, the checkpointer runs a second pass
// (which has only the last moments' frames to copy) and then leaves the
// rest to the writer (restart): before its next transaction the writer
// checkpoints the few frames committed since, on its own connection, and
// its transaction then restarts the WAL. The writer waits for that short
// checkpoint (two fsyncs) about once per restartFrames frames; the
// checkpointer does no pass of its own until the writer has done it.
func (b *backend) checkpointer() {
	defer close(b.stopped)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if b.restart.Load() {
			continue // the writer has not checkpointed yet
		}
		// A failed checkpoint is retried on the next tick; the WAL only
		// grows meanwhile.
		if b.checkpoint() >= restartFrames {
			b.checkpoint()
			b.restart.Store(true)
		}
	}
}

// checkpoint runs a PASSIVE checkpoint on the checkpointer's connection and
// returns the WAL's length in frames (0 if it failed).
func (b *backend) checkpoint() int64 {
	var busy, log, copied int64
	if err := b.ckptDB.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
		return 0
	}
	return log
}

// stmt returns the writer's prepared statement for shared query text.
func (b *backend) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := b.stmts[q]; ok {
		return s, nil
	}
	s, err := b.conn.PrepareContext(ctx, dialect.Rewrite(q))
	if err != nil {
		return nil, err
	}
	b.stmts[q] = s
	return s, nil
}

// BeginWrite implements sqlstore.Backend. IMMEDIATE takes the write lock at
// once, so a transaction never fails half-way for want of it.
// A syncCommit transaction commits at synchronous=FULL (the setting cannot
// change inside a transaction, so it is switched around it).
func (b *backend) BeginWrite(ctx context.Context, syncCommit bool) (sqlstore.WriteTx, error) {
	if b.restart.Load() {
		// See checkpointer. A failed checkpoint only leaves the WAL
		// longer; the checkpointer asks again.
		_, _ = b.conn.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		b.restart.Store(false)
	}
	if syncCommit != b.fullSync {
		mode := "NORMAL"
		if syncCommit {
			mode = "FULL"
		}
		if _, err := b.conn.ExecContext(ctx, "PRAGMA synchronous = "+mode); err != nil {
			return nil, err
		}
		b.fullSync = syncCommit
	}
	if _, err := b.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, err
	}
	return (*writeTx)(b), nil
}

// Reader implements sqlstore.Backend.
func (b *backend) Reader() sqlstore.Querier { return b.reader }

// IsUnique implements sqlstore.Backend.
func (b *backend) IsUnique(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// IsRetryable implements sqlstore.Backend.
func (b *backend) IsRetryable(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_BUSY || e.Code()&0xff == sqlite3.SQLITE_LOCKED)
}

// Close implements sqlstore.Backend.
func (b *backend) Close() error {
	close(b.stop)
	<-b.stopped
	var errs []error
	if b.wal != nil {
		errs = append(errs, b.wal.Close())
	}
	for _, s := range b.stmts {
		errs = append(errs, s.Close())
	}
	errs = append(errs, b.reader.close(), b.conn.Close(), b.readDB.Close(), b.ckptDB.Close(), b.writeDB.Close())
	if b.unlock != nil {
		errs = append(errs, b.unlock())
	}
	return errors.Join(errs...)
}

// writeTx is the writer's open transaction on its dedicated connection.
type writeTx backend

func (t *writeTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	s, err := (*backend)(t).stmt(ctx, q)
	if err != nil {
		return 0, err
	}
	res, err := s.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *writeTx) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	s, err := (*backend)(t).stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return row{s.QueryRowContext(ctx, args...)}
}

func (t *writeTx) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	s, err := (*backend)(t).stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	r, err := s.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

func (t *writeTx) Commit(ctx context.Context) error {
	_, err := t.conn.ExecContext(ctx, "COMMIT")
	return err
}

func (t *writeTx) Rollback(ctx context.Context) error {
	_, err := t.conn.ExecContext(ctx, "ROLLBACK")
	return err
}

// reader runs queries on the read-only pool with statements prepared once.
type reader struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (r *reader) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.stmts[q]; ok {
		return s, nil
	}
	s, err := r.db.PrepareContext(ctx, dialect.Rewrite(q))
	if err != nil {
		return nil, err
	}
	if r.stmts == nil {
		r.stmts = map[string]*sql.Stmt{}
	}
	r.stmts[q] = s
	return s, nil
}

func (r *reader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, s := range r.stmts {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

func (r *reader) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return 0, fmt.Errorf("%w: write on the read-only pool", store.ErrInvalid)
}

func (r *reader) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	s, err := r.stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return row{s.QueryRowContext(ctx, args...)}
}

func (r *reader) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	s, err := r.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rs, err := s.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return rows{rs}, nil
}

// row maps sql.ErrNoRows to sqlstore.ErrNoRows.
type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}

// errRow is a row whose query could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// rows adapts *sql.Rows.
type rows struct{ *sql.Rows }

func (r rows) Close() { _ = r.Rows.Close() }
